"""Checkpoint stores behind one protocol, and ``open_store`` to pick one by URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import StorageError
from .base import STREAMS, CheckpointRow, CheckpointStore, LineageRow, RecordRow, SavePlan, StreamHead
from .encrypted import KEY_ENV, EncryptedStorage
from .memory import MemoryStorage
from .sqlite import SQLiteStorage

DEFAULT_STORE_URL = "sqlite:///.kaizen/state.db"
STORE_URL_HELP = "use sqlite:///path/to/file.db, file:///path/to/dir, postgresql://user@host/db or memory://"


def open_store(target: Any = None, *, encryption_key: str | bytes | None = None) -> CheckpointStore:
    """A store from a URL (see ``STORE_URL_HELP``), a path to a ``.db`` file, or a store object.

    With ``encryption_key`` (or ``KAIZEN_ENCRYPTION_KEY`` set, for stores opened by URL),
    contents are encrypted at rest (see ``encrypted.py``).
    """
    store = _open(target)
    key = encryption_key
    if key is None and isinstance(target, (str, Path, type(None))):
        key = os.environ.get(KEY_ENV) or None
    if key is not None and not isinstance(store, EncryptedStorage):
        return EncryptedStorage(store, key)
    return store


def _open(target: Any) -> CheckpointStore:
    if target is None:
        target = DEFAULT_STORE_URL
    if not isinstance(target, (str, Path)):
        if isinstance(target, CheckpointStore):
            return target
        raise StorageError(f"storage must be a store URL or a store object, got {type(target).__name__}")
    url = str(target)
    if url.startswith(("memory:", "mem:")):
        return MemoryStorage()
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else parts.path
        if not path:
            raise StorageError(f"store URL {url!r} has no file path; {STORE_URL_HELP}")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return SQLiteStorage(path, synchronous=options.get("synchronous", "FULL"))
    if url.startswith("file:"):
        from .filesystem import FilesystemStorage

        path = url[len("file://"):] if url.startswith("file://") else url[len("file:"):]
        if not path:
            raise StorageError(f"store URL {url!r} has no directory; {STORE_URL_HELP}")
        return FilesystemStorage(path)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStorage

        parts = urlsplit(url)
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        schema = options.pop("schema", "kaizen")
        dsn = parts._replace(query="&".join(f"{k}={v}" for k, v in options.items())).geturl()
        return PostgresStorage(dsn, schema=schema)
    if "://" not in url and url.endswith((".db", ".sqlite", ".sqlite3")):
        return SQLiteStorage(url)
    raise StorageError(f"unknown store URL {url!r}: {STORE_URL_HELP}")


def __getattr__(name: str) -> Any:
    """``FilesystemStorage`` and ``PostgresStorage`` load on first use (the latter needs psycopg)."""
    if name == "FilesystemStorage":
        from .filesystem import FilesystemStorage

        return FilesystemStorage
    if name == "PostgresStorage":
        from .postgres import PostgresStorage

        return PostgresStorage
    raise AttributeError(name)


__all__ = [
    "DEFAULT_STORE_URL",
    "STREAMS",
    "CheckpointRow",
    "CheckpointStore",
    "EncryptedStorage",
    "FilesystemStorage",
    "LineageRow",
    "MemoryStorage",
    "PostgresStorage",
    "RecordRow",
    "SQLiteStorage",
    "SavePlan",
    "StreamHead",
    "open_store",
]
