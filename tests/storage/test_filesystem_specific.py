"""What only the filesystem store has: file modes, path safety, crash leftovers, many processes.

The shared behaviour of every backend is in ``test_contract.py``; states are built with
``rows.plan_save`` and read back through ``rows.state_from_rows``, which checks every checksum and
hash chain, so "loads" below always means "loads and verifies".
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from fs_tamper import tamper_checkpoint_file, tamper_record_file

from kaizen.core.autonomy.state.errors import (
    CheckpointConflictError,
    CheckpointCorruptError,
    CheckpointNotFoundError,
    InvalidStateValueError,
    LeaseHeldError,
    StorageError,
)
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.core.autonomy.state.storage import STREAMS, open_store, rows
from kaizen.core.autonomy.state.storage import filesystem as fs_module
from kaizen.core.autonomy.state.storage import fs_format
from kaizen.core.autonomy.state.storage.base import CheckpointRow
from kaizen.core.autonomy.state.storage.filesystem import FilesystemStorage
from kaizen.core.autonomy.state.types import AgentState

LINEAGE = "lin_agent-1"  # save_steps names the lineage after the agent: lineage ids are store-wide


def state(agent_id: str, step: int, per_step: int = 2) -> AgentState:
    """Step ``step`` of an agent whose history grows by ``per_step`` messages each step."""
    messages = [{"role": "user", "content": f"{agent_id} message {i}"} for i in range((step + 1) * per_step)]
    actions = [{"tool": "search", "n": i} for i in range(step)]
    return AgentState(agent_id=agent_id, step_number=step, conversation_history=messages,
                      completed_actions=actions, memory_contents={"step": step})


def save_steps(store: FilesystemStorage, agent_id: str, steps: int, parent: CheckpointRow | None = None,
               lineage: str | None = None, first: int = 0) -> CheckpointRow | None:
    lineage = lineage or f"lin_{agent_id}"
    for step in range(first, first + steps):
        plan = rows.plan_save(state(agent_id, step), parent, lineage)
        store.write(plan)
        parent = plan.row
    return parent


def load(store: FilesystemStorage, row: CheckpointRow) -> AgentState:
    rows.verify_row(row)
    for s in STREAMS:  # the full SHA-256 chain, as verify_audit checks it
        rows.verify_chain(row, s, store.read_records(row.lineage_id, s, 0, row.heads[s].count))
    streams = {s: store.read_stream(row.lineage_id, s, 0, row.heads[s].count) for s in STREAMS}
    return rows.state_from_rows(row, streams)


def assert_loads_step(store: FilesystemStorage, agent_id: str, step: int) -> None:
    latest = store.latest_checkpoint(agent_id)
    assert latest is not None and latest.step_number == step
    loaded = load(store, latest)
    expected = state(agent_id, step)
    assert loaded.conversation_history == expected.conversation_history
    assert loaded.completed_actions == expected.completed_actions


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStorage:
    backend = FilesystemStorage(tmp_path / "store")
    backend.setup()
    return backend


def test_open_store_file_url_builds_a_filesystem_store(tmp_path: Path) -> None:
    backend = open_store(f"file://{tmp_path}/ckpts")
    assert isinstance(backend, FilesystemStorage)
    save_steps(backend, "agent-1", 2)
    assert_loads_step(open_store(f"file://{tmp_path}/ckpts"), "agent-1", 1)


def test_directories_are_0700_and_files_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        backend = FilesystemStorage(tmp_path / "store")
        last = save_steps(backend, "agent-1", 3)
        backend.write(rows.plan_fork(last, "ckpt_fork", "lin_fork", "agent-1"))
        backend.acquire_lease("agent-1", "worker-1", 30)
    finally:
        os.umask(old)
    seen_files = 0
    for directory, subdirs, files in os.walk(tmp_path / "store"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
        for name in files:
            seen_files += 1
            assert stat.S_IMODE(os.stat(Path(directory, name)).st_mode) == 0o600, name
    assert seen_files >= 8  # format, lock, index entries, checkpoints, lineages, records


BAD_IDS = ["../evil", "../../etc/passwd", "/etc/passwd", "a/b", "a\x00b", "..", ".hidden", "", "a" * 200]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_could_leave_the_directory_are_rejected_naming_the_id(store: FilesystemStorage, bad: str,
                                                                       tmp_path: Path) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    plan = rows.plan_save(state("agent-1", 0), None, LINEAGE)
    shown = repr(bad[:140])
    for call in (
        lambda: store.write(replace(plan, row=replace(plan.row, agent_id=bad))),
        lambda: store.write(replace(plan, row=replace(plan.row, checkpoint_id=bad))),
        lambda: store.write(replace(plan, row=replace(plan.row, lineage_id=bad),
                                   new_lineage=replace(plan.new_lineage, lineage_id=bad))),
        lambda: store.read_checkpoint(bad),
        lambda: store.read_lineage(bad),
        lambda: store.read_records(bad, "conversation_history", 0, 10),
        lambda: store.latest_checkpoint(bad),
        lambda: store.list_rows(bad),
        lambda: store.list_lineages(bad),
        lambda: store.delete_checkpoints(bad, []),
        lambda: store.delete_checkpoints("agent-1", [bad]),
        lambda: store.delete_agent(bad),
    ):
        with pytest.raises(InvalidStateValueError) as caught:
            call()
        assert shown in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert store.list_agents() == []


def test_a_symlink_out_of_the_store_is_refused(store: FilesystemStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.base_dir / "intruder").symlink_to(outside)
    plan = rows.plan_save(state("intruder", 0), None, LINEAGE)
    with pytest.raises(InvalidStateValueError, match="'intruder' resolves outside"):
        store.write(plan)
    with pytest.raises(InvalidStateValueError, match="'intruder' resolves outside"):
        store.latest_checkpoint("intruder")
    assert list(outside.iterdir()) == []


def test_a_torn_records_append_is_discarded_by_the_next_save(store: FilesystemStorage) -> None:
    last = save_steps(store, "agent-1", 3)
    records_file = store.base_dir / "agent-1" / "records" / f"{LINEAGE}.rec"
    committed = records_file.stat().st_size
    with open(records_file, "ab") as torn:  # a save that died halfway through its append
        torn.write(b"\x01\x07\x00garbage that is not a whole entry" * 3)
    assert_loads_step(store, "agent-1", 2)  # reads stop at the committed length
    save_steps(store, "agent-1", 2, parent=last, first=3)
    assert_loads_step(store, "agent-1", 4)
    for row in store.list_rows("agent-1"):
        load(store, row)
    assert b"garbage" not in records_file.read_bytes()
    assert records_file.stat().st_size > committed


def crash_before(monkeypatch: pytest.MonkeyPatch, directory: str) -> None:
    """Make the next document written into ``directory`` fail, as if the process died there."""
    real = fs_module.write_file

    def dying(path: Path, data: bytes) -> None:
        if path.parent.name == directory:
            raise OSError("simulated crash")
        real(path, data)

    monkeypatch.setattr(fs_module, "write_file", dying)


@pytest.mark.parametrize("dies_before", ["lineages", "checkpoints"])
def test_a_save_that_never_committed_is_invisible_and_overwritten(store: FilesystemStorage, dies_before: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    last = save_steps(store, "agent-1", 2)
    plan = rows.plan_save(state("agent-1", 2), last, LINEAGE)
    with monkeypatch.context() as patch:
        crash_before(patch, dies_before)
        with pytest.raises(StorageError, match="simulated crash"):
            store.write(plan)
    leftovers = sorted((store.base_dir / "agent-1" / "checkpoints").iterdir())
    assert len(leftovers) == (3 if dies_before == "lineages" else 2)
    assert store.latest_checkpoint("agent-1").checkpoint_id == last.checkpoint_id
    assert [r.step_number for r in store.list_rows("agent-1")] == [1, 0]
    with pytest.raises(CheckpointNotFoundError):
        store.read_checkpoint(plan.row.checkpoint_id)
    assert store.read_lineage(LINEAGE).head_checkpoint_id == last.checkpoint_id
    assert_loads_step(store, "agent-1", 1)
    store.write(plan)  # the retry succeeds: same id, same order slot
    assert store.read_checkpoint(plan.row.checkpoint_id) == plan.row
    assert [r.step_number for r in store.list_rows("agent-1")] == [2, 1, 0]
    assert_loads_step(store, "agent-1", 2)


def test_a_first_save_that_never_committed_leaves_no_agent(store: FilesystemStorage,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    plan = rows.plan_save(state("agent-1", 0), None, "lin_crashed")
    with monkeypatch.context() as patch:
        crash_before(patch, "lineages")
        with pytest.raises(StorageError):
            store.write(plan)
    assert (store.base_dir / "agent-1" / "records" / "lin_crashed.rec").exists()
    assert store.latest_checkpoint("agent-1") is None
    assert store.list_agents() == [] and store.list_lineages("agent-1") == []
    with pytest.raises(CheckpointNotFoundError):
        store.read_lineage("lin_crashed")
    save_steps(store, "agent-1", 2)  # a root save with another lineage: no conflict
    assert not (store.base_dir / "agent-1" / "records" / "lin_crashed.rec").exists()
    assert store.list_agents() == ["agent-1"]
    assert_loads_step(store, "agent-1", 1)


def test_damage_is_caught_by_the_checksums(store: FilesystemStorage) -> None:
    last = save_steps(store, "agent-1", 3)
    tamper_record_file(store, LINEAGE, b'{"content":"agent-1 message 1","role":"user"}',
                       b'{"content":"agent-1 message one","role":"user"}')
    assert len(store.read_records(LINEAGE, "conversation_history", 0, 10)) == 6  # still well-formed
    with pytest.raises(CheckpointCorruptError, match="hash chain"):
        load(store, last)
    tamper_checkpoint_file(store, last.checkpoint_id)
    with pytest.raises(CheckpointCorruptError, match="checksum"):
        load(store, store.read_checkpoint(last.checkpoint_id))


def test_leases_are_files_under_the_agent_lock(store: FilesystemStorage) -> None:
    lease = store.acquire_lease("agent-1", "worker-1", 30)
    assert lease.worker_id == "worker-1" and lease.expires_at > time.time() + 29
    with pytest.raises(LeaseHeldError) as held:
        FilesystemStorage(store.base_dir).acquire_lease("agent-1", "worker-2", 30)  # another process's view
    assert held.value.holder == "worker-1"
    assert store.acquire_lease("agent-1", "worker-1", 60).expires_at > lease.expires_at  # renewal
    assert store.release_lease("agent-1", "worker-2") is False
    assert store.release_lease("agent-1", "worker-1") is True
    assert store.release_lease("agent-1", "worker-1") is False
    store.acquire_lease("agent-1", "worker-2", -1)  # already expired: anyone may take it
    assert store.acquire_lease("agent-1", "worker-3", 30).worker_id == "worker-3"
    with pytest.raises(InvalidStateValueError, match="'../x'"):
        store.acquire_lease("../x", "worker-1", 30)


def export(store: FilesystemStorage, agent_id: str) -> tuple[list, list, list]:
    lineages = store.list_lineages(agent_id)
    records = [r for lin in lineages for s in STREAMS for r in store.read_records(lin.lineage_id, s, 0, 10**9)]
    return lineages, records, list(reversed(store.list_rows(agent_id)))


def test_import_is_all_or_nothing_and_replaces_crash_leftovers(store: FilesystemStorage, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    last = save_steps(store, "agent-1", 3)
    store.write(rows.plan_fork(last, "ckpt_fork", "lin_fork", "agent-1"))
    history = export(store, "agent-1")
    target = FilesystemStorage(tmp_path / "target")
    with monkeypatch.context() as patch:  # the first import dies before its rename
        crash_before(patch, "checkpoints")
        with pytest.raises(StorageError, match="simulated crash"):
            target.import_rows(*history)
        crash_before(patch, "lineages")  # and a first save of the agent never commits
        with pytest.raises(StorageError):
            target.write(rows.plan_save(state("agent-1", 0), None, "lin_other"))
    assert target.list_agents() == [] and target.list_lineages("agent-1") == []
    target.import_rows(*history)
    assert [p.name for p in target.base_dir.iterdir() if p.name.startswith(".")] == []
    assert export(target, "agent-1") == history
    assert target.latest_checkpoint("agent-1").checkpoint_id == "ckpt_fork"
    assert load(target, target.read_checkpoint(last.checkpoint_id)).step_number == 2
    assert SyncStateManager(target).load_checkpoint("ckpt_fork").step_number == 2  # reads the base lineage
    with pytest.raises(StorageError, match="already"):
        target.import_rows(*history)


def test_replace_agent_that_fails_while_building_changes_nothing(store: FilesystemStorage,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    last = save_steps(store, "agent-1", 3)
    lineages, records, checkpoints = export(store, "agent-1")
    with monkeypatch.context() as patch:
        crash_before(patch, "checkpoints")
        with pytest.raises(StorageError, match="simulated crash"):
            store.replace_agent("agent-1", lineages, records, checkpoints[1:])
    assert [p.name for p in store.base_dir.iterdir() if p.name.startswith(".")] == []
    assert [r.step_number for r in store.list_rows("agent-1")] == [2, 1, 0]
    store.replace_agent("agent-1", lineages, records, checkpoints[1:])  # drops step 0
    assert [r.step_number for r in store.list_rows("agent-1")] == [2, 1]
    with pytest.raises(CheckpointNotFoundError):
        store.read_checkpoint(checkpoints[0].checkpoint_id)
    assert not (store.base_dir / "_index" / "c" / checkpoints[0].checkpoint_id).exists()
    assert load(store, store.read_checkpoint(last.checkpoint_id)).step_number == 2
    with pytest.raises(StorageError, match="another agent"):
        store.replace_agent("agent-2", lineages, records, checkpoints)


@pytest.mark.parametrize("cut", ["between the renames", "before the old directory was removed"])
def test_a_directory_swap_cut_short_is_read_and_repaired(store: FilesystemStorage, cut: str) -> None:
    last = save_steps(store, "agent-1", 3)
    agent_dir, old = store.base_dir / "agent-1", store.base_dir / ".replaced-agent-1"
    if cut == "between the renames":
        agent_dir.rename(old)  # the next directory never arrived: the old one is the agent
    else:
        shutil.copytree(agent_dir, old)  # the swap committed; the old copy is garbage
    reader = FilesystemStorage(store.base_dir)
    assert reader.list_agents() == ["agent-1"]
    assert [r.step_number for r in reader.list_rows("agent-1")] == [2, 1, 0]
    assert reader.read_lineage(LINEAGE).head_checkpoint_id == last.checkpoint_id
    assert_loads_step(reader, "agent-1", 2)
    save_steps(store, "agent-1", 1, parent=last, first=3)  # a writer puts things right first
    assert agent_dir.is_dir() and not old.exists()
    assert_loads_step(reader, "agent-1", 3)


def test_import_adds_a_base_lineage_to_an_agent_that_has_one(tmp_path: Path) -> None:
    """b and c forked from two lineages of a; a itself is not exported. Importing c must add a's
    second lineage beside the one b's import brought, without a checkpoint of a."""
    source = SyncStateManager(FilesystemStorage(tmp_path / "source"))
    last = save_steps(source.storage, "a", 2)
    source.storage.write(rows.plan_fork(last, "ckpt_a_fork", "lin_a_fork", "a"))
    source.storage.write(rows.plan_fork(last, "ckpt_b", "lin_b", "b"))
    fork = source.storage.read_checkpoint("ckpt_a_fork")
    source.storage.write(rows.plan_fork(fork, "ckpt_c", "lin_c", "c"))
    target = SyncStateManager(FilesystemStorage(tmp_path / "target"))
    for agent_id in ("b", "c"):
        assert target.import_agent(source.export_agent(agent_id)) == agent_id
    assert [lin.lineage_id for lin in target.storage.list_lineages("a")] == ["lin_a", "lin_a_fork"]
    assert target.storage.list_agents() == ["b", "c"]
    for checkpoint_id in ("ckpt_b", "ckpt_c"):
        assert target.load_checkpoint(checkpoint_id).to_dict() == source.load_checkpoint(checkpoint_id).to_dict()


