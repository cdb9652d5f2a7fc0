"""The PostgreSQL store's schema: numbered migrations, applied once under an advisory lock.

Migration N is ``MIGRATIONS[N - 1]``; one that has shipped is never edited, a change is a new
migration. ``migrate`` brings a schema up to date (any number of processes may call it at
once); ``check_schema`` is the read-only opening, which changes nothing.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..errors import NotAKaizenStoreError, StorageError, StoreNotFoundError

SCHEMA_VERSION = 2
LOCK = "SELECT pg_advisory_xact_lock(%s)"
SELECT_SCHEMA = "SELECT 1 FROM pg_namespace WHERE nspname = %s"
CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS {}"
CREATE_MIGRATIONS = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
SELECT_VERSION = "SELECT coalesce(max(version), 0) FROM schema_migrations"
SELECT_MIGRATIONS_TABLE = "SELECT to_regclass('schema_migrations') IS NOT NULL"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version) VALUES (%s)"
MIGRATIONS = (
    # Ids and timestamps compare byte-wise (COLLATE "C"), as in Python and SQLite.
    """
    CREATE TABLE lineages (
        lid integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        lineage_id text COLLATE "C" NOT NULL CONSTRAINT lineages_id_unique UNIQUE,
        agent_id text COLLATE "C" NOT NULL,
        base_lineage_id text COLLATE "C",
        base_checkpoint_id text COLLATE "C",
        base_counts text NOT NULL,
        head_checkpoint_id text COLLATE "C",
        created_at text COLLATE "C" NOT NULL
    ) WITH (fillfactor = 70);
    CREATE INDEX lineages_by_agent ON lineages (agent_id);
    CREATE TABLE records (
        lid integer NOT NULL,
        seq integer NOT NULL,
        stream smallint NOT NULL,
        data bytea NOT NULL,
        hash bytea NOT NULL,
        CONSTRAINT records_unique PRIMARY KEY (lid, stream, seq)
    );
    CREATE TABLE checkpoints (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        checkpoint_id text COLLATE "C" NOT NULL CONSTRAINT checkpoints_id_unique UNIQUE,
        agent_id text COLLATE "C" NOT NULL,
        lineage_id text COLLATE "C" NOT NULL,
        parent_checkpoint_id text COLLATE "C",
        step_number bigint NOT NULL,
        timestamp text COLLATE "C" NOT NULL,
        status text NOT NULL,
        heads bytea NOT NULL,
        body bytea NOT NULL,
        checksum text NOT NULL,
        size_bytes bigint NOT NULL
    );
    CREATE INDEX checkpoints_by_agent ON checkpoints (agent_id, seq);
    """,
    # Leases: which worker runs an agent, until when (the server's clock decides).
    """
    CREATE TABLE leases (
        agent_id text COLLATE "C" PRIMARY KEY,
        worker_id text NOT NULL,
        expires_at double precision NOT NULL
    );
    """,
)
assert len(MIGRATIONS) == SCHEMA_VERSION


def migrate(conn: psycopg.Connection[Any], schema: str, lock_key: int, where: str) -> None:
    """Create ``schema`` if needed and apply the migrations it lacks, in one transaction."""
    with conn.transaction():
        conn.execute(LOCK, (lock_key,))
        if conn.execute(SELECT_SCHEMA, (schema,)).fetchone() is None:
            conn.execute(sql.SQL(CREATE_SCHEMA).format(sql.Identifier(schema)))
        conn.execute(CREATE_MIGRATIONS)
        version = first(conn.execute(SELECT_VERSION).fetchone())[0]
        if version > SCHEMA_VERSION:
            raise StorageError(f"{where} has store schema {version}, newer than this kaizen-state's {SCHEMA_VERSION}")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            conn.execute(MIGRATIONS[number - 1])
            conn.execute(INSERT_MIGRATION, (number,))


def check_schema(conn: psycopg.Connection[Any], schema: str, where: str) -> None:
    """Read-only opening: the schema must exist and hold kaizen tables this release can read."""
    if conn.execute(SELECT_SCHEMA, (schema,)).fetchone() is None:
        raise StoreNotFoundError(
            f"no kaizen store in {where}: the schema {schema!r} does not exist (opened "
            "read-only, so it is not created; check ?schema= in the store URL)")
    if not first(conn.execute(SELECT_MIGRATIONS_TABLE).fetchone())[0]:
        raise NotAKaizenStoreError(f"{where} is not a kaizen store: the schema holds no kaizen "
                                   "tables; it was left untouched")
    version = first(conn.execute(SELECT_VERSION).fetchone())[0]
    if version < 1:
        raise NotAKaizenStoreError(f"{where} is not a kaizen store: no kaizen migration was applied")
    if version > SCHEMA_VERSION:
        raise StorageError(f"{where} has store schema {version}, newer than this kaizen-state's {SCHEMA_VERSION}")


def first(row: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """The row a statement always returns (an aggregate, ``RETURNING``)."""
    if row is None:
        raise StorageError("PostgreSQL returned no row where one is always expected")
    return row
