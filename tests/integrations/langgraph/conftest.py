"""Stores the LangGraph saver runs on: every test here runs on each of them."""

from __future__ import annotations

import os

import pytest
from pg import drop_schema, new_schema, require_server, store_url

if os.environ.get("CI", "").lower() != "true":  # in CI a missing extra is a failure, not a skip
    pytest.importorskip("langgraph.checkpoint.conformance", reason='needs pip install -e ".[dev]"')

STORES = ["memory", "sqlite", "postgres"]


@pytest.fixture(params=STORES)
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def saver_url(store_kind, tmp_path):
    """A URL of a fresh, empty store of each kind (PostgreSQL: a schema of its own)."""
    if store_kind == "memory":
        yield "memory://"
    elif store_kind == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
    else:
        require_server()
        schema = new_schema()
        yield store_url(schema)
        drop_schema(schema)
