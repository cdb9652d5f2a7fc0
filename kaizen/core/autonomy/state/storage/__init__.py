"""Checkpoint stores behind one protocol, and ``open_store`` to pick one by URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ..errors import StorageError
from ..redaction import redact_text
from .base import (
    DEFAULT_STORE_URL, STREAMS, CheckpointRow, CheckpointStore, LineageRow, RecordRow, SavePlan, StreamHead,
)
from .encrypted import KEY_ENV, EncryptedStorage
from .filesystem import FilesystemStorage
from .memory import MemoryStorage
from .sqlite import SQLiteStorage
from .state_backend import StateBackendMixin, StorageBackend

if TYPE_CHECKING:
    from .postgres import PostgresStorage

STORE_URL_HELP = "use sqlite:///path/to/file.db, file:///path/to/dir, postgresql://user@host/db or memory://"


def open_store(target: Any = None, *, read_only: bool = False,
               encryption_key: str | bytes | None = None) -> CheckpointStore:
    """A store from a URL (see ``STORE_URL_HELP``), a path to a ``.db`` file, or a store object.

    ``read_only=True`` opens an existing store without creating, migrating or changing anything
    (``StoreNotFoundError`` if it does not exist, ``NotAKaizenStoreError`` if it holds no kaizen
    store; every write raises ``ReadOnlyStoreError``). With ``encryption_key`` (or
    ``KAIZEN_ENCRYPTION_KEY`` set, for stores opened by URL), contents are encrypted at rest
    (see ``encrypted.py``).
    """
    store = _open(target, read_only)
    key = encryption_key
    if key is None and isinstance(target, (str, Path, type(None))):
        key = os.environ.get(KEY_ENV) or None
    if key is not None and not isinstance(store, EncryptedStorage):
        store = EncryptedStorage(store, key)
    if read_only:
        store.setup()  # checks that it exists and is a kaizen store, now rather than on first read
    return store


def _open(target: Any, read_only: bool) -> CheckpointStore:
    if target is None:
        target = DEFAULT_STORE_URL
    if not isinstance(target, (str, Path)):
        if isinstance(target, CheckpointStore):
            if read_only and not getattr(target, "read_only", False):
                raise StorageError(f"read_only=True needs a store URL or path; the {type(target).__name__} "
                                   "given was opened for writing")
            return target
        raise StorageError(f"storage must be a store URL or a store object, got {type(target).__name__}")
    url = str(target)
    if url.startswith(("memory:", "mem:")):
        return MemoryStorage(read_only=read_only)
    if url.startswith("sqlite:"):
        parts = urlsplit(url)
        path = url[len("sqlite:///"):].split("?", 1)[0] if url.startswith("sqlite:///") else parts.path
        if not path:
            raise StorageError(f"store URL {url!r} has no file path; {STORE_URL_HELP}")
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        return SQLiteStorage(path, synchronous=options.get("synchronous", "FULL"), read_only=read_only)
    if url.startswith("file:"):
        path, _, query = (url[len("file://"):] if url.startswith("file://") else url[len("file:"):]).partition("?")
        if not path:
            raise StorageError(f"store URL {url!r} has no directory; {STORE_URL_HELP}")
        options = {key: values[-1] for key, values in parse_qs(query).items()}
        compress = options.get("compress", "").lower() in ("1", "true", "yes", "gzip")
        return FilesystemStorage(path, compress=compress, read_only=read_only)
    if url.startswith(("postgresql:", "postgres:")):
        store_class = _postgres_storage(url)
        parts = urlsplit(url)
        options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        schema = options.pop("schema", "kaizen")
        dsn = parts._replace(query="&".join(f"{k}={v}" for k, v in options.items())).geturl()
        return store_class(dsn, schema=schema, read_only=read_only)
    if "://" not in url and url.endswith((".db", ".sqlite", ".sqlite3")):
        return SQLiteStorage(url, read_only=read_only)
    raise StorageError(f"unknown store URL {url!r}: {STORE_URL_HELP}")


def _postgres_storage(url: str) -> type[PostgresStorage]:
    """The PostgreSQL store class; without psycopg (an optional extra), an error that says what to install."""
    try:
        from .postgres import PostgresStorage
    except ImportError as exc:
        raise StorageError(f"store URL {redact_text(url)!r} needs psycopg, which is not installed ({exc}): "
                           "pip install 'kaizen-state[postgres]'") from exc
    return PostgresStorage


def __getattr__(name: str) -> Any:
    """``PostgresStorage`` loads on first use: it needs psycopg."""
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
    "STORE_URL_HELP",
    "SavePlan",
    "StateBackendMixin",
    "StorageBackend",
    "StreamHead",
    "open_store",
]
