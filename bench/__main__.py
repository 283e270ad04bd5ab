"""Run every ``bench/bench_*.py`` and print their tables: ``python bench [NAME ...]``.

Each benchmark file is loaded by path and its ``main()`` called with no
arguments; it prints its own table (most use ``bench/_table.py``). Giving
names (``python bench runtime storage``) runs only ``bench_runtime.py`` and
``bench_storage.py``. A benchmark that raises is reported and the others still
run; the exit status is 1 if any did. Benchmarks never assert: a slow result
is a number in a table, not a failure.

Also runs as ``python -m bench`` from the repository root, and as
``python bench/__main__.py``.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(ROOT), str(HERE)):  # dohost's packages, and bench/_table.py
    if _p not in sys.path:
        sys.path.insert(0, _p)


def discover(names: list[str]) -> list[Path]:
    files = sorted(HERE.glob("bench_*.py"))
    if not names:
        return files
    wanted = {n.removeprefix("bench_").removesuffix(".py") for n in names}
    unknown = wanted - {f.stem.removeprefix("bench_") for f in files}
    if unknown:
        known = ", ".join(f.stem.removeprefix("bench_") for f in files)
        raise SystemExit(f"no benchmark named {sorted(unknown)[0]!r}; have: {known}")
    return [f for f in files if f.stem.removeprefix("bench_") in wanted]


def run_one(path: Path) -> bool:
    """Import ``path`` under its own name and call its ``main()``. True on success."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    main = getattr(module, "main", None)
    if not callable(main):
        print(f"{path.name}: no main() to run", file=sys.stderr)
        return False
    saved_argv = sys.argv
    sys.argv = [str(path)]  # a main() that reads its own options sees none
    try:
        main()
    finally:
        sys.argv = saved_argv
    return True


def run(names: list[str]) -> int:
    failed = []
    for path in discover(names):
        print(f"\n## {path.name}\n", flush=True)
        t0 = time.perf_counter()
        try:
            ok = run_one(path)
        except Exception:
            traceback.print_exc()
            ok = False
        sys.stdout.flush()
        print(f"\n({path.name}: {time.perf_counter() - t0:.0f} s{'' if ok else ', FAILED'})", file=sys.stderr, flush=True)
        if not ok:
            failed.append(path.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
