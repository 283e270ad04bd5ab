"""Alarms on trio's clock: set/get/delete, the handler's info, retries, eviction and restarts."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import trio

from objects import DurableObject
from runtime import MAX_ALARM_RETRIES, open_runtime, retry_delay_s


class Alarmed(DurableObject):
    constructed = 0

    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        type(self).constructed += 1
        self.calls = env.CALLS

    async def set_in(self, ms):
        await self.ctx.storage.setAlarm(self.env.NOW() + ms)

    def set_at(self, when):
        self.ctx.storage.set_alarm(when)  # not awaited: it still takes effect

    async def get(self):
        return await self.ctx.storage.getAlarm()

    async def delete(self):
        await self.ctx.storage.deleteAlarm()

    async def alarm(self, alarm_info):
        self.calls.append(
            {
                "at": self.env.NOW(),
                "retryCount": alarm_info.retryCount,
                "isRetry": alarm_info.isRetry,
                "scheduledTime": alarm_info.scheduledTime,
                "getAlarm": await self.ctx.storage.getAlarm(),
            }
        )
        behaviour = self.ctx.storage.kv.get("behaviour")
        if behaviour == "fail":
            raise RuntimeError("alarm failed")
        if behaviour == "fail-once" and alarm_info.retryCount == 0:
            raise RuntimeError("first attempt fails")
        if behaviour == "reschedule":
            await self.ctx.storage.setAlarm(self.env.NOW() + 1000)
            self.calls[-1]["after re-set"] = await self.ctx.storage.getAlarm()
            self.ctx.storage.kv.put("behaviour", None)

    def behave(self, behaviour):
        self.ctx.storage.kv.put("behaviour", behaviour)


@pytest.fixture(autouse=True)
def _reset_counter() -> None:
    Alarmed.constructed = 0


def _open(calls: list, **kw):
    holder: dict = {}

    def now() -> float:
        return holder["rt"].now_ms()

    class Opener:
        async def __aenter__(self):
            self._cm = open_runtime(bindings={"A": Alarmed}, vars={"CALLS": calls, "NOW": now}, **kw)
            holder["rt"] = await self._cm.__aenter__()
            return holder["rt"]

        async def __aexit__(self, *exc):
            return await self._cm.__aexit__(*exc)

    return Opener()


async def test_alarm_fires_at_its_time_with_alarm_info_and_is_then_deleted(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        start = rt.now_ms()
        await stub.set_in(5000)
        due = await stub.get()
        assert due == pytest.approx(start + 5000, abs=1)
        await trio.sleep(4.9)
        assert calls == []
        await trio.sleep(0.2)
        (call,) = calls
        assert call["retryCount"] == 0 and call["isRetry"] is False
        assert call["scheduledTime"] == pytest.approx(due, abs=1)
        assert call["at"] == pytest.approx(due, abs=5)
        assert call["getAlarm"] is None  # null while the handler runs
        assert await stub.get() is None  # success deleted it


async def test_set_alarm_accepts_a_datetime(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        when_ms = rt.now_ms() + 60_000
        when = datetime.datetime.fromtimestamp(when_ms / 1000, tz=datetime.timezone.utc)
        await stub.set_at(when)
        assert await stub.get() == pytest.approx(when_ms, abs=1)
        await trio.sleep(61)
        assert len(calls) == 1


async def test_an_alarm_in_the_past_fires_now(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        start = trio.current_time()
        await stub.set_at(1000)  # 1970
        await trio.sleep(0.01)
        assert len(calls) == 1
        assert trio.current_time() - start <= 0.01


async def test_delete_alarm_cancels_it(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        await stub.set_in(1000)
        await stub.delete()
        assert await stub.get() is None
        await trio.sleep(10)
        assert calls == []


async def test_setting_again_replaces_the_alarm(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        await stub.set_in(1000)
        await stub.set_in(5000)
        await trio.sleep(10)
        assert len(calls) == 1 and calls[0]["at"] >= calls[0]["scheduledTime"]


async def test_get_alarm_inside_the_handler_sees_a_re_set_alarm_which_then_fires(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        await stub.behave("reschedule")
        await stub.set_in(1000)
        await trio.sleep(1.5)
        assert calls[0]["getAlarm"] is None
        assert calls[0]["after re-set"] == pytest.approx(calls[0]["at"] + 1000, abs=1)
        assert await stub.get() == pytest.approx(calls[0]["at"] + 1000, abs=1)
        await trio.sleep(1)
        assert len(calls) == 2
        assert await stub.get() is None


async def test_a_failing_alarm_retries_with_exponential_backoff_at_most_six_times(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls, alarm_jitter=lambda: 0.0) as rt:
        stub = rt.env.A.getByName("a")
        await stub.behave("fail")
        await stub.set_in(1000)
        await trio.sleep(3600)
        assert len(calls) == 1 + MAX_ALARM_RETRIES == 7
        gaps = [b["at"] - a["at"] for a, b in zip(calls, calls[1:])]
        assert gaps == pytest.approx([2000, 4000, 8000, 16000, 32000, 64000], abs=5)
        assert [c["retryCount"] for c in calls] == list(range(7))
        assert [c["isRetry"] for c in calls] == [False] + [True] * 6
        assert {c["scheduledTime"] for c in calls} == {calls[0]["scheduledTime"]}
        assert await stub.get() is None  # given up: dropped


async def test_retry_delays_add_up_to_25_percent_jitter(autojump_clock: trio.abc.Clock) -> None:
    assert retry_delay_s(0, 0.0) == 2.0
    assert retry_delay_s(3, 0.0) == 16.0
    assert retry_delay_s(3, 1.0) == 20.0
    calls: list = []
    async with _open(calls, alarm_jitter=lambda: 0.5) as rt:
        stub = rt.env.A.getByName("a")
        await stub.behave("fail-once")
        await stub.set_in(1000)
        await trio.sleep(60)
        assert len(calls) == 2
        assert calls[1]["at"] - calls[0]["at"] == pytest.approx(2000 * 1.125, abs=5)
        assert await stub.get() is None


async def test_alarms_wake_evicted_objects(autojump_clock: trio.abc.Clock, call_log) -> None:
    calls: list = []
    async with _open(calls, idle_timeout=10, observer=call_log) as rt:
        stub = rt.env.A.getByName("a")
        await stub.set_in(60_000)
        await trio.sleep(30)
        assert rt.live_activation("A", stub.id) is None
        assert Alarmed.constructed == 1
        await trio.sleep(31)
        assert len(calls) == 1
        assert Alarmed.constructed == 2


async def test_alarms_survive_a_restart(autojump_clock: trio.abc.Clock, data_dir: Path) -> None:
    calls: list = []
    async with _open(calls, data_dir=data_dir) as rt:
        stub = rt.env.A.getByName("a")
        await stub.set_in(3_600_000)
    assert calls == []
    async with _open(calls, data_dir=data_dir) as rt:
        await trio.sleep(3601)
        assert len(calls) == 1
        assert await rt.env.A.getByName("a").get() is None


async def test_alarms_hours_ahead_fire_at_once_under_the_autojump_clock(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        stub = rt.env.A.getByName("a")
        await stub.set_in(5 * 3600 * 1000)
        start = trio.current_time()
        while not calls:
            await trio.sleep(60)
        assert trio.current_time() - start == pytest.approx(5 * 3600, abs=61)


async def test_each_object_has_its_own_alarm(autojump_clock: trio.abc.Clock) -> None:
    calls: list = []
    async with _open(calls) as rt:
        for i, name in enumerate("abc"):
            await rt.env.A.getByName(name).set_in(1000 * (3 - i))
        await trio.sleep(5)
        assert len(calls) == 3
        assert [c["at"] for c in calls] == sorted(c["at"] for c in calls)


async def test_set_alarm_in_the_constructor_needs_no_alarm_handler(autojump_clock: trio.abc.Clock) -> None:
    class NoHandler(DurableObject):
        def __init__(self, ctx, env):
            super().__init__(ctx, env)
            ctx.storage.setAlarm(4_102_444_800_000)  # 2100-01-01

        async def get(self):
            return await self.ctx.storage.getAlarm()

    async with open_runtime(bindings={"N": NoHandler}) as rt:
        assert await rt.env.N.getByName("a").get() == 4_102_444_800_000


class Chatty(DurableObject):
    async def arm(self, ms_from_now, mode):
        self.ctx.storage.kv.put("mode", mode)
        await self.ctx.storage.setAlarm(self.env.NOW() + ms_from_now)

    async def alarm(self, info):
        kv = self.ctx.storage.kv
        kv.put("runs", (kv.get("runs") or 0) + 1)
        mode = kv.get("mode")
        if mode == "raise":
            raise RuntimeError("after writing")
        if mode == "delete":
            await self.ctx.storage.deleteAlarm()

    async def hold(self, seconds):
        async def cb():
            await trio.sleep(seconds)
            return self.ctx.storage.kv.get("runs")

        return await self.ctx.blockConcurrencyWhile(cb)

    def state(self):
        return [self.ctx.storage.kv.get("runs"), self.ctx.storage.get_alarm().value]


def _chatty(**kw):
    holder: dict = {}
    cm = open_runtime(bindings={"C": Chatty}, vars={"NOW": lambda: holder["rt"].now_ms()}, **kw)
    return cm, holder


async def test_writes_of_a_failing_alarm_handler_are_kept(autojump_clock: trio.abc.Clock) -> None:
    cm, holder = _chatty(alarm_jitter=lambda: 0.0)
    async with cm as rt:
        holder["rt"] = rt
        stub = rt.env.C.getByName("a")
        await stub.arm(1000, "raise")
        await trio.sleep(1.5)
        runs, alarm = await stub.state()
        assert runs == 1 and alarm is not None  # still scheduled for its retry
        await trio.sleep(3)
        assert (await stub.state())[0] == 2


async def test_delete_alarm_inside_the_handler_is_final(autojump_clock: trio.abc.Clock) -> None:
    cm, holder = _chatty()
    async with cm as rt:
        holder["rt"] = rt
        stub = rt.env.C.getByName("a")
        await stub.arm(1000, "delete")
        await trio.sleep(600)
        assert await stub.state() == [1, None]


async def test_an_alarm_waits_for_block_concurrency_while_to_finish(autojump_clock: trio.abc.Clock) -> None:
    cm, holder = _chatty()
    async with cm as rt:
        holder["rt"] = rt
        stub = rt.env.C.getByName("a")
        await stub.arm(1000, "count")
        assert await stub.hold(5) is None  # the alarm came due inside, but was held back
        await trio.sleep(0.1)
        assert await stub.state() == [1, None]