def test_read_records_seeks_by_the_offset_marks(store: FilesystemStorage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fs_format, "INDEX_EVERY", 3)
    save_steps(store, "agent-1", 12)
    latest = store.latest_checkpoint("agent-1")
    marks = orjson.loads((store.base_dir / "agent-1" / "lineages" / f"{LINEAGE}.json").read_bytes())["marks"]
    assert len(marks["conversation_history"]) == 8  # 24 records, one mark every 3
    every = store.read_records(LINEAGE, "conversation_history", 0, 10**6)
    assert [r.seq for r in every] == list(range(latest.heads["conversation_history"].count))
    for start, stop in [(0, 1), (2, 3), (3, 4), (4, 11), (5, 6), (7, 24), (20, 30), (30, 40), (6, 6), (9, 2)]:
        assert store.read_records(LINEAGE, "conversation_history", start, stop) == every[start:stop]
    assert store.read_records("lin_unknown", "completed_actions", 0, 5) == []
    with pytest.raises(InvalidStateValueError, match="not_a_stream"):
        store.read_records(LINEAGE, "not_a_stream", 0, 5)
    assert_loads_step(store, "agent-1", 11)


def test_threads_sharing_one_store_object(store: FilesystemStorage) -> None:
    errors: list[BaseException] = []

    def run(agent_id: str) -> None:
        try:
            save_steps(store, agent_id, 4)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f"thread-{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.list_agents() == [f"thread-{i}" for i in range(6)]
    for i in range(6):
        assert_loads_step(store, f"thread-{i}", 3)


