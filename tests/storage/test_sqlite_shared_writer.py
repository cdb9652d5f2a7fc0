"""Group commit across processes on one SQLite file: one process hosts the writes, the others hand
it their saves; each save's outcome (a conflict included) comes back to its own caller, and killing
the host loses no acknowledged save and leaves no half-written one."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state.errors import CheckpointConflictError, StorageError
from kaizen.core.autonomy.state.storage import STREAMS, open_store
from kaizen.core.autonomy.state.storage.base import CheckpointRow, LineageRow, RecordRow, SavePlan, StreamHead
from kaizen.core.autonomy.state.storage.plan_wire import (
    WireError, decode, encode, outcome_from_wire, outcome_to_wire, plan_from_wire, plan_to_wire,
)
from kaizen.core.autonomy.state.storage.rows import plan_save
from kaizen.core.autonomy.state.storage.sqlite_shared import AVAILABLE, ProcessSharedWriter, receive
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.types import AgentState

from test_group_commit import check_intact, next_state

WORKER = Path(__file__).with_name("shared_writer_worker.py")
needs_sockets = pytest.mark.skipif(not AVAILABLE, reason="abstract Unix sockets with SO_PEERCRED are Linux-only")


def hosted(tmp_path: Path) -> tuple[str, SyncStateManager, AgentState]:
    """A store on a new file whose first save made this process the file's host."""
    url = f"sqlite:///{tmp_path}/state.db"
    manager = SyncStateManager(url)
    state = AgentState(agent_id="agent-0", step_number=1)
    manager.save_checkpoint(state)
    assert manager.storage.committer.writer.role == "host"
    return url, manager, state


def client_of(tmp_path: Path) -> ProcessSharedWriter:
    """A second writer on the file, as another process has: it finds the host and forwards to it."""
    return ProcessSharedWriter(tmp_path / "state.db", 60_000, "FULL")


@contextmanager
def host_and_client(tmp_path: Path) -> Iterator[tuple[str, SyncStateManager, AgentState, ProcessSharedWriter]]:
    """``hosted`` plus ``client_of``, both closed afterwards (closing twice is harmless)."""
    url, manager, state = hosted(tmp_path)
    client = client_of(tmp_path)
    try:
        yield url, manager, state, client
    finally:
        client.close()
        manager.close()


def plan_on_latest(manager: SyncStateManager, state: AgentState, step: int) -> SavePlan:
    parent = manager.storage.latest_checkpoint(state.agent_id)
    return plan_save(next_state(state, step), parent, parent.lineage_id)


@needs_sockets
def test_a_second_writer_hands_its_saves_to_the_host_and_gets_each_outcome(tmp_path):
    with host_and_client(tmp_path) as (url, manager, state, client):
        mine, theirs = plan_on_latest(manager, state, 2), plan_on_latest(manager, state, 3)
        assert client.write_batch([mine]) == [None]
        assert client.role == "client"
        assert manager.load_latest("agent-0").checkpoint_id == mine.row.checkpoint_id
        [outcome] = client.write_batch([theirs])  # same parent as the save just committed
        assert isinstance(outcome, CheckpointConflictError)
        assert outcome.actual_head == mine.row.checkpoint_id
        assert manager.load_latest("agent-0").checkpoint_id == mine.row.checkpoint_id
        assert manager.verify_audit("agent-0").ok


@needs_sockets
def test_a_batch_of_several_agents_commits_through_the_host(tmp_path):
    with host_and_client(tmp_path) as (url, manager, _, client):
        plans = []
        for n in range(1, 6):
            state = AgentState(agent_id=f"agent-{n}", step_number=1)
            manager.save_checkpoint(state)
            plans.append(plan_on_latest(manager, state, 2))
        assert client.write_batch(plans) == [None] * 5
        for n, plan in enumerate(plans, 1):
            assert manager.load_latest(f"agent-{n}").checkpoint_id == plan.row.checkpoint_id


