"""What Python code sees where workerd has an answer: IDs, and the harness's own self-test.

* ``ctx.id`` formats: ``idFromName`` gives workerd's exact hex for the same
  ``uniqueKey`` (dohost's namespace is given the oracle's key), ``name`` and
  ``equals`` agree, ``idFromString`` accepts and refuses what workerd does,
  ``newUniqueId()`` is 64 lowercase hex digits. Jurisdictions are a
  deliberate difference: local workerd refuses them ("Jurisdiction
  restrictions are not implemented in workerd."), dohost implements them as
  Cloudflare's production does (README, "Conformance with workerd").
* Binding conversions and error class names are exercised by the corpus
  (``cases/values.json``, ``cases/errors.json``) through the mapping in
  ``_values.py``.
* Self-test: with a deliberately broken dohost behaviour the harness reports
  the divergence (it would be useless if it could not fail).
"""

from __future__ import annotations

from typing import Any

import pytest

import persistence._sql
from objects._ids import IdFactory

from ._corpus import load_file, CASES_DIR
from ._dohost import run_dohost
from ._known import unexplained
from ._values import canon_error
from ._workerd import Workerd

pytestmark = pytest.mark.slow

SQL_UNIQUE_KEY = "dohost-conformance-sql"  # the oracle config's uniqueKey for SqlObject
NAMES: list[Any] = ["", "a", "alice", "é", "\U0001F600", "x" * 1000, "with space", "0", 1, 1.5, True, None, 1e21]


def _dohost_id(ask: dict[str, Any]) -> Any:
    ids = IdFactory(SQL_UNIQUE_KEY)
    try:
        if ask["q"] == "idFromName":
            made = ids.id_from_name(ask["name"])
            return {"ok": [made.toString(), made.name]}
        if ask["q"] == "idFromString":
            made = ids.id_from_string(ask["text"])
            return {"ok": [made.toString(), made.name]}
        if ask["q"] == "newUniqueId":
            text = ids.new_unique_id().toString()
            return {"ok": [len(text), text == text.lower() and all(c in "0123456789abcdef" for c in text), None]}
        if ask["q"] == "equals":
            return {"ok": ids.id_from_name(ask["a"]).equals(ids.id_from_name(ask["b"]))}
    except Exception as exc:
        _, name, message = canon_error(exc)
        return {"err": {"name": name, "message": message}}
    raise AssertionError(ask)


def test_ids_match_workerd(workerd: Workerd) -> None:
    from_name = [{"ns": "SQL", "q": "idFromName", "name": n} for n in NAMES]
    first = workerd.ids(from_name)
    valid = first[1]["ok"][0]
    other_ns = workerd.ids([{"ns": "KV", "q": "idFromName", "name": "a"}])[0]["ok"][0]
    asks = from_name + [
        {"ns": "SQL", "q": "idFromString", "text": valid},
        {"ns": "SQL", "q": "idFromString", "text": "z" * 64},
        {"ns": "SQL", "q": "idFromString", "text": valid[:-1]},
        {"ns": "SQL", "q": "idFromString", "text": valid.upper()},
        {"ns": "SQL", "q": "idFromString", "text": other_ns},
        {"ns": "SQL", "q": "newUniqueId"},
        {"ns": "SQL", "q": "equals", "a": "a", "b": "a"},
        {"ns": "SQL", "q": "equals", "a": "a", "b": "b"},
    ]
    expected = workerd.ids(asks)
    got = [_dohost_id(ask) for ask in asks]
    diffs = [(ask, w, d) for ask, w, d in zip(asks, expected, got) if w != d]
    assert not diffs, "\n".join(f"{a}\n    workerd: {w}\n    dohost:  {d}" for a, w, d in diffs)


def test_jurisdictions_are_a_documented_difference(workerd: Workerd) -> None:
    (answer,) = workerd.ids([{"ns": "SQL", "q": "newUniqueId", "jurisdiction": "eu"}])
    assert answer == {"err": {"name": "Error", "message": "Jurisdiction restrictions are not implemented in workerd."}}
    assert IdFactory(SQL_UNIQUE_KEY).new_unique_id("eu").jurisdiction == "eu"


async def test_a_broken_dohost_behaviour_is_reported_as_a_divergence(
    workerd: Workerd, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [c for c in load_file(CASES_DIR / "errors.json") if c["id"].endswith("/constraints")]
    expected = workerd.run(cases)
    assert not unexplained(cases[0], expected[cases[0]["id"]], (await run_dohost(cases))[cases[0]["id"]])

    original = persistence._sql.format_sqlite_error

    def broken(exc: Any) -> Any:  # the old behaviour: no extended result code
        err = original(exc)
        return type(err)(str(err).split(" (extended:")[0], err.code)

    monkeypatch.setattr(persistence._sql, "format_sqlite_error", broken)
    monkeypatch.setattr("persistence._engine.format_sqlite_error", broken)
    monkeypatch.setattr("persistence._translate.format_sqlite_error", broken)
    problems = unexplained(cases[0], expected[cases[0]["id"]], (await run_dohost(cases))[cases[0]["id"]])
    assert problems, "the harness did not notice a broken constraint message"
    assert all("SQLITE_CONSTRAINT" in str(p) for p in problems)
