"""The case corpus (``cases/*.json``) and the comparison of both sides' results.

A corpus file is ``{"about": "...", "cases": [{"id", "kind", "ops"}, ...]}``;
ids are made unique across files by prefixing the file's stem. ``kind`` is
``"sql"`` (SQLite-backed class, the default) or ``"kv"`` (KV-backed class).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._values import workerd_step

__all__ = ["CASES_DIR", "load_corpus", "load_file", "compare", "Divergence"]

CASES_DIR = Path(__file__).parent / "cases"


def load_file(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    out = []
    for case in data["cases"]:
        case = dict(case)
        case["id"] = f"{path.stem}/{case['id']}"
        case.setdefault("kind", "sql")
        out.append(case)
    return out


def load_corpus() -> dict[str, list[dict[str, Any]]]:
    return {p.stem: load_file(p) for p in sorted(CASES_DIR.glob("*.json"))}


class Divergence:
    def __init__(self, case: dict[str, Any], index: int, workerd: Any, dohost: Any) -> None:
        self.case, self.index, self.workerd, self.dohost = case, index, workerd, dohost

    def __str__(self) -> str:
        ops = self.case["ops"]
        op = ops[self.index] if 0 <= self.index < len(ops) else None
        return (
            f"{self.case['id']} step {self.index}: {json.dumps(op, ensure_ascii=False)[:300]}\n"
            f"    workerd: {json.dumps(self.workerd, ensure_ascii=False)[:600]}\n"
            f"    dohost:  {json.dumps(self.dohost, ensure_ascii=False)[:600]}"
        )


def compare(case: dict[str, Any], workerd: list[Any], dohost: list[Any]) -> list[Divergence]:
    """Step-by-step differences between workerd's tagged results and dohost's canonical ones."""
    expected = [workerd_step(s) for s in workerd]
    out = []
    for i in range(max(len(expected), len(dohost))):
        w = expected[i] if i < len(expected) else None
        d = dohost[i] if i < len(dohost) else None
        if w != d:
            out.append(Divergence(case, i, w, d))
    return out