# --- many processes (spawned: nothing shared but the directory) ----------------------------
def _writer(base: str, agent_id: str, steps: int) -> int:
    save_steps(FilesystemStorage(base), agent_id, steps)
    return steps


def _racer(base: str, parent_id: str, barrier, results) -> None:
    backend = FilesystemStorage(base)
    parent = backend.read_checkpoint(parent_id)
    plan = rows.plan_save(state("shared", 1), parent, "lin_shared")
    barrier.wait()
    try:
        backend.write(plan)
        results.put(("saved", plan.row.checkpoint_id))
    except CheckpointConflictError as exc:
        results.put(("conflict", exc.actual_head))


def test_eight_writer_processes_and_two_racing_on_one_head(store: FilesystemStorage) -> None:
    base = str(store.base_dir)
    root = save_steps(store, "shared", 1)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    racers = [ctx.Process(target=_racer, args=(base, root.checkpoint_id, barrier, results)) for _ in range(2)]
    with ctx.Pool(8) as pool:
        pending = pool.starmap_async(_writer, [(base, f"proc-{i}", 5) for i in range(8)])
        for racer in racers:
            racer.start()
        assert pending.get(timeout=60) == [5] * 8
    outcomes = sorted(results.get(timeout=30) for _ in racers)
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    (conflict, head), (saved, winner) = outcomes
    assert (conflict, saved) == ("conflict", "saved") and head == winner
    assert store.read_lineage("lin_shared").head_checkpoint_id == winner
    assert store.latest_checkpoint("shared").checkpoint_id == winner
    assert len(store.list_rows("shared")) == 2
    assert store.list_agents() == sorted([f"proc-{i}" for i in range(8)] + ["shared"])
    for i in range(8):
        assert [r.step_number for r in store.list_rows(f"proc-{i}")] == [4, 3, 2, 1, 0]
        assert_loads_step(store, f"proc-{i}", 4)


