"""Stores for the manager's tests: a real SQLite file and a fresh schema on the real PostgreSQL server."""

from __future__ import annotations

import pytest
from pg import drop_schema, new_schema, require_server, store_url

from kaizen.core.autonomy.state.sync_manager import SyncStateManager


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
        return
    require_server()
    schema = new_schema()
    yield store_url(schema)
    drop_schema(schema)


@pytest.fixture
def manager(url):
    with SyncStateManager(url) as manager:
        yield manager