@needs_sockets
def test_when_the_host_closes_its_store_a_client_writes_itself(tmp_path):
    url, manager, state = hosted(tmp_path)
    client = client_of(tmp_path)
    try:
        assert client.write_batch([plan_on_latest(manager, state, 2)]) == [None]
        assert client.role == "client"
        manager.close()  # the host's last store on the file: it stops serving
        reader = SyncStateManager(url)
        plan = plan_on_latest(reader, state, 3)
        assert client.write_batch([plan]) == [None]
        assert client.role != "client"
        assert reader.load_latest("agent-0").checkpoint_id == plan.row.checkpoint_id
        reader.close()
    finally:
        client.close()


def test_a_save_whose_answer_never_came_is_looked_up_in_the_file(tmp_path):
    url, manager, state = hosted(tmp_path)
    writer = client_of(tmp_path)
    try:
        committed = plan_on_latest(manager, state, 2)
        manager.storage.write(committed)
        assert writer._settle([committed], write_missing=True) == [None]  # there: not written twice
        absent = plan_on_latest(manager, state, 3)
        [undecided] = writer._settle([absent], write_missing=False)
        assert isinstance(undecided, StorageError) and "may still be committed" in str(undecided)
        assert manager.load_latest("agent-0").checkpoint_id == committed.row.checkpoint_id
        assert writer._settle([absent], write_missing=True) == [None]  # the host is gone: written now
        assert manager.load_latest("agent-0").checkpoint_id == absent.row.checkpoint_id
        other = plan_on_latest(manager, state, 4)
        forged = SavePlan(CheckpointRow(**{**vars(other.row), "checkpoint_id": absent.row.checkpoint_id}),
                          other.records, None, other.expected_head)
        [clash] = writer._settle([forged], write_missing=True)
        assert isinstance(clash, StorageError) and "already exists" in str(clash)
        assert manager.verify_audit("agent-0").ok
    finally:
        writer.close()
        manager.close()


@needs_sockets
def test_the_host_refuses_a_malformed_request_and_writes_nothing(tmp_path):
    url, manager, state = hosted(tmp_path)
    before = manager.load_latest("agent-0").checkpoint_id
    writer = client_of(tmp_path)
    link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        link.settimeout(10)
        link.connect(writer.address)
        hello = receive(link)
        info = os.stat(tmp_path / "state.db")
        assert hello["file"] == [info.st_dev, info.st_ino] and hello["pid"] == os.getpid()
        good = plan_to_wire(plan_on_latest(manager, state, 2))
        link.sendall(encode({"plans": [good, {**good, "row": good["row"][:5]}]}))
        reply = receive(link)
        assert set(reply) == {"refused"} and "row must be a list of 11 items" in reply["refused"]
        assert manager.load_latest("agent-0").checkpoint_id == before  # not even the good plan
        link.sendall(b"\x00\x00\x00\x05{oops")  # not JSON: the host hangs up
        assert link.recv(1) == b""
        assert manager.load_latest("agent-0").checkpoint_id == before
    finally:
        link.close()
        writer.close()
        manager.close()


@needs_sockets
def test_a_listener_serving_another_file_is_not_handed_anything(tmp_path):
    """Whatever answers at the file's host address must name this very file (device and inode):
    containers sharing a network namespace may each have a different file at the same path."""
    url = f"sqlite:///{tmp_path}/state.db"
    manager = SyncStateManager(url)
    state = AgentState(agent_id="agent-0", step_number=1)
    manager.save_checkpoint(state)
    manager.storage.committer.writer.close()  # stop hosting: the address is free for an impostor
    writer = client_of(tmp_path)
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(writer.address)
    impostor.listen(1)

    def greet() -> None:
        link, _ = impostor.accept()
        link.sendall(encode({"kaizen_sqlite_host": 1, "file": [0, 0], "synchronous": "FULL",
                             "path": str(tmp_path / "state.db"), "pid": os.getpid()}))
        link.recv(1 << 16)
        link.close()

    greeter = threading.Thread(target=greet, daemon=True)
    greeter.start()
    try:
        plan = plan_on_latest(manager, state, 2)
        assert writer.write_batch([plan]) == [None]
        assert writer.role == "alone"
        assert manager.load_latest("agent-0").checkpoint_id == plan.row.checkpoint_id
    finally:
        impostor.close()
        writer.close()
        manager.close()


