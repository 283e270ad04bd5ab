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


def _dump(signum: int, frame: Any) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out = {"runs": _runs, "collected": _collected, "gc_ns": _ns,
           "tracked": [len(gc.get_objects(generation=g)) for g in range(3)] if signum == signal.SIGUSR2 else None,
           "frozen": gc.get_freeze_count(), "threshold": list(gc.get_threshold()),
           "utime": usage.ru_utime, "stime": usage.ru_stime,
           "nvcsw": usage.ru_nvcsw, "nivcsw": usage.ru_nivcsw, "minflt": usage.ru_minflt}
    path = os.environ["DOHOST_PROBE_OUT"]
    with open(path + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    gc.callbacks.append(_on_gc)
    signal.signal(signal.SIGUSR1, _dump)
    signal.signal(signal.SIGUSR2, _dump)  # the same, with the tracked objects counted (a walk of the heap)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    runpy.run_path(script, run_name="__main__")
