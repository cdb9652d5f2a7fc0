"""Opening a store read-only changes nothing: archived stores on read-only volumes can be read and
audited, and a file or schema that is not a kaizen store is named as such and left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from history_steps import run_steps
from pg import DSN, drop_schema, new_schema, require_server, store_url
from read_only_dir import read_only_dir, snapshot

from kaizen.core.autonomy.state.errors import NotAKaizenStoreError, ReadOnlyStoreError, StoreNotFoundError
from kaizen.core.autonomy.state.storage import open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def _read_everything(url: str) -> None:
    reader = SyncStateManager(open_store(url, read_only=True))
    assert reader.list_agents() == ["archived"]
    assert len(reader.list_checkpoints("archived")) == 3
    assert len(reader.load_latest("archived").approval_history) == 3
    assert reader.verify_audit("archived").ok
    assert reader.export_agent("archived")["agent_id"] == "archived"
    with pytest.raises(ReadOnlyStoreError):
        run_steps(reader, "archived", 1, start=3)
    reader.close()


@pytest.mark.parametrize("kind", ["sqlite", "filesystem"])
def test_a_store_in_a_read_only_directory_is_read_and_audited_unchanged(tmp_path: Path, kind: str) -> None:
    archive = tmp_path / "archive"
    url = f"sqlite:///{archive}/state.db" if kind == "sqlite" else f"file://{archive}/store"
    with SyncStateManager(open_store(url)) as writer:
        run_steps(writer, "archived", 3)
    before = snapshot(archive)
    with read_only_dir(archive) as (view, how):
        _read_everything(url.replace(str(archive), str(view)))
        if how != "chmod":  # the directory really refuses writes, so no -wal/-shm/lock file appeared
            assert snapshot(view) == before
    assert snapshot(archive) == before, f"read-only opening changed files (directory made read-only by {how})"


def test_another_programs_sqlite_file_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO orders (total) VALUES (9.5)")
    conn.close()
    before = snapshot(tmp_path)
    for url in (f"sqlite:///{path}", str(path)):
        with pytest.raises(NotAKaizenStoreError, match="not a kaizen store"):
            open_store(url, read_only=True)
    assert snapshot(tmp_path) == before  # no tables added, no -wal or -shm file beside it
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["orders"]
    conn.close()


def test_files_that_are_not_sqlite_or_not_there(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("shopping list\n")
    (tmp_path / "empty.db").write_bytes(b"")
    for name in ("notes.db", "empty.db"):
        with pytest.raises(NotAKaizenStoreError, match="not a kaizen store"):
            open_store(tmp_path / name, read_only=True)
    assert (tmp_path / "notes.db").read_text() == "shopping list\n" and (tmp_path / "empty.db").read_bytes() == b""
    with pytest.raises(StoreNotFoundError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path}/nowhere/state.db", read_only=True)
    assert not (tmp_path / "nowhere").exists()


def test_a_directory_that_is_not_a_filesystem_store(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff\xd8")
    before = snapshot(tmp_path)
    with pytest.raises(NotAKaizenStoreError, match="not a kaizen store"):
        open_store(f"file://{tmp_path}/photos", read_only=True)
    assert snapshot(tmp_path) == before


def test_reading_creates_no_lock_file(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/store"
    with SyncStateManager(open_store(url)) as writer:
        run_steps(writer, "archived", 3)
    locks = tmp_path / "store" / "_locks"
    for lock in locks.iterdir():
        lock.unlink()
    before = snapshot(tmp_path)
    _read_everything(url)
    assert snapshot(tmp_path) == before and list(locks.iterdir()) == []


# --- PostgreSQL -----------------------------------------------------------------------------
def test_postgres_missing_database_says_createdb() -> None:
    require_server()
    missing = urlsplit(DSN)._replace(path="/kaizen_no_such_db").geturl()
    for read_only in (True, False):
        with pytest.raises(StoreNotFoundError, match="createdb kaizen_no_such_db"):
            SyncStateManager(open_store(missing, read_only=read_only)).list_agents()


def test_postgres_read_only_session_and_foreign_schema() -> None:
    require_server()
    import psycopg

    schema = new_schema()
    try:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
            conn.execute(f'CREATE TABLE "{schema}".orders (id int)')
        with pytest.raises(NotAKaizenStoreError, match="not a kaizen store"):
            open_store(store_url(schema), read_only=True)
        with psycopg.connect(DSN, autocommit=True) as conn:
            tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
        assert tables == [("orders",)]  # no migration ran
    finally:
        drop_schema(schema)
    schema = new_schema()
    try:
        with SyncStateManager(open_store(store_url(schema))) as writer:
            run_steps(writer, "archived", 3)
        _read_everything(store_url(schema))
        reader = open_store(store_url(schema), read_only=True)
        with reader._connect("probe") as conn:  # the session itself refuses writes, whatever is sent
            assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("DELETE FROM checkpoints")
        reader.close()
    finally:
        drop_schema(schema)


def test_another_programs_sqlite_file_is_never_written_into_by_a_writer_either(tmp_path: Path) -> None:
    """``AutonomousConfig(storage="sqlite:///app.db")`` pointed at the application's own database."""
    from history_steps import run_steps as save_steps

    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    conn.close()
    before = snapshot(tmp_path)
    manager = SyncStateManager(f"sqlite:///{path}")
    with pytest.raises(NotAKaizenStoreError, match=r"another program's tables \(orders\); it was left untouched"):
        save_steps(manager, "agent", 1)
    manager.close()
    assert snapshot(tmp_path) == before  # still in its own journal mode: no -wal or -shm beside it


def test_a_sqlite_store_damaged_below_its_rows_is_named_damaged(tmp_path: Path) -> None:
    from kaizen.core.autonomy.state.errors import CheckpointCorruptError, StorageError

    path = tmp_path / "state.db"
    with SyncStateManager(f"sqlite:///{path}") as writer:
        run_steps(writer, "agent", 3)
    with sqlite3.connect(path) as conn:  # a row's heads overwritten by bytes that are not even text
        (newest,) = conn.execute("SELECT checkpoint_id FROM checkpoints ORDER BY seq DESC LIMIT 1").fetchone()
        conn.execute("UPDATE checkpoints SET heads = X'deadbeef' WHERE checkpoint_id = ?", (newest,))
    conn.close()
    with pytest.raises(CheckpointCorruptError, match=f"{newest}.*stream heads cannot be decoded"):
        SyncStateManager(open_store(f"sqlite:///{path}", read_only=True)).load_latest("agent")
    with path.open("r+b") as file:  # half the file gone: SQLite itself finds it malformed
        file.truncate(path.stat().st_size // 2)
    with pytest.raises(StorageError, match="is damaged: SQLite finds the file malformed"):
        SyncStateManager(open_store(f"sqlite:///{path}", read_only=True)).load_latest("agent")


def test_a_sqlite_url_naming_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="is a directory, not a SQLite store"):
        open_store(f"sqlite:///{tmp_path}", read_only=True)
