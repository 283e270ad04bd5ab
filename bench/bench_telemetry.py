"""What metrics and traces cost: the same calls with no telemetry, with metrics, and with metrics and traces.

Run: ``python bench telemetry`` (about half a minute). Prints one markdown
table; never asserts.

Three hosts in this process run the same work side by side, interleaved,
best of ``REPEATS`` rounds each:

* **default** — ``open_runtime()`` without ``telemetry``: the no-op
  :data:`runtime.NULL_TELEMETRY` (the baseline every ratio is against);
* **metrics** — :class:`wrangler_compat.telemetry.PrometheusTelemetry` with
  its own registry (what ``dohost dev``/``serve`` run without tracing);
* **metrics + traces** — ``build_telemetry`` with a ``TracerProvider``
  whose ``BatchSpanProcessor`` hands spans to an exporter that drops them
  (the cost of making spans, not of shipping them).

The work: an RPC that writes (``increment``: one upsert, one read, one
commit without fsync) on a warm object, and a Worker request (``rt.fetch``)
that makes that RPC. The machine is shared: read ratios, not absolute numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Sequence

import trio

ROOT = Path(__file__).resolve().parent.parent
for _p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

from _table import print_table  # noqa: E402
from objects import DurableObject, Response, WorkerEntrypoint  # noqa: E402
from runtime import open_runtime  # noqa: E402
from wrangler_compat.telemetry import PrometheusTelemetry, build_telemetry  # noqa: E402

CALLS = 2_000
REPEATS = 5


class Counter(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS c(k TEXT PRIMARY KEY, v INTEGER)")

    def increment(self) -> int:
        sql = self.ctx.storage.sql
        sql.exec("INSERT INTO c VALUES ('n', 1) ON CONFLICT(k) DO UPDATE SET v = v + 1")
        return int(sql.exec("SELECT v FROM c WHERE k = 'n'").one()["v"])


class Worker(WorkerEntrypoint):
    async def fetch(self, request: Any) -> Any:
        return Response(str(await self.env.COUNTER.getByName("hot").increment()))


class _Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _tracing() -> Any:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    return build_telemetry(tracer_provider=provider), provider


async def _per_call_us(fn: Any) -> float:
    t0 = time.perf_counter()
    for _ in range(CALLS):
        await fn()
    return (time.perf_counter() - t0) / CALLS * 1e6


async def _run() -> dict[str, dict[str, float]]:
    traced, provider = _tracing()
    setups = {"default": None, "metrics": PrometheusTelemetry(), "metrics + traces": traced}
    best: dict[str, dict[str, float]] = {name: {"rpc": float("inf"), "request": float("inf")} for name in setups}
    hosts = {}
    async with open_runtime(bindings={"COUNTER": Counter}, entrypoint=Worker, telemetry=setups["default"]) as a:
        async with open_runtime(bindings={"COUNTER": Counter}, entrypoint=Worker, telemetry=setups["metrics"]) as b:
            async with open_runtime(
                bindings={"COUNTER": Counter}, entrypoint=Worker, telemetry=setups["metrics + traces"]
            ) as c:
                hosts = {"default": a, "metrics": b, "metrics + traces": c}
                for rt in hosts.values():  # warm: objects built, statements cached
                    for _ in range(300):
                        await rt.env.COUNTER.getByName("hot").increment()
                        await rt.fetch("http://bench/")
                for _ in range(REPEATS):
                    for name, rt in hosts.items():
                        stub = rt.env.COUNTER.getByName("hot")
                        best[name]["rpc"] = min(best[name]["rpc"], await _per_call_us(stub.increment))

                        async def request(rt: Any = rt) -> None:
                            await rt.fetch("http://bench/")

                        best[name]["request"] = min(best[name]["request"], await _per_call_us(request))
    provider.shutdown()
    return best


def main() -> list[list[Any]]:
    t0 = time.perf_counter()
    best = trio.run(_run)
    base = best["default"]
    rows: list[list[Any]] = []
    for what, label in (("rpc", "RPC that writes, warm object (µs/call)"), ("request", "Worker request + that RPC (µs/request)")):
        for name in ("metrics", "metrics + traces"):
            rows.append([f"{label}: {name} vs default", best[name][what], base[what], best[name][what] / base[what]])
    print_table(
        f"telemetry cost ({time.perf_counter() - t0:.0f} s; shared machine: noisy)",
        ["measure", "with", "default (no-op)", "ratio"],
        rows,
    )
    return rows


if __name__ == "__main__":
    main()
