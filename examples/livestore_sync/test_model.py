"""A property test: random pushes, stale pushes, pulls, live pulls and evictions against a plain list.

Each example runs a fresh runtime and checks, after every step, that the
store agrees with the model: the head is the last event, a pull from any
cursor returns exactly the model's events after it in order, a push whose
parent is not the head gets ``ServerAheadError`` and stores nothing, and
every live puller has received exactly the events pushed since it started,
in order, whether or not the object was evicted in between.
"""

from __future__ import annotations

from pathlib import Path

import trio
from conftest import SyncClient, event, events_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime import open_runtime

CONFIG = Path(__file__).with_name("wrangler.toml")
STORE = "model"

steps = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.integers(0, 2), st.integers(1, 5)),
        st.tuples(st.just("stale"), st.integers(0, 2), st.integers(1, 3)),
        st.tuples(st.just("pull"), st.integers(0, 2), st.integers(0, 40)),
        st.tuples(st.just("live"), st.integers(0, 2), st.just(0)),
        st.tuples(st.just("evict"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


async def run(ops: list[tuple[str, int, int]]) -> None:
    model: list[int] = []
    live: list[tuple[SyncClient, str, int]] = []  # client, request id, model length when it started
    async with open_runtime(config=CONFIG) as rt:
        clients = []
        for i in range(3):
            ws = await rt.connect_websocket(f"ws://sync.example/sync?storeId={STORE}&transport=ws", None)
            clients.append(SyncClient(ws, STORE))
        await clients[0].pull()
        for client in clients:
            client.backend_id = clients[0].backend_id
        stub = rt.env.SYNC_BACKEND_DO.getByName(STORE)
        for op, who, n in ops:
            client = clients[who]
            head = model[-1] if model else 0
            if op == "push":
                batch = [event(head + k, head + k - 1 if k > 1 else head, client=f"c{who}") for k in range(1, n + 1)]
                assert await client.push(batch) == {"_tag": "Success", "value": {}}
                model += [e["seqNum"] for e in batch]
            elif op == "stale":
                parent = max(0, head - n) if head else head + n
                exit_ = await client.push([event(parent + 1, parent, client="stale", args={"stale": True})])
                assert exit_["cause"]["error"] == {"_tag": "ServerAheadError", "minimumExpectedNum": head, "providedNum": parent}
            elif op == "pull":
                cursor = None if n == 0 or not model else model[min(n, len(model)) - 1]
                values, exit_ = await client.pull(cursor)
                assert exit_ == {"_tag": "Success"}
                assert [e["seqNum"] for e in events_of(values)] == [s for s in model if cursor is None or s > cursor]
            elif op == "live":
                request_id, phase1 = await client.pull_live()
                assert [e["seqNum"] for e in events_of(phase1)] == model
                live.append((client, request_id, len(model)))
            else:
                await rt.evict("SYNC_BACKEND_DO", stub.id)
            for puller, request_id, start in live:
                got = await puller.live_values(request_id, len(model) - start)
                assert [e["seqNum"] for e in got] == model[start:]
        log_state = await rt.run_in_object(
            "SYNC_BACKEND_DO", stub.id, lambda instance, ctx: (instance._open(STORE).head, instance._open(STORE).count_after(None))
        )
        assert log_state == ((model[-1] if model else 0), len(model))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_the_store_matches_a_list_model_through_pushes_pulls_and_evictions(ops):
    trio.run(run, ops)