@needs_sockets
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a process as another user")
def test_a_process_of_another_user_is_not_served(tmp_path):
    url, manager, _ = hosted(tmp_path)
    address = client_of(tmp_path).address
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.setuid(65534)
            link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            link.settimeout(10)
            link.connect(address)
            code = 1 if link.recv(1) else 0  # 0: closed without a word
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    manager.close()
    assert os.waitstatus_to_exitcode(status) == 0


# --- the messages -----------------------------------------------------------------------------
ids = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF), min_size=1, max_size=24)
big = st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
heads = st.fixed_dictionaries({s: st.builds(StreamHead, st.integers(0, 1 << 40), st.text(max_size=64),
                                            st.integers(0, (1 << 32) - 1)) for s in STREAMS})
rows = st.builds(CheckpointRow, ids, ids, ids, st.none() | ids, big, ids, ids, heads, st.binary(max_size=300), ids, big)
records = st.lists(st.builds(RecordRow, ids, st.sampled_from(STREAMS), big, st.binary(max_size=200), ids), max_size=4)
lineages = st.none() | st.builds(LineageRow, ids, ids, st.none() | ids, st.none() | ids,
                                 st.dictionaries(st.sampled_from(STREAMS), big), st.none() | ids, ids)
plans = st.builds(SavePlan, rows, records, lineages, st.none() | ids, st.booleans())


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(plans)
def test_a_plan_arrives_exactly_as_it_was_sent(plan):
    assert plan_from_wire(decode(encode(plan_to_wire(plan))[4:])) == plan


json_values = st.recursive(st.none() | st.booleans() | st.integers(-(1 << 60), 1 << 60) | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=4), max_leaves=20)


@settings(max_examples=300)
@given(plans, st.sampled_from(["row", "records", "lineage", "expected_head", "fork"]), json_values)
def test_a_damaged_plan_is_refused_whole_with_a_wire_error(plan, key, junk):
    message = {**plan_to_wire(plan), key: junk}
    try:
        decoded = plan_from_wire(message)
    except WireError:
        return
    assert plan_to_wire(decoded) == message  # accepted only if it is a well-formed plan


@given(json_values)
def test_anything_else_is_not_a_plan_or_an_outcome(junk):
    with pytest.raises(WireError):
        plan_from_wire(junk)
    try:
        outcome = outcome_from_wire(junk, "store")
    except WireError:
        return
    assert junk is None and outcome is None


def test_outcomes_keep_a_conflict_a_conflict():
    conflict = CheckpointConflictError("a", "ckpt_1", "ckpt_2")
    back = outcome_from_wire(outcome_to_wire(conflict), "store")
    assert isinstance(back, CheckpointConflictError) and (back.expected_parent, back.actual_head) == ("ckpt_1", "ckpt_2")
    error = outcome_from_wire(outcome_to_wire(StorageError("disk full")), "SQLite store x")
    assert type(error) is StorageError and "disk full" in str(error) and "SQLite store x" in str(error)
    assert outcome_from_wire(outcome_to_wire(None), "store") is None


