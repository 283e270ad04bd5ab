"""One workerd per test session (the oracle), and its answers to the whole corpus.

workerd is installed from npm on first use (see ``_workerd.py``). If node or
npm is missing, every conformance test fails with the message saying how to
install them: the conformance run is never skipped.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from ._corpus import load_corpus
from ._workerd import Workerd, WorkerdUnavailable


@pytest.fixture(scope="session")
def workerd() -> Iterator[Workerd]:
    try:
        server = Workerd()
    except WorkerdUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with server:
        yield server


@pytest.fixture(scope="session")
def corpus() -> dict[str, list[dict[str, Any]]]:
    return load_corpus()


@pytest.fixture(scope="session")
def workerd_corpus(workerd: Workerd, corpus: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """workerd's results for every curated case, fetched in a few batched requests."""
    return workerd.run([case for cases in corpus.values() for case in cases])
