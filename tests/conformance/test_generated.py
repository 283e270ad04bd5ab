"""Generated cases: Hypothesis draws storage programs, workerd and dohost must agree.

A failure is shrunk by Hypothesis and printed as a corpus case; paste it
into ``cases/regressions.json`` (the cases found so far live there) so it
runs on every build from then on.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from ._dohost import run_dohost
from ._grammar import cases
from ._known import unexplained
from ._workerd import Workerd

pytestmark = pytest.mark.slow

#: Examples per run; CI runs the same derandomized ones, ``DOHOST_CONFORMANCE_EXAMPLES``
#: (with ``DOHOST_CONFORMANCE_RANDOM=1``) explores further.
EXAMPLES = int(os.environ.get("DOHOST_CONFORMANCE_EXAMPLES", "60"))
_counter = iter(range(10**9))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("DOHOST_CONFORMANCE_RANDOM") != "1",
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
async def test_generated_cases_match_workerd(workerd: Workerd, case: dict[str, Any]) -> None:
    case = {"id": f"generated/{next(_counter)}", **case}
    expected = workerd.run([case])[case["id"]]
    got = (await run_dohost([case]))[case["id"]]
    problems = unexplained(case, expected, got)
    assert not problems, (
        "generated case diverges from workerd; keep it in cases/regressions.json:\n"
        + json.dumps({k: v for k, v in case.items() if k != "id"}, ensure_ascii=False)
        + "\n"
        + "\n".join(str(p) for p in problems)
    )