# --- real processes ---------------------------------------------------------------------------
def start(url: str, first: int, agents: int, steps: int | None = None, *, linger: bool = False,
          gate: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, str(WORKER), url, str(first), str(agents)] + ([str(steps)] if steps else [])
    args += (["linger"] if linger else []) + (["gate"] if gate else [])
    return subprocess.Popen(args, stdin=subprocess.PIPE if gate else None, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def threads_all_in(pid: int, state: str, timeout: float = 30.0) -> None:
    """Wait until every thread of process ``pid`` is in ``state`` (``/proc``: "S" sleeping, "T" stopped)."""
    deadline = time.monotonic() + timeout
    while True:
        states = set()
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                states.add((task / "stat").read_text().rpartition(")")[2].split()[0])
            except OSError:
                continue  # a thread that just ended
        if states == {state}:
            return
        assert time.monotonic() < deadline, f"process {pid}'s threads stayed {states}, not all {state!r}"
        time.sleep(0.01)


def started_together(procs: list[subprocess.Popen[str]]) -> None:
    """Let gated workers (``start(..., gate=True)``) save once every one of them is ready."""
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()


class Drained:
    """A worker process whose output is read as it comes (so no pipe fills up and stalls it)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    def wait_for(self, done, what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not done(self.lines):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                raise AssertionError(f"no {what}; the worker printed {self.lines[-5:]}; "
                                     f"stderr: {self.proc.stderr.read()[-2000:]}")
            time.sleep(0.01)

    def kill(self) -> list[str]:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._reader.join(30)
        return self.lines


def acked(outputs: list[list[str]]) -> dict[str, list[tuple[str, int]]]:
    found: dict[str, list[tuple[str, int]]] = {}
    for lines in outputs:
        for line in lines:
            if line.startswith("ACK "):
                _, agent_id, checkpoint_id, step = line.split()
                found.setdefault(agent_id, []).append((checkpoint_id, int(step)))
    return found


@needs_sockets
@pytest.mark.slow
def test_processes_share_one_writer_and_every_save_lands(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    open_store(url).setup()
    procs = [start(url, 3 * n, 3, 40, gate=True) for n in range(4)]
    started_together(procs)
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and "Traceback" not in err, err[-3000:]
        outputs.append(out.splitlines())
    roles = {line for lines in outputs for line in lines if line.startswith("ROLE ")}
    assert {"ROLE host", "ROLE client"} <= roles, roles
    saved = acked(outputs)
    assert sum(len(mine) for mine in saved.values()) == 12 * 40
    check_intact(url, 12, saved)


@needs_sockets
@pytest.mark.slow
def test_kill_9_of_the_host_loses_no_acknowledged_save(tmp_path):
    """The host is killed while it and three clients save; the clients go on (one of them becomes
    the host), and every save any of them acknowledged is there, whole."""
    url = f"sqlite:///{tmp_path}/state.db"
    open_store(url).setup()
    rng = random.Random(int(os.environ.get("KAIZEN_CRASH_SEED", "7")))
    host = Drained(start(url, 0, 2))
    host.wait_for(lambda lines: "ROLE host" in lines, "host")
    clients = [Drained(start(url, 2 + 2 * n, 2)) for n in range(3)]
    for client in clients:
        client.wait_for(lambda lines: "ROLE client" in lines, "client")
    time.sleep(rng.uniform(0.2, 1.0))
    outputs = [host.kill()]
    took_over = lambda: any("ROLE host" in client.lines for client in clients)  # noqa: E731
    clients[0].wait_for(lambda _: took_over(), "new host")
    for client in clients:
        count = len(client.lines)
        client.wait_for(lambda lines, count=count: sum(x.startswith("ACK") for x in lines[count:]) > 20,
                        "saves after the host was killed")
    outputs += [client.kill() for client in clients]
    check_intact(url, 8, acked(outputs))


@needs_sockets
@pytest.mark.slow
def test_a_stopped_host_costs_one_wait_then_saves_go_direct(tmp_path):
    """A host that is stopped (Ctrl-Z, a debugger) still holds the lock and its address; a new writer
    sees that its greeting cannot come, then commits on its own without asking again for a while."""
    url = f"sqlite:///{tmp_path}/state.db"
    open_store(url).setup()
    host = Drained(start(url, 0, 1, 3, linger=True))
    host.wait_for(lambda lines: "DONE" in lines and "ROLE host" in lines, "idle host")
    host.proc.send_signal(signal.SIGSTOP)  # between saves: it holds no lock of the database itself
    try:
        manager = SyncStateManager(url)
        state = AgentState(agent_id="agent-9", step_number=1)
        manager.save_checkpoint(state)  # waits for a greeting that never comes, then writes itself
        began = time.monotonic()
        for step in range(2, 12):
            manager.save_checkpoint(next_state(state, step))
            state = manager.load_latest("agent-9")
        assert time.monotonic() - began < 4.0, "later saves waited on the stopped host again"
        assert manager.storage.committer.writer.role == "alone"
        assert manager.verify_audit("agent-9").ok and state.step_number == 11
        manager.close()
    finally:
        host.proc.send_signal(signal.SIGCONT)
        host.kill()


@needs_sockets
@pytest.mark.slow
def test_a_host_stopped_while_a_save_waits_on_it_does_not_hold_that_save(tmp_path):
    """The host is stopped (Ctrl-Z) after a client handed it a save: the client sees the host's
    process stopped, writes the save itself, and does not ask that host again for a while. Resumed,
    the host finds the save already there and writes nothing twice."""
    url = f"sqlite:///{tmp_path}/state.db"
    open_store(url).setup()
    host = Drained(start(url, 0, 1, 3, linger=True))
    host.wait_for(lambda lines: "DONE" in lines and "ROLE host" in lines, "idle host")
    manager = SyncStateManager(url)
    state = AgentState(agent_id="agent-9", step_number=1)
    try:
        manager.save_checkpoint(state)
        assert manager.storage.committer.writer.role == "client"
        threads_all_in(host.proc.pid, "S")  # idle: its answer sent, every thread waiting (not mid-commit)
        host.proc.send_signal(signal.SIGSTOP)
        threads_all_in(host.proc.pid, "T")
        began = time.monotonic()
        saved = []
        for step in (2, 3):
            saved.append(manager.save_checkpoint(next_state(state, step)))
            state = manager.load_latest("agent-9")
        assert time.monotonic() - began < 10.0, "the save waited out the answer timeout of a stopped host"
        assert manager.storage.committer.writer.role == "alone"
        assert manager.load_latest("agent-9").checkpoint_id == saved[-1]
        host.proc.send_signal(signal.SIGCONT)
        time.sleep(0.5)  # the host reads the save it was handed, finds it committed, writes nothing
        reader = SyncStateManager(url)
        assert reader.load_latest("agent-9").checkpoint_id == saved[-1]
        assert [row.checkpoint_id for row in reader.list_checkpoints("agent-9")][:2] == saved[::-1]
        assert reader.verify_audit("agent-9").ok and reader.verify_audit("agent-0").ok
        reader.close()
    finally:
        host.proc.send_signal(signal.SIGCONT)
        host.kill()
        manager.close()


def test_a_writer_holding_the_queue_lock_for_good_delays_a_save_only_up_to_the_busy_timeout(tmp_path):
    """The lock beside the file that orders writers of several processes is waited for no longer
    than the store's busy timeout (its holder may be a stopped process); then SQLite's lock decides."""
    from kaizen.core.autonomy.state.storage.sqlite import SQLiteStorage

    import fcntl

    store = SQLiteStorage(tmp_path / "state.db", busy_timeout_ms=300)
    manager = SyncStateManager(store)
    manager.save_checkpoint(AgentState(agent_id="a", step_number=1))
    holder = os.open(tmp_path / "state.db-kzlock", os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        began = time.monotonic()
        manager.save_checkpoint(AgentState(agent_id="a", step_number=2))
        assert 0.25 < time.monotonic() - began < 5.0
        assert manager.load_latest("a").step_number == 2
    finally:
        os.close(holder)
        manager.close()


@needs_sockets
def test_a_host_whose_file_was_replaced_serves_nothing_more(tmp_path):
    """The file was deleted and made again (a new inode) while its host ran: the host's connection
    still writes the deleted file, so it must not take saves meant for the new one."""
    from kaizen.core.autonomy.state.storage.sqlite import SQLiteStorage

    with host_and_client(tmp_path) as (url, manager, state, client):
        assert client.write_batch([plan_on_latest(manager, state, 2)]) == [None]
        assert client.role == "client"
        for name in ("state.db", "state.db-wal", "state.db-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        fresh = SQLiteStorage(tmp_path / "state.db")
        fresh.setup()  # a new, empty store at the same path
        plan = plan_save(AgentState(agent_id="newcomer", step_number=1), None, "lin_newcomer")
        assert client.write_batch([plan]) == [None]  # the host hangs up; the client writes the file itself
        assert client.role != "client"
        assert fresh.latest_checkpoint("newcomer").checkpoint_id == plan.row.checkpoint_id
        fresh.close()


@needs_sockets
def test_a_forked_child_of_the_host_hands_its_saves_to_its_parent(tmp_path):
    """A prefork worker pool (Celery's) forks after the parent saved: the child must not act as the
    host it inherited (sockets and lock are the parent's); it gets its own writer, a client."""
    with host_and_client(tmp_path) as (url, manager, state, client):
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                mine = SyncStateManager(url)
                mine.save_checkpoint(AgentState(agent_id="forked", step_number=1))
                code = 0 if mine.storage.committer.writer.role == "client" else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(child, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert manager.load_latest("forked").step_number == 1
        assert manager.storage.committer.writer.role == "host"  # the parent still serves
        plan = plan_on_latest(manager, state, 2)
        assert client.write_batch([plan]) == [None] and client.role == "client"


@needs_sockets
def test_a_host_that_stops_while_writing_a_batch_still_answers_it(tmp_path):
    """Stopping (the host's last store closing) must not cut a link whose batch is being written:
    its client would take the silence for "nothing committed" and write the save a second time."""
    from test_group_commit import wait_for, writes_blocked

    with host_and_client(tmp_path) as (url, manager, state, client):
        plan = plan_on_latest(manager, state, 2)
        outcomes: list[object] = []
        committer = manager.storage.committer
        with writes_blocked(url):
            forward = threading.Thread(target=lambda: outcomes.extend(client.write_batch([plan])))
            forward.start()
            wait_for(lambda: committer.leading, "the host to write the forwarded batch")
            committer.writer._host.stop()
        forward.join(60)
        assert outcomes == [None]
        assert client.role == "client"  # answered: it never had to look the save up and write it
        assert manager.load_latest("agent-0").checkpoint_id == plan.row.checkpoint_id


@needs_sockets
def test_a_host_closing_its_store_while_a_batch_arrives_writes_it_after_the_close(tmp_path, monkeypatch):
    """The host's last store closes (its own agent finished) just as another process hands it a batch:
    the batch waits for the close, then is written on a connection opened again; it never meets a
    writer closing under it. Stopping is slowed down so that the batch arrives during the close, and
    the file is locked so that, were the two to overlap, the batch would still be writing."""
    from test_group_commit import wait_for, writes_blocked

    from kaizen.core.autonomy.state.storage import sqlite_shared

    stopping = threading.Event()
    stop = sqlite_shared._Host.stop

    def slow_stop(host: sqlite_shared._Host) -> None:
        stopping.set()
        time.sleep(0.3)
        stop(host)

    monkeypatch.setattr(sqlite_shared._Host, "stop", slow_stop)
    with host_and_client(tmp_path) as (url, manager, state, client):
        plan = plan_on_latest(manager, state, 2)
        outcomes: list[object] = []
        with writes_blocked(url):
            closer = threading.Thread(target=manager.close)
            closer.start()
            wait_for(stopping.is_set, "the host's store to start closing")
            forward = threading.Thread(target=lambda: outcomes.extend(client.write_batch([plan])))
            forward.start()
            time.sleep(0.1)  # the host has the batch by now
            closer.join(15)  # the close does not wait for the batch: it comes first
            closing = closer.is_alive()
        closer.join(120)
        forward.join(120)
        assert not closing, "the store's close waited on the batch handed in meanwhile"
        assert outcomes == [None]
        reader = SyncStateManager(url)
        assert reader.load_latest("agent-0").checkpoint_id == plan.row.checkpoint_id
        reader.close()
