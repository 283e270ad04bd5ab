"""The runtime's Telemetry Protocol: what it reports and when; the default reports nowhere and costs nothing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable

import pytest

from objects import DurableObject
from runtime import NULL_TELEMETRY, NullTelemetry, Runtime, open_runtime

ROOT = Path(__file__).resolve().parents[2]


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

    def increment(self) -> int:
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])

    def peek(self) -> list[Any]:
        return [r["v"] for r in self.ctx.storage.sql.exec("SELECT v FROM c")]

    def fail(self) -> None:
        raise ValueError("nope")

    def quit(self) -> None:
        self.ctx.abort("bye")

    def orphan(self) -> None:
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS p(id INTEGER PRIMARY KEY)")
        sql.exec("CREATE TABLE IF NOT EXISTS ch(pid INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED)")
        sql.exec("INSERT INTO ch VALUES (42)")  # no parent: the commit fails

    async def alarm(self) -> None:
        pass


class Recorder:
    """A Telemetry that records its calls (workerd's pollAndExpectCalls style)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.runtimes: list[Runtime] = []

    def attach(self, runtime: Runtime) -> None:
        self.runtimes.append(runtime)

    def request_started(self, worker: str | None, request: Any) -> Any:
        self.calls.append(("request_started", worker))
        return "req-token"

    def request_finished(self, token: Any, status: int | None, error: BaseException | None) -> None:
        self.calls.append(("request_finished", token, status, type(error).__name__ if error else None))

    def event_sent(self, namespace: str, object_id: Any, kind: str, name: str, invoke: Callable[[Any], Any]) -> Callable[[Any], Any]:
        self.calls.append(("event_sent", namespace, object_id.name, kind, name))
        return invoke

    def activated(self, namespace: str, object_id: Any) -> None:
        self.calls.append(("activated", namespace, object_id.name))

    def evicted(self, namespace: str, object_id: Any) -> None:
        self.calls.append(("evicted", namespace, object_id.name))

    def commit_started(self, namespace: str, object_id: Any) -> Any:
        self.calls.append(("commit_started", namespace))
        return "commit-token"

    def commit_finished(self, token: Any, namespace: str, error: BaseException | None) -> None:
        self.calls.append(("commit_finished", token, namespace, error))

    def storage_rows(self, namespace: str, read: int, written: int) -> None:
        self.calls.append(("storage_rows", namespace, read, written))

    def alarm_ran(self, namespace: str, outcome: str) -> None:
        self.calls.append(("alarm_ran", namespace, outcome))

    def websocket_message(self, namespace: str, direction: str) -> None:
        self.calls.append(("websocket_message", namespace, direction))

    def error(self, kind: str, error: BaseException | None) -> None:
        self.calls.append(("error", kind, type(error).__name__))

    def trace_context(self) -> str | None:
        return None

    def resume_trace(self, traceparent: str) -> Callable[[], None]:
        return lambda: None

    def take(self) -> list[tuple[Any, ...]]:
        calls, self.calls = self.calls, []
        return calls


async def test_the_runtime_reports_calls_activation_commit_rows_and_eviction_in_order(autojump_clock: Any) -> None:
    rec = Recorder()
    async with open_runtime(bindings={"COUNTER": Counter}, telemetry=rec) as rt:
        assert rec.runtimes == [rt]
        stub = rt.env.COUNTER.getByName("a")
        assert await stub.increment() == 1
        assert rec.take() == [
            ("event_sent", "COUNTER", "a", "rpc", "increment"),
            ("activated", "COUNTER", "a"),
            ("commit_started", "COUNTER"),
            ("commit_finished", "commit-token", "COUNTER", None),
            ("storage_rows", "COUNTER", 1, 1),  # the upsert (the name lives beside the file, not in it)
        ]
        assert await stub.peek() == [1]
        assert rec.take() == [("event_sent", "COUNTER", "a", "rpc", "peek")]  # no commit: nothing written
        await rt.evict("COUNTER", stub.id)
        assert rec.take() == [("storage_rows", "COUNTER", 1, 0), ("evicted", "COUNTER", "a")]


async def test_handler_errors_resets_and_worker_requests_are_reported() -> None:
    rec = Recorder()
    async with open_runtime(bindings={"COUNTER": Counter}, telemetry=rec) as rt:
        with pytest.raises(ValueError):
            await rt.env.COUNTER.getByName("a").fail()
        assert ("error", "object", "ValueError") in rec.take()
        with pytest.raises(Exception):
            await rt.env.COUNTER.getByName("a").quit()
        assert [c[:2] for c in rec.take() if c[0] == "error"] == [("error", "reset")]
        with pytest.raises(TypeError):  # the default router: the object has no fetch()
            await rt.fetch("http://x/COUNTER/a/")
        calls = rec.take()
        assert calls[0] == ("request_started", None)
        assert calls[-1] == ("request_finished", "req-token", None, "TypeError")


async def test_a_failed_commit_is_reported_as_finished_with_its_error() -> None:
    rec = Recorder()
    async with open_runtime(bindings={"COUNTER": Counter}, telemetry=rec) as rt:
        with pytest.raises(Exception, match="FOREIGN KEY"):
            await rt.env.COUNTER.getByName("a").orphan()
        calls = rec.take()
    (finished,) = [c for c in calls if c[0] == "commit_finished"]
    assert finished[:3] == ("commit_finished", "commit-token", "COUNTER") and finished[3] is not None
    assert any(c[:2] == ("error", "reset") for c in calls)  # a failed commit resets the object


async def test_an_alarm_run_is_reported_with_its_outcome(autojump_clock: Any) -> None:
    rec = Recorder()
    async with open_runtime(bindings={"COUNTER": Counter}, telemetry=rec) as rt:
        stub = rt.env.COUNTER.getByName("a")
        await rt.run_in_object("COUNTER", stub.id, lambda inst, ctx: ctx.storage.kv.put("x", 1))
        await rt.run_in_object("COUNTER", stub.id, lambda inst, ctx: ctx.storage.setAlarm(rt.now_ms() + 1000))
        rec.take()
        assert await rt.run_alarm_now("COUNTER", stub.id)
        calls = rec.take()
    assert ("event_sent", "COUNTER", None, "alarm", "alarm") in calls  # the scheduler knows the object by id only
    assert ("alarm_ran", "COUNTER", "success") in calls


async def test_the_default_creates_no_registry_and_wraps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import prometheus_client
    import opentelemetry.sdk.trace as sdk_trace

    made: list[str] = []
    original_registry, original_provider = prometheus_client.CollectorRegistry.__init__, sdk_trace.TracerProvider.__init__
    monkeypatch.setattr(prometheus_client.CollectorRegistry, "__init__", lambda self, *a, **k: (made.append("registry"), original_registry(self, *a, **k))[1])
    monkeypatch.setattr(sdk_trace.TracerProvider, "__init__", lambda self, *a, **k: (made.append("provider"), original_provider(self, *a, **k))[1])
    async with open_runtime(bindings={"COUNTER": Counter}) as rt:
        assert rt.telemetry is NULL_TELEMETRY
        assert await rt.env.COUNTER.getByName("a").increment() == 1
    assert made == []

    def invoke(instance: Any) -> None:
        pass

    assert NullTelemetry().event_sent("COUNTER", None, "rpc", "increment", invoke) is invoke


@pytest.mark.slow
def test_hosting_objects_imports_no_exporter_library() -> None:
    code = textwrap.dedent(
        """
        import sys, trio
        from objects import DurableObject
        from runtime import open_runtime

        class C(DurableObject):
            def hi(self):
                self.ctx.storage.kv.put("k", 1)
                return "hi"

        async def main():
            async with open_runtime(bindings={"C": C}) as rt:
                assert await rt.env.C.getByName("a").hi() == "hi"

        trio.run(main)
        loaded = sorted(m for m in sys.modules if m.startswith(("prometheus_client", "opentelemetry")))
        print(loaded)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
