"""Where the saver keeps its rows for a given kaizen store: beside the store's own tables."""

from __future__ import annotations

from kaizen.core.autonomy.state.storage import CheckpointStore, MemoryStorage, SQLiteStorage

from .errors import StoreNotSupportedError
from .memory_tables import MemoryTables
from .rows import SaverTables


def tables_for(store: CheckpointStore) -> SaverTables:
    """Memory tables for a memory store, tables in the same SQLite file or PostgreSQL schema
    otherwise. Other stores (filesystem, encrypted) are refused with what to use instead."""
    if isinstance(store, MemoryStorage):
        return MemoryTables()
    if isinstance(store, SQLiteStorage):
        from .sqlite_tables import SQLiteTables

        return SQLiteTables(store.path, synchronous=store.synchronous, busy_timeout_ms=store.busy_timeout_ms)
    if type(store).__name__ == "PostgresStorage":
        from .postgres_tables import PostgresTables

        return PostgresTables(store.dsn, store.schema)  # type: ignore[attr-defined]
    raise StoreNotSupportedError(
        f"the LangGraph saver keeps its tables in a SQLite, PostgreSQL or memory store, not in {store.url} "
        f"({type(store).__name__}); open it with sqlite:///path.db, postgresql://...?schema=name or memory:// "
        "(to encrypt channel values, pass serde=EncryptedSerializer.from_pycryptodome_aes() instead)"
    )
