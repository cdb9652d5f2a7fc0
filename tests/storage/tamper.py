"""Damage stored rows behind a store's back, the way a disk fault or an attacker would."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

from kaizen.core.autonomy.state.storage import MemoryStorage, SQLiteStorage


def tamper_checkpoint(store, checkpoint_id: str) -> None:
    """Change one byte of meaning in a checkpoint's stored body."""
    if isinstance(store, MemoryStorage):
        row = store._rows[checkpoint_id]
        store._rows[checkpoint_id] = replace(row, body=row.body.replace(b'"model"', b'"modem"'))
    elif isinstance(store, SQLiteStorage):
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE checkpoints SET step_number = step_number + 1 WHERE checkpoint_id = ?", (checkpoint_id,))
    elif type(store).__name__ == "PostgresStorage":
        _pg(store, "UPDATE checkpoints SET step_number = step_number + 1 WHERE checkpoint_id = %s", (checkpoint_id,))
    elif type(store).__name__ == "FilesystemStorage":
        from fs_tamper import tamper_checkpoint_file

        tamper_checkpoint_file(store, checkpoint_id)
    else:  # pragma: no cover
        raise NotImplementedError(type(store).__name__)


def tamper_first_record(store, agent_id: str) -> None:
    """Rewrite the first approval record of the agent's first lineage."""
    lineage = store.list_lineages(agent_id)[0]
    first = store.read_records(lineage.lineage_id, "approval_history", 0, 1)[0]
    forged = first.data.replace(b"false", b"true") if b"false" in first.data else first.data.replace(b"true", b"false")
    if isinstance(store, MemoryStorage):
        records = store._records[(lineage.lineage_id, "approval_history")]
        records[0] = replace(records[0], data=forged)
    elif isinstance(store, SQLiteStorage):
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE records SET data = ? WHERE stream = 0 AND seq = 0", (forged,))
    elif type(store).__name__ == "PostgresStorage":
        _pg(store, "UPDATE records SET data = %s WHERE stream = 0 AND seq = 0", (forged,))
    elif type(store).__name__ == "FilesystemStorage":
        from fs_tamper import tamper_record_file

        tamper_record_file(store, lineage.lineage_id, first.data, forged)
    else:  # pragma: no cover
        raise NotImplementedError(type(store).__name__)


def _pg(store, sql: str, params: tuple) -> None:
    import psycopg

    with psycopg.connect(store.dsn, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{store.schema}"')
        conn.execute(sql, params)


def inner(store):
    """The backend under an EncryptedStorage (tampering happens below the encryption)."""
    return getattr(store, "inner", store)


def copy_body(store, from_id: str, to_id: str) -> None:
    """Move one checkpoint's stored (sealed) body onto another checkpoint's row."""
    store = inner(store)
    if isinstance(store, MemoryStorage):
        store._rows[to_id] = replace(store._rows[to_id], body=store._rows[from_id].body)
    elif isinstance(store, SQLiteStorage):
        with sqlite3.connect(store.path) as conn:
            conn.execute("UPDATE checkpoints SET body = (SELECT body FROM checkpoints WHERE checkpoint_id = ?) "
                         "WHERE checkpoint_id = ?", (from_id, to_id))
    elif type(store).__name__ == "PostgresStorage":
        _pg(store, "UPDATE checkpoints SET body = (SELECT body FROM checkpoints WHERE checkpoint_id = %s) "
                   "WHERE checkpoint_id = %s", (from_id, to_id))
    elif type(store).__name__ == "FilesystemStorage":
        from fs_tamper import copy_body_file

        copy_body_file(store, from_id, to_id)
    else:  # pragma: no cover
        raise NotImplementedError(type(store).__name__)


def raw_bytes(store) -> bytes:
    """Everything the backend holds, as bytes (to look for plaintext)."""
    store = inner(store)
    if isinstance(store, MemoryStorage):
        return b"".join([r.body for r in store._rows.values()] +
                        [r.data for records in store._records.values() for r in records])
    if isinstance(store, SQLiteStorage):
        store.close()
        return b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    if type(store).__name__ == "PostgresStorage":
        import psycopg

        with psycopg.connect(store.dsn, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{store.schema}"')
            bodies = [r[0] for r in conn.execute("SELECT body FROM checkpoints")]
            datas = [r[0] for r in conn.execute("SELECT data FROM records")]
        return b"".join(bytes(b) for b in bodies + datas)
    if type(store).__name__ == "FilesystemStorage":
        from pathlib import Path

        return b"".join(p.read_bytes() for p in Path(store.base_dir).rglob("*") if p.is_file())
    raise NotImplementedError(type(store).__name__)  # pragma: no cover
