"""What only the PostgreSQL store has: schemas and migrations, a pool, several processes
writing at once, and a server that may not be there.

Needs a server at ``KAIZEN_PG_DSN`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
Without one these tests skip, except under ``CI=true`` where they fail. Each test works
in its own random schema, dropped at the end.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
import socket
import time
from typing import Any

import pytest

CI = os.environ.get("CI", "").lower() == "true"
if CI:
    import psycopg  # under CI a missing driver fails the run
else:
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg 3")

from psycopg import sql  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from kaizen.core.autonomy.state.errors import CheckpointConflictError, StorageError  # noqa: E402
from kaizen.core.autonomy.state.ids import new_lineage_id  # noqa: E402
from kaizen.core.autonomy.state.sync_manager import SyncStateManager  # noqa: E402
from kaizen.core.autonomy.state.storage import open_store  # noqa: E402
from kaizen.core.autonomy.state.storage.postgres import SCHEMA_VERSION, PostgresStorage, redact_dsn  # noqa: E402
from kaizen.core.autonomy.state.storage.rows import plan_save  # noqa: E402
from kaizen.core.autonomy.state.types import AgentState  # noqa: E402

DSN = os.environ.get("KAIZEN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
SPAWN = multiprocessing.get_context("spawn")
PROCESS_TIMEOUT = 120


# --- fixtures (the server check moves to a shared conftest later) --------------------------
@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The test server's DSN; skip without a server, but fail under CI=true."""
    try:
        psycopg.connect(DSN, connect_timeout=5).close()
    except psycopg.Error as exc:
        message = f"PostgreSQL at {redact_dsn(DSN)} is unreachable ({exc}); set KAIZEN_PG_DSN or start the server"
        if CI:
            pytest.fail(message)
        pytest.skip(message)
    return DSN


@pytest.fixture
def schema(pg_dsn: str) -> Any:
    name = f"kz_test_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def store(pg_dsn: str, schema: str) -> Any:
    store = PostgresStorage(pg_dsn, schema=schema)
    store.setup()
    yield store
    store.close()