def test_the_originals_filesystem_keywords(tmp_path: Path) -> None:
    from kaizen.core.autonomy.state.storage import EncryptedStorage
    from kaizen.core.autonomy.state.storage.encrypted import generate_key

    default = FilesystemStorage()
    assert default.base_dir == Path(".kaizen/checkpoints") and default.compress is False
    store = FilesystemStorage(tmp_path / "fs", compress=True, encrypt=True, encryption_key=generate_key())
    assert isinstance(store, EncryptedStorage) and store.inner.compress is True
    manager = SyncStateManager(store)
    manager.save_checkpoint(state("orig", 0))
    assert manager.load_latest("orig").conversation_history == state("orig", 0).conversation_history
    stored = b"".join(p.read_bytes() for p in (tmp_path / "fs").rglob("*") if p.is_file())
    assert b"orig message" not in stored
    with pytest.raises(StorageError, match="encryption_key"):
        FilesystemStorage(tmp_path / "fs2", encrypt=True)


def test_a_directory_of_other_files_is_never_written_into(tmp_path: Path) -> None:
    from kaizen.core.autonomy.state.errors import NotAKaizenStoreError

    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cat.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(NotAKaizenStoreError, match=r"holds other files \(cat.jpg\).*left untouched"):
        FilesystemStorage(photos).setup()
    assert sorted(p.name for p in photos.iterdir()) == ["cat.jpg"]
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(NotAKaizenStoreError, match="is a file, not a directory"):
        FilesystemStorage(notes).setup()
    assert notes.read_text() == "mine"


def test_a_first_setup_cut_short_is_finished(tmp_path: Path) -> None:
    base = tmp_path / "store"
    for sub in ("_locks", "_index"):  # what a setup killed before writing _format.json leaves
        (base / sub).mkdir(parents=True)
    FilesystemStorage(base).setup()
    assert (base / "_format.json").exists()
