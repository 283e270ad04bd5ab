"""Tests of the SQL greeter example (wrangler.jsonc, a synchronous ``fetch``, a var)."""


async def greet(dohost, path):
    response = await dohost.fetch(f"https://greeter.example/{path}")
    assert response.status == 200
    return await response.text()


async def test_greets_with_the_greeting_var_and_counts_visits(dohost):
    assert dohost.env.GREETING == "Hello"
    assert await greet(dohost, "Alice") == "Hello, Alice! (visit 1)"
    assert await greet(dohost, "Alice") == "Hello, Alice! (visit 2)"
    assert await greet(dohost, "") == "Hello, World! (visit 1)"


async def test_visits_are_read_over_rpc(dohost):
    for who in ["Bob", "Alice", "Bob"]:
        await greet(dohost, who)
    stub = dohost.env.GREETER.get(dohost.env.GREETER.idFromName("greeter"))
    assert await stub.visits() == {"Alice": 1, "Bob": 2}


async def test_visits_survive_eviction(dohost):
    await greet(dohost, "Carol")
    stub = dohost.env.GREETER.getByName("greeter")
    assert await dohost.evict(stub) is True
    assert await greet(dohost, "Carol") == "Hello, Carol! (visit 2)"


async def test_rows_allow_attribute_access_inside_the_object(dohost):
    await greet(dohost, "Dave")
    stub = dohost.env.GREETER.getByName("greeter")

    def read(instance, ctx):
        row = ctx.storage.sql.exec("SELECT who, n FROM visits").one()
        return row.who, row.n

    assert await dohost.run_in_durable_object(stub, read) == ("Dave", 1)
