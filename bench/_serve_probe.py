"""Run a benchmark server script under a probe that reports its cyclic GC's work on demand.

    python bench/_serve_probe.py SCRIPT ARGS...   (env DOHOST_PROBE_OUT=<file>)

Runs ``SCRIPT`` as ``__main__`` (any checkout's, so older code is probed the
same way without changing it) after installing a ``gc.callbacks`` hook that
counts collections per generation, the objects they collected and the
thread CPU time they took. On ``SIGUSR1`` (``SIGUSR2``: also counting the
tracked objects, a walk of the heap) the totals so far, the resident
tracked objects per generation and the process's user/system CPU are
written as JSON to ``$DOHOST_PROBE_OUT`` (``bench_http_split.py`` reads them
before and after each scenario). The probe itself costs two
``thread_time_ns`` calls per collection.

``SIGUSR2`` also reports the dohost runtime's objects, found on the heap
(so any checkout's runtime, unchanged): how many activations are live, a
fingerprint of which ones (the same fingerprint before and after a measure:
no object was evicted and re-created in between), how many of them have
their file parked, how many files are open, and the events delivered so far.
With ``$DOHOST_PROBE_IDLE_TIMEOUT`` set it first sets that runtime's idle
timeout (seconds) to it, and the longer of its two park delays too: under
valgrind's slow-down a measure can outlast the bench server's 120 s, and
idle objects would be evicted mid-measure; and objects would park in the
middle of it. Objects then park only while more than half the file budget is
open (after the short delay) or past the budget, so once the parks after the
touch pass have settled nothing parks during a measure that opens no file.
The idle sweeper asks each object's due time again when it pops, so the new
values apply to objects already waiting.

With ``$DOHOST_PROBE_URL_CACHE`` set, CPython's ``urlsplit`` cache (128 URLs)
holds that many instead, in the served process: an experiment that takes the
benchmark Worker's own ``urlparse(request.url)``, which misses that cache on
1,000 distinct URLs, out of a spread request's cost.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import runpy
import signal
import sys
import time
from typing import Any

_runs = [0, 0, 0]
_collected = [0, 0, 0]
_ns = [0, 0, 0]
_started = [0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.thread_time_ns()
    else:
        g = info["generation"]
        _runs[g] += 1
        _collected[g] += info["collected"]
        _ns[g] += time.thread_time_ns() - _started[0]


def _runtime_state() -> dict[str, Any] | None:
    """The live dohost runtime's objects (see the module docstring); None without one."""
    runtimes = [o for o in gc.get_objects()
                if type(o).__name__ == "Runtime" and hasattr(o, "_live") and hasattr(o, "idle_timeout")]
    if not runtimes:
        return None
    rt = runtimes[0]
    timeout = os.environ.get("DOHOST_PROBE_IDLE_TIMEOUT")
    if timeout:
        rt.idle_timeout = rt.park_after_idle = float(timeout)
    acts = list(rt._live.values())
    dbs = [getattr(a, "db", None) for a in acts]
    return {
        "live": len(acts),
        "fingerprint": hash(frozenset(id(a) for a in acts)),
        "parked": sum(1 for d in dbs if d is not None and d.parked),
        "open_files": len(getattr(rt, "_open_files", ())),
        "events": sum(getattr(a, "events", 0) for a in acts),
        "idle_timeout": rt.idle_timeout,
    }


def _dump(signum: int, frame: Any) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"runs": _runs, "collected": _collected, "gc_ns": _ns,
           "tracked": [len(gc.get_objects(generation=g)) for g in range(3)] if signum == signal.SIGUSR2 else None,
           "frozen": gc.get_freeze_count(), "threshold": list(gc.get_threshold()),
           "utime": usage.ru_utime, "stime": usage.ru_stime,
           "nvcsw": usage.ru_nvcsw, "nivcsw": usage.ru_nivcsw, "minflt": usage.ru_minflt,
           "runtime": _runtime_state() if signum == signal.SIGUSR2 else None}
    path = os.environ["DOHOST_PROBE_OUT"]
    with open(path + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, _dump)  # the same, with the tracked objects counted (a walk of the heap)
    url_cache = os.environ.get("DOHOST_PROBE_URL_CACHE")
    if url_cache:
        import functools
        import urllib.parse

        urllib.parse.urlsplit = functools.lru_cache(int(url_cache), typed=True)(  # type: ignore[assignment]
            urllib.parse.urlsplit.__wrapped__)  # type: ignore[attr-defined]
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
