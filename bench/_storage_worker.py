"""One checkout's storage object, timed on request: the ``--before`` side of bench_hotpaths' storage rows.

Run by ``bench_hotpaths.py`` as ``python _storage_worker.py CHECKOUT DATA_DIR``:
``CHECKOUT``'s packages (``runtime``, ``objects``, ``persistence``) and its
``bench/_hotpaths_apps.py`` are imported, so older code can be timed beside
this checkout's in one run. It opens two runtimes as ``bench_storage`` does
(point-in-time history on, and off), prints ``READY``, then answers each
``OP N HISTORY`` line on stdin (``HISTORY`` 1 or 0) with the seconds the live
object's loop took, measured inside the object with the collector off. An
empty line ends it.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path


def main() -> None:
    checkout, data_dir = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    sys.path[:0] = [str(checkout), str(checkout / "bench")]
    import trio

    from _hotpaths_apps import store_class
    from runtime import open_runtime

    Store = store_class()

    async def serve() -> None:
        async with open_runtime(bindings={"STORE": Store}, data_dir=data_dir / "on", durability="full") as rt, \
                open_runtime(bindings={"STORE": Store}, data_dir=data_dir / "off", durability="full",
                             pitr_retention_ms=0) as rt_off:
            stubs = {"1": rt.env["STORE"].getByName("store"), "0": rt_off.env["STORE"].getByName("store")}
            for stub in stubs.values():
                await stub.setup()
            print("READY", flush=True)
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                if not line.strip():
                    return
                op, n, history = line.split()
                gc.disable()
                try:
                    took = await getattr(stubs[history], op)(int(n))
                finally:
                    gc.enable()
                print(repr(took), flush=True)

    trio.run(serve)


if __name__ == "__main__":
    main()