def _query(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(DSN, autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def _state(agent_id: str, parent: Any, turns: int, **fields: Any) -> AgentState:
    history = [{"role": "user", "content": f"turn {i}"} for i in range(turns)]
    return AgentState(
        agent_id=agent_id, parent_checkpoint_id=parent.checkpoint_id if parent else None,
        step_number=turns, conversation_history=history, **fields,
    )


def _run(target: Any, args_list: list[tuple[Any, ...]]) -> list[Any]:
    """Run ``target(queue, *args)`` in one spawned process per args; their reports in order."""
    queue = SPAWN.Queue()
    processes = [SPAWN.Process(target=target, args=(queue, index, *args)) for index, args in enumerate(args_list)]
    for process in processes:
        process.start()
    reports: dict[int, Any] = {}
    deadline = time.monotonic() + PROCESS_TIMEOUT
    try:
        while len(reports) < len(processes):
            index, report = queue.get(timeout=max(deadline - time.monotonic(), 0.1))
            reports[index] = report
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    return [reports[i] for i in range(len(processes))]


def _wait_until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _lock_waiters(application_name: str) -> int:
    """How many sessions of this application are blocked on a lock."""
    rows = _query(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = %s",
        application_name,
    )
    return rows[0][0]


def _race(store: PostgresStorage, plans: list[Any], hold_lock: str, *params: Any) -> list[Any]:
    """Save ``plans`` from one process each, all queued behind a lock we hold, then let them go.

    Both writers are inside their transaction when the lock is released, so this
    exercises the real race, not two saves that merely happen close together.
    """
    tag = f"kz_race_{secrets.token_hex(4)}"
    dsn = make_conninfo(DSN, application_name=tag)
    queue = SPAWN.Queue()
    processes = [SPAWN.Process(target=_save_worker, args=(queue, i, dsn, store.schema, plan))
                 for i, plan in enumerate(plans)]
    with psycopg.connect(DSN) as blocker:
        blocker.execute(hold_lock, params)
        for process in processes:
            process.start()
        try:
            _wait_until(lambda: _lock_waiters(tag) == len(plans), "every writer to queue on the lock")
            blocker.rollback()
            return sorted(queue.get(timeout=PROCESS_TIMEOUT)[1] for _ in processes)
        finally:
            for process in processes:
                process.join(timeout=10)
                if process.is_alive():
                    process.terminate()


# --- workers (top level: spawned processes import them) -------------------------------------
def _setup_worker(queue: Any, index: int, dsn: str, schema: str, barrier: Any) -> None:
    store = PostgresStorage(dsn, schema=schema)
    try:
        barrier.wait(timeout=60)
        store.setup()
        queue.put((index, "ok"))
    except Exception as exc:  # reported to the parent, which fails the test
        queue.put((index, f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


def _save_worker(queue: Any, index: int, dsn: str, schema: str, plan: Any) -> None:
    store = PostgresStorage(dsn, schema=schema)
    try:
        store.write(plan)
        queue.put((index, ("ok", plan.row.checkpoint_id)))
    except CheckpointConflictError as exc:
        queue.put((index, ("conflict", exc.expected_parent, exc.actual_head)))
    except Exception as exc:
        queue.put((index, ("error", f"{type(exc).__name__}: {exc}")))
    finally:
        store.close()


def _writer_worker(queue: Any, index: int, dsn: str, schema: str, agent_id: str, saves: int,
                   barrier: Any) -> None:
    store = PostgresStorage(dsn, schema=schema, max_size=1)
    try:
        store.setup()
        barrier.wait(timeout=60)
        parent, lineage_id = None, new_lineage_id()
        for turn in range(1, saves + 1):
            plan = plan_save(_state(agent_id, parent, turn), parent, lineage_id)
            store.write(plan)
            parent = plan.row
        queue.put((index, "ok"))
    except Exception as exc:
        queue.put((index, f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()


# --- schema and migrations ------------------------------------------------------------------
def test_setup_twice_applies_each_migration_once(pg_dsn: str, schema: str) -> None:
    store = PostgresStorage(pg_dsn, schema=schema)
    try:
        store.setup()
        store.setup()
        assert _query(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1") == [(1,), (2,)]
        tables = _query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1", schema)
        assert [t for (t,) in tables] == ["checkpoints", "leases", "lineages", "records", "schema_migrations"]
    finally:
        store.close()


def test_setup_from_four_processes_at_once(pg_dsn: str, schema: str) -> None:
    barrier = SPAWN.Barrier(4)
    reports = _run(_setup_worker, [(pg_dsn, schema, barrier)] * 4)
    assert reports == ["ok"] * 4
    assert _query(f"SELECT version FROM {schema}.schema_migrations ORDER BY 1") == [(1,), (2,)]


def test_a_schema_from_a_newer_release_is_refused(pg_dsn: str, store: PostgresStorage) -> None:
    _query(f"INSERT INTO {store.schema}.schema_migrations (version) VALUES (99)")
    with pytest.raises(StorageError, match=rf"schema 99, newer than .* {SCHEMA_VERSION}"):
        PostgresStorage(pg_dsn, schema=store.schema).setup()


def test_columns_are_compact(store: PostgresStorage) -> None:
    columns = dict(_query(
        "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = %s", store.schema,
    ))
    assert columns["records.data"] == columns["records.hash"] == "bytea"
    assert columns["records.stream"] == "smallint"
    assert columns["records.lid"] == columns["lineages.lid"] == "integer"
    assert columns["checkpoints.seq"] == "bigint"
    plan = plan_save(_state("agent-a", None, 3), None, new_lineage_id())
    store.write(plan)
    assert _query(f"SELECT DISTINCT octet_length(hash) FROM {store.schema}.records") == [(32,)]


def test_schemas_keep_stores_apart(pg_dsn: str, store: PostgresStorage, schema: str) -> None:
    store.write(plan_save(_state("agent-a", None, 1), None, new_lineage_id()))
    other_schema = f"{schema}_b"
    other = PostgresStorage(pg_dsn, schema=other_schema)
    try:
        assert other.list_agents() == []
        assert store.list_agents() == ["agent-a"]
    finally:
        other.close()
        _query(f"DROP SCHEMA IF EXISTS {other_schema} CASCADE")


@pytest.mark.parametrize("name", ["Kaizen", "1abc", "a-b", "a;drop", "", "x" * 64])
def test_bad_schema_names_are_refused(name: str) -> None:
    with pytest.raises(StorageError, match="schema name"):
        PostgresStorage("postgresql://postgres@127.0.0.1/test", schema=name)


def test_open_store_reads_the_schema_from_the_url(pg_dsn: str, schema: str) -> None:
    store = open_store(f"{pg_dsn}?schema={schema}")
    try:
        assert isinstance(store, PostgresStorage)
        assert store.schema == schema
        store.setup()
        assert _query("SELECT 1 FROM pg_namespace WHERE nspname = %s", schema) == [(1,)]
    finally:
        store.close()


# --- reads, writes and errors ---------------------------------------------------------------
def test_many_records_round_trip_as_bytes(store: PostgresStorage) -> None:
    plan = plan_save(_state("agent-a", None, 500, metadata={"k": "\u00e9\u2603"}), None, new_lineage_id())
    store.write(plan)  # enough records for the COPY path
    records = store.read_records(plan.row.lineage_id, "conversation_history", 0, 1000)
    assert records == plan.records
    assert all(type(r.data) is bytes for r in records)
    row = store.read_checkpoint(plan.row.checkpoint_id)
    assert row == plan.row and type(row.body) is bytes
    state = SyncStateManager(store).load_latest("agent-a")
    assert state is not None and len(state.conversation_history) == 500


def test_a_duplicate_checkpoint_id_names_it(store: PostgresStorage) -> None:
    first = plan_save(_state("agent-a", None, 1), None, new_lineage_id())
    store.write(first)
    twin = plan_save(_state("agent-b", None, 1, checkpoint_id=first.row.checkpoint_id), None, new_lineage_id())
    with pytest.raises(StorageError, match=first.row.checkpoint_id) as caught:
        store.write(twin)
    assert "already exists" in str(caught.value)
    assert store.list_agents() == ["agent-a"]  # the failed save left nothing behind


def test_database_errors_name_the_store_and_the_operation(store: PostgresStorage) -> None:
    _query(f"DROP TABLE {store.schema}.checkpoints")
    with pytest.raises(StorageError) as caught:
        store.latest_checkpoint("agent-a")
    message = str(caught.value)
    assert store.url in message and store.schema in message and "latest checkpoint" in message


def test_close_then_use_again_reopens(store: PostgresStorage) -> None:
    store.write(plan_save(_state("agent-a", None, 1), None, new_lineage_id()))
    store.close()
    assert store.list_agents() == ["agent-a"]


def test_before_compares_timestamps_as_text(store: PostgresStorage) -> None:
    parent = None
    lineage_id = new_lineage_id()
    for turn, stamp in enumerate(["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.5+00:00"], start=1):
        plan = plan_save(_state("agent-a", parent, turn, timestamp=stamp), parent, lineage_id)
        store.write(plan)
        parent = plan.row
    assert _query(
        "SELECT collation_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'checkpoints' AND column_name = 'timestamp'", store.schema,
    ) == [("C",)]  # byte order, as in Python, whatever the database's default collation
    assert [r.timestamp for r in store.list_rows("agent-a", before="2024-01-01T00:00:00.100000")] == [
        "2024-01-01T00:00:00.000000+00:00"  # stored in UTC with microseconds, so text order is time order
    ]


# --- processes ------------------------------------------------------------------------------
def test_two_processes_on_the_same_parent_one_wins(store: PostgresStorage, pg_dsn: str) -> None:
    root = plan_save(_state("agent-a", None, 1), None, new_lineage_id())
    store.write(root)
    plans = [plan_save(_state("agent-a", root.row, 2 + i), root.row, root.row.lineage_id) for i in range(2)]
    reports = _race(store, plans, f"SELECT 1 FROM {store.schema}.lineages FOR UPDATE")  # holds the head row
    assert [r[0] for r in reports] == ["conflict", "ok"]
    winner = reports[1][1]
    assert reports[0][1:] == (root.row.checkpoint_id, winner)
    assert store.latest_checkpoint("agent-a").checkpoint_id == winner
    assert store.read_lineage(root.row.lineage_id).head_checkpoint_id == winner


def test_two_processes_saving_an_agents_first_checkpoint_one_wins(store: PostgresStorage, pg_dsn: str) -> None:
    plans = [plan_save(_state("agent-a", None, 1 + i), None, new_lineage_id()) for i in range(2)]
    reports = _race(store, plans, "SELECT pg_advisory_xact_lock(%s)", store._lock_key("agent", "agent-a"))
    assert [r[0] for r in reports] == ["conflict", "ok"]
    assert reports[0][1:] == (None, reports[1][1])
    assert [r.checkpoint_id for r in store.list_rows("agent-a")] == [reports[1][1]]
    assert len(store.list_lineages("agent-a")) == 1


@pytest.mark.slow
def test_eight_writers_on_eight_agents(store: PostgresStorage, pg_dsn: str) -> None:
    saves = 30
    barrier = SPAWN.Barrier(8)
    agents = [f"agent-{i}" for i in range(8)]
    reports = _run(_writer_worker, [(pg_dsn, store.schema, agent, saves, barrier) for agent in agents])
    assert reports == ["ok"] * 8
    assert store.list_agents() == agents
    manager = SyncStateManager(store)
    for agent in agents:
        rows = store.list_rows(agent)
        assert [r.step_number for r in rows] == list(range(saves, 0, -1))
        state = manager.load_latest(agent)
        assert state is not None and len(state.conversation_history) == saves


# --- no server ------------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_server_says_how_to_fix_it() -> None:
    store = PostgresStorage(f"postgresql://kaizen:hunter2@127.0.0.1:{_closed_port()}/test", schema="kaizen")
    assert "hunter2" not in store.url  # building the store does not connect
    with pytest.raises(StorageError) as caught:
        store.latest_checkpoint("agent-a")
    message = str(caught.value)
    assert "cannot connect" in message and "127.0.0.1" in message
    assert "KAIZEN_PG_DSN" in message and "start" in message.lower()
    assert "hunter2" not in message
    store.close()


@pytest.mark.parametrize("dsn", [
    "postgresql://kaizen:hunter2@db.example:5432/state?sslmode=require",
    "postgresql://kaizen@db.example/state?password=hunter2",
    "host=db.example user=kaizen password=hunter2 dbname=state",
])
def test_the_url_has_no_password(dsn: str) -> None:
    url = PostgresStorage(dsn).url
    assert "hunter2" not in url and "db.example" in url and "kaizen" in url
