"""Backends for the shared storage contract: every test runs on each of them."""

from __future__ import annotations

import importlib.util

import pytest
from pg import drop_schema, new_schema, require_server, store_url

from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import open_store

BACKENDS = ["memory", "sqlite", "filesystem", "postgres"]


def _available(module: str) -> bool:
    return importlib.util.find_spec(f"kaizen.core.autonomy.state.storage.{module}") is not None


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path):
    """(name, url) of a fresh, empty store of each kind."""
    name = request.param
    if name == "memory":
        yield name, "memory://"
    elif name == "sqlite":
        yield name, f"sqlite:///{tmp_path}/state.db"
    elif name == "filesystem":
        if not _available("filesystem"):
            pytest.skip("filesystem backend not built yet")
        yield name, f"file://{tmp_path}/checkpoints"
    else:
        if not _available("postgres"):
            pytest.skip("postgres backend not built yet")
        require_server()
        schema = new_schema()
        yield name, store_url(schema)
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
