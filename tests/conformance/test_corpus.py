"""The curated corpus: every case runs on workerd and inside a live dohost object.

Each corpus file is one test; it fails listing every step where dohost's
result (after the one mapping of ``_values``) differs from workerd's, except
the differences ``_known.py`` documents (with their evidence).
"""

from __future__ import annotations

from typing import Any

import pytest

from ._corpus import load_corpus
from ._dohost import run_dohost
from ._known import unexplained

pytestmark = pytest.mark.slow

FILES = sorted(load_corpus())


@pytest.mark.parametrize("name", FILES)
async def test_corpus_file_matches_workerd(
    name: str, corpus: dict[str, list[dict[str, Any]]], workerd_corpus: dict[str, Any]
) -> None:
    cases = corpus[name]
    dohost = await run_dohost(cases)
    problems = [str(d) for case in cases for d in unexplained(case, workerd_corpus[case["id"]], dohost[case["id"]])]
    assert not problems, f"{len(problems)} divergences from workerd in {name}.json:\n" + "\n".join(problems)
