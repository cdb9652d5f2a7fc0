"""Fixtures shared by the store and manager suites: a fresh, empty store of each kind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pg import drop_schema, new_schema, require_server, store_url  # noqa: E402

from kaizen.core.autonomy.state.storage import open_store  # noqa: E402
from kaizen.core.autonomy.state.sync_manager import SyncStateManager  # noqa: E402

BACKENDS = ["memory", "sqlite", "filesystem", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """(name, url) of a fresh, empty store of each kind; PostgreSQL gets its own schema."""
    name = request.param
    if name == "memory":
        yield name, "memory://"
    elif name == "sqlite":
        yield name, f"sqlite:///{tmp_path}/state.db"
    elif name == "filesystem":
        yield name, f"file://{tmp_path}/checkpoints"
    else:
        require_server()  # skips with the reason, or fails under CI=true
        schema = new_schema()
        yield name, store_url(schema)
        drop_schema(schema)


@pytest.fixture(params=["sqlite", "filesystem", "postgres"])
def any_store(request, tmp_path):
    """The URL of a fresh store of each kind that outlives its process (for CLI and cross-process tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/state.db"
    elif request.param == "filesystem":
        yield f"file://{tmp_path}/ck"
    else:
        require_server()
        schema = new_schema()
        yield store_url(schema)
        drop_schema(schema)


@pytest.fixture
def store(backend):
    name, url = backend
    store = open_store(url)
    store.setup()
    yield store
    store.close()


@pytest.fixture
def manager(store):
    return SyncStateManager(store)
