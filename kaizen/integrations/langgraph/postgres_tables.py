"""The saver's tables in the store's PostgreSQL schema, on a connection of their own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .sql_tables import CHAIN_WHERE, SqlTables

SETUP_LOCK = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.langgraph_tables'))"
CREATE_TABLES = (
    """CREATE TABLE IF NOT EXISTS langgraph_checkpoints (
        thread_id text COLLATE "C" NOT NULL,
        checkpoint_ns text COLLATE "C" NOT NULL,
        checkpoint_id text COLLATE "C" NOT NULL,
        parent_checkpoint_id text COLLATE "C",
        run_id text COLLATE "C",
        type text NOT NULL,
        checkpoint bytea NOT NULL,
        metadata_type text NOT NULL,
        metadata bytea NOT NULL,
        versions bytea NOT NULL,
        checksum bytea NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
    )""",
    "CREATE INDEX IF NOT EXISTS langgraph_checkpoints_by_run ON langgraph_checkpoints (run_id)",
    """CREATE TABLE IF NOT EXISTS langgraph_blobs (
        thread_id text COLLATE "C" NOT NULL,
        checkpoint_ns text COLLATE "C" NOT NULL,
        channel text COLLATE "C" NOT NULL,
        version text COLLATE "C" NOT NULL,
        kind text NOT NULL,
        type text NOT NULL,
        base_version text COLLATE "C",
        item_count bigint NOT NULL,
        region_len bigint NOT NULL,
        digest bytea NOT NULL,
        root_version text COLLATE "C" NOT NULL,
        depth integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
    )""",
    "CREATE INDEX IF NOT EXISTS langgraph_blobs_by_root "
    "ON langgraph_blobs (thread_id, checkpoint_ns, channel, root_version, depth)",
    """CREATE TABLE IF NOT EXISTS langgraph_writes (
        thread_id text COLLATE "C" NOT NULL,
        checkpoint_ns text COLLATE "C" NOT NULL,
        checkpoint_id text COLLATE "C" NOT NULL,
        task_id text COLLATE "C" NOT NULL,
        idx integer NOT NULL,
        channel text NOT NULL,
        type text NOT NULL,
        value bytea NOT NULL,
        task_path text COLLATE "C" NOT NULL,
        checksum bytea NOT NULL,
        PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
    )""",
)


class PostgresTables(SqlTables):
    placeholder = "%s"
    select_chain_joined = (
        "SELECT count(*), count(DISTINCT depth), string_agg(data, ''::bytea ORDER BY depth) "
        f"FROM langgraph_blobs WHERE {CHAIN_WHERE}"
    )

    create_statements = (SETUP_LOCK, *CREATE_TABLES)

    def __init__(self, dsn: str, schema: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.schema = schema

    def _open(self) -> Any:
        import psycopg

        return psycopg.connect(self.dsn, autocommit=True, options=f"-c search_path={self.schema}")

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """Pipelined: statements go out together and the server answers once per sync."""
        with self._lock:
            conn = self._connection()
            with conn.pipeline(), conn.transaction():
                yield conn
