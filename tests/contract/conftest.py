"""Fixtures shared by the Cloudflare-contract tests."""

from __future__ import annotations

import pytest

from persistence import ObjectDatabase


@pytest.fixture
def db(tmp_path):
    """A fresh object database, closed after the test."""
    database = ObjectDatabase(tmp_path / "object.sqlite")
    yield database
    database.close()
