"""Every backend of the storage contract (memory, SQLite, filesystem, PostgreSQL) for the
compatibility tests too."""

from __future__ import annotations

from storage.conftest import backend  # noqa: F401  (the parametrized store fixture)
