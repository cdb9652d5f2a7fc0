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
