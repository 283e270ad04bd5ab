"""Object definitions: ObjectQL's YAML format with the ``sync:`` key, and clear errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import BASE

SRC = Path(__file__).resolve().parent / "src"


def parse(text: str):
    import sys

    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    from objectdefs import parse_definition

    return parse_definition(text, "x.object.yml")


def test_a_definition_reads_fields_and_sync_settings_with_objectqls_defaults():
    obj = parse("name: story\nfields:\n  title: {type: text, required: true}\n"
                "  state: {type: select, options: [{label: Open, value: open}, closed]}\n"
                "sync:\n  enabled: true\n  conflict_fields: [state]\n")
    assert obj.name == "story" and obj.fields["title"].required and obj.fields["state"].options == ("open", "closed")
    assert (obj.sync.strategy, obj.sync.direction, obj.sync.debounce_ms, obj.sync.batch_size) == (
        "last-write-wins", "bidirectional", 1000, 50)
    assert obj.sync.conflict_fields == ("state",)
    assert parse("name: plain\nfields: {}\n").sync.enabled is False


@pytest.mark.parametrize(("text", "message"), [
    ("name: 3\n", r"^x\.object\.yml: name: expected an identifier, got 3$"),
    ("name: a\nfields:\n  t: {type: blob}\n", r"^x\.object\.yml: fields\.t\.type: expected one of .*, got 'blob'$"),
    ("name: a\nsync: {enabled: true, strategy: newest}\n",
     r"^x\.object\.yml: sync\.strategy: expected one of last-write-wins, crdt, manual, got 'newest'$"),
    ("name: a\nfields:\n  t: {type: text}\nsync: {enabled: true, conflict_fields: [u]}\n",
     r"^x\.object\.yml: sync\.conflict_fields: expected a list of this object's fields, got \['u'\]$"),
    ("name: a\nsync: {enabled: true, realtime: true}\n", r"^x\.object\.yml: sync: expected only keys .*, got \['realtime'\]$"),
    ("name: [\n", r"^x\.object\.yml: not YAML: "),
])
def test_a_bad_definition_is_refused_naming_the_file_and_key(text, message):
    with pytest.raises(ValueError, match=message):
        parse(text)


async def test_clients_can_read_the_sync_settings_of_every_object(dohost):
    response = await dohost.fetch(BASE + "/api/sync/objects")
    objects = {o["name"]: o for o in json.loads(await response.text())["objects"]}
    assert {n: o["sync"]["strategy"] for n, o in objects.items() if o["sync"]["enabled"]} == {
        "note": "crdt", "reading": "last-write-wins", "task": "last-write-wins", "ticket": "manual"}
    assert objects["task"]["sync"]["conflict_fields"] == ["title", "status"]
    assert objects["reading"]["sync"]["direction"] == "push-only"
