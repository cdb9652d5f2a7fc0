"""The `kaizen` command on damaged, foreign, read-only and edited stores: resume never repeats work
behind a damaged checkpoint, read commands never write, and edited exports are refused."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, checkpoint_ids, invoke, ok, read, run_demo

from kaizen.core.autonomy.state.errors import CheckpointCorruptError

EXIT_TAMPERED = 3


def demo_then_edit_a_tool_call(tmp_path: Path) -> tuple[str, Path, str]:
    """A finished demo whose stored Bash call was edited afterwards (as in a copied, altered store)."""
    db = tmp_path / "state.db"
    store = f"sqlite:///{db}"
    run_demo(store, tmp_path / "ws", "edited", "--no-workflow")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT lid, seq, data FROM records WHERE stream = 2").fetchall()  # completed_actions
        lid, seq, data = next(row for row in rows if b'"tool":"Bash"' in row[2])
        conn.execute("UPDATE records SET data = ? WHERE lid = ? AND stream = 2 AND seq = ?",
                     (data.replace(b'"ok":true', b'"ok":false'), lid, seq))
    return store, db, "edited"


def intact_and_damaged(store: str, agent: str) -> tuple[list[str], list[str]]:
    def sort(manager):
        intact, damaged = [], []
        for meta in manager.list_checkpoints(agent):
            try:
                manager.load_checkpoint(meta.checkpoint_id)
                intact.append(meta.checkpoint_id)
            except CheckpointCorruptError:
                damaged.append(meta.checkpoint_id)
        return intact, damaged
    return read(store, sort)


# --- 1: resume refuses a damaged newest checkpoint -----------------------------------------------
def test_resume_refuses_a_damaged_agent_and_names_the_ways_on(tmp_path):
    store, db, agent = demo_then_edit_a_tool_call(tmp_path)
    intact, damaged = intact_and_damaged(store, agent)
    newest = checkpoint_ids(store, agent)[0]
    assert damaged and newest in damaged and intact
    report = tmp_path / "ws" / "report.md"
    written = report.stat().st_mtime_ns

    line = assert_one_line_error(invoke("resume", agent, "--yes", "--store", store), code=EXIT_TAMPERED)
    assert f"newest checkpoint {newest} is damaged" in line
    assert f"newest intact checkpoint is {intact[0]}" in line
    assert f"kaizen resume {agent} --from {intact[0]}" in line and f"kaizen fork {intact[0]} --as NEW_AGENT" in line
    assert checkpoint_ids(store, agent)[0] == newest  # nothing was run or written
    assert report.stat().st_mtime_ns == written

    # every read command says the agent is damaged; audit exits with the tamper code
    for command in (["checkpoints", "list", agent], ["usage", agent], ["checkpoints", "show", intact[0]],
                    ["checkpoints", "tree", agent]):
        result = invoke(*command, "--store", store)
        assert result.exit_code == 0 and f"agent {agent} is damaged" in result.stderr, (command, result.stderr)
    audit = invoke("audit", agent, "--store", store)
    assert audit.exit_code == EXIT_TAMPERED and f"agent {agent} is damaged" in audit.stderr

    # continuing deliberately from the intact checkpoint works, on a branch of its own
    resumed = ok("resume", agent, "--from", intact[0], "--yes", "--store", store)
    assert "completed after" in resumed.stdout
    after = read(store, lambda m: m.load_latest(agent))
    assert after.status == "completed" and after.checkpoint_id not in damaged + intact
    assert invoke("audit", agent, "--store", store).exit_code == EXIT_TAMPERED  # the damage is still reported


def test_resume_from_refuses_a_checkpoint_of_another_agent(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "a", "first", "--no-workflow")
    run_demo(store, tmp_path / "b", "second", "--no-workflow")
    other = checkpoint_ids(store, "second")[0]
    assert_one_line_error(invoke("resume", "first", "--from", other, "--yes", "--store", store),
                          f"checkpoint {other} belongs to agent second, not first")


def test_fork_as_a_new_agent_then_resume_it(tmp_path):
    store, db, agent = demo_then_edit_a_tool_call(tmp_path)
    intact, _ = intact_and_damaged(store, agent)
    out = ok("fork", intact[0][:9], "--as", "rescued", "--store", store).stdout
    assert f"forked {intact[0]} of {agent} into rescued" in out and "kaizen resume rescued" in out
    assert "completed after" in ok("resume", "rescued", "--yes", "--store", store).stdout
    assert ok("audit", "verify", "rescued", "--store", store).stdout.startswith("ok: ")


# --- 4: read commands never write -------------------------------------------------------------------
READ_COMMANDS = [["audit", "x"], ["audit", "verify", "x"], ["checkpoints", "list", "x"], ["usage", "x"],
                 ["export", "x"], ["agents"], ["checkpoints", "show", "latest"], ["checkpoints", "tree", "x"]]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_refuse_another_programs_sqlite_file_and_leave_it_alone(tmp_path, command):
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = app.read_bytes()
    line = assert_one_line_error(invoke(*command, "--store", f"sqlite:///{app}"), "not a kaizen store")
    assert str(app) in line
    assert app.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]  # no -wal, -shm or journal left


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_read_commands_do_not_create_a_missing_store(tmp_path, command):
    assert_one_line_error(invoke(*command, "--store", f"sqlite:///{tmp_path / 'nothing.db'}"), "no store at")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def read_only_store(tmp_path):
    """A finished demo's store seen through a read-only bind mount (falls back to `chattr +i`)."""
    source = tmp_path / "archive"
    source.mkdir()
    store = f"sqlite:///{source / 'state.db'}"
    run_demo(store, tmp_path / "ws", "archived", "--no-workflow")
    read(store, lambda m: None)
    view = tmp_path / "ro"
    view.mkdir()
    mounted = (subprocess.run(["mount", "--bind", str(source), str(view)], capture_output=True).returncode == 0
               and subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], capture_output=True).returncode == 0)
    immutable = False
    if not mounted:
        subprocess.run(["umount", str(view)], capture_output=True)
        view = source
        immutable = shutil.which("chattr") is not None and subprocess.run(
            ["chattr", "+i", str(source), *map(str, source.iterdir())], capture_output=True).returncode == 0
    if not (mounted or immutable):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("cannot make a read-only directory here (needs root for a bind mount or chattr +i)")
        pytest.skip("cannot make a read-only directory here (needs root for a bind mount or chattr +i)")
    before = {p.name: p.read_bytes() for p in source.iterdir()}
    try:
        yield f"sqlite:///{view / 'state.db'}", view
        assert {p.name: p.read_bytes() for p in source.iterdir()} == before
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(view)], check=True)  # lazy: a failed test may hold a file open
        else:
            subprocess.run(["chattr", "-i", str(source), *map(str, source.iterdir())], check=True)


def test_read_commands_work_on_a_store_in_a_read_only_directory(read_only_store):
    store, view = read_only_store
    with pytest.raises(OSError):
        (view / "probe").write_text("x")  # really read-only
    for command in (["audit", "archived"], ["audit", "verify", "archived"], ["checkpoints", "list", "archived"],
                    ["usage", "archived"], ["export", "archived"], ["agents"]):
        result = invoke(*command, "--store", store)
        assert result.exit_code == 0, (command, result.stderr)
        assert result.stderr == "", (command, result.stderr)


# --- 5: exports ---------------------------------------------------------------------------------------
def test_export_of_a_damaged_agent_is_refused_unless_allowed(tmp_path):
    store, db, agent = demo_then_edit_a_tool_call(tmp_path)
    line = assert_one_line_error(invoke("export", agent, "--store", store), code=EXIT_TAMPERED)
    assert f"agent {agent!r} is not exported" in line and "--allow-damaged" in line
    allowed = invoke("export", agent, "--allow-damaged", "--store", store)
    assert allowed.exit_code == 0 and f"agent {agent} is damaged" in allowed.stderr
    assert json.loads(allowed.stdout)["agent_id"] == agent


def test_export_allowed_damaged_lists_the_damage(tmp_path):
    store, db, agent = demo_then_edit_a_tool_call(tmp_path)
    _, damaged = intact_and_damaged(store, agent)
    document = json.loads(ok("export", agent, "--allow-damaged", "--store", store).stdout)
    assert set(damaged) <= set(json.dumps(document["damaged"]).split('"'))


def exported(tmp_path: Path) -> tuple[str, dict]:
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "ws", "moved", "--no-workflow")
    return store, json.loads(ok("export", "moved", "--store", store).stdout)


def import_fails(tmp_path: Path, document: dict) -> str:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))
    target = f"sqlite:///{tmp_path / 'copy.db'}"
    line = assert_one_line_error(invoke("import", path, "--store", target))
    assert read(target, lambda m: m.list_agents()) == []  # nothing was written
    return line


def test_import_refuses_an_export_without_its_newest_checkpoint(tmp_path):
    _, document = exported(tmp_path)
    newest = max(document["checkpoints"], key=lambda row: (row["step_number"], row["timestamp"]))
    document["checkpoints"].remove(newest)
    import_fails(tmp_path, document)


def test_import_refuses_an_export_without_checkpoints(tmp_path):
    _, document = exported(tmp_path)
    document["checkpoints"] = []
    import_fails(tmp_path, document)


def test_import_refuses_an_edited_record_in_one_line(tmp_path):
    _, document = exported(tmp_path)
    record = next(r for r in document["records"] if "wc -l" in json.dumps(r))
    text = json.dumps(record).replace("wc -l", "rm -f ")
    document["records"][document["records"].index(record)] = json.loads(text)
    import_fails(tmp_path, document)


# --- 9: one damaged file in a filesystem store hides nothing else -------------------------------------
def test_read_commands_list_past_an_empty_checkpoint_file(tmp_path):
    base = tmp_path / "fs"
    store = f"file://{base}"
    run_demo(store, tmp_path / "ws", "lost-power", "--no-workflow")
    files = sorted((base / "lost-power" / "checkpoints").glob("*.json"))
    files[len(files) // 2].write_bytes(b"")  # what a disk that lied about fsync leaves behind
    listed = invoke("checkpoints", "list", "lost-power", "--store", store)
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.count("ckpt_") >= len(files) - 1
    assert "damaged" in listed.stderr or files[len(files) // 2].name in listed.stderr


# --- 5: commands that write refuse a store URL that names the wrong kind of thing ------------------
def another_programs_database(tmp_path: Path) -> Path:
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    return app


@pytest.mark.parametrize("command", [["demo", "--yes", "--agent-id", "new"], ["resume", "x", "--yes"],
                                     ["import", "{export}"], ["fork", "latest"], ["approve", "x", "call_1"],
                                     ["checkpoints", "prune", "x", "--keep-last", "1"],
                                     ["checkpoints", "delete", "--agent", "x", "--yes"]], ids=" ".join)
def test_commands_that_write_refuse_another_programs_sqlite_file_and_leave_it_alone(tmp_path, command):
    source = f"sqlite:///{tmp_path / 'source.db'}"
    run_demo(source, tmp_path / "ws", "x", "--no-workflow")
    export = tmp_path / "x.json"
    export.write_text(ok("export", "x", "--store", source).stdout)
    app = another_programs_database(tmp_path)
    before = app.read_bytes()
    args = [part.format(export=export) for part in command]
    line = assert_one_line_error(invoke(*args, "--store", f"sqlite:///{app}"), "not a kaizen store", str(app))
    assert "left untouched" in line
    assert app.read_bytes() == before
    with sqlite3.connect(app) as conn:
        assert [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]
    conn.close()


@pytest.mark.parametrize("command", [["agents"], ["audit", "verify", "x"], ["demo", "--yes"], ["resume", "x", "--yes"]],
                         ids=" ".join)
def test_a_sqlite_url_naming_a_directory_says_so(tmp_path, command):
    folder = tmp_path / "stores"
    folder.mkdir()
    assert_one_line_error(invoke(*command, "--store", f"sqlite:///{folder}"), f"{folder} is a directory",
                          f"sqlite:///{folder}/state.db")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("command", [["agents"], ["audit", "verify", "x"], ["demo", "--yes"], ["resume", "x", "--yes"]],
                         ids=" ".join)
def test_a_file_url_naming_a_file_says_so(tmp_path, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    assert_one_line_error(invoke(*command, "--store", f"file://{notes}"), f"{notes} is a file", "sqlite:///")
    assert notes.read_text() == "mine\n"


# --- 6: a store file damaged below the rows (truncated, overwritten) is damage: exit code 3 ---------
@pytest.fixture(scope="module")
def finished_store(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("finished")
    run_demo(f"sqlite:///{base / 'state.db'}", base / "ws", "kept", "--no-workflow")
    read(f"sqlite:///{base / 'state.db'}", lambda m: None)
    return base / "state.db"


DAMAGE_COMMANDS = [["agents"], ["checkpoints", "list", "kept"], ["audit", "kept"], ["audit", "verify", "kept"],
                   ["export", "kept"], ["resume", "kept", "--yes"]]


@pytest.mark.parametrize("command", DAMAGE_COMMANDS, ids=" ".join)
def test_a_truncated_store_file_is_reported_as_damage(finished_store, tmp_path, command):
    db = tmp_path / "copy.db"
    shutil.copyfile(finished_store, db)
    with db.open("r+b") as file:
        file.truncate(db.stat().st_size // 2)
    line = assert_one_line_error(invoke(*command, "--store", f"sqlite:///{db}"), str(db), "damaged",
                                 code=EXIT_TAMPERED)
    assert "malformed" in line


@pytest.mark.parametrize("command", DAMAGE_COMMANDS[:5], ids=" ".join)
def test_an_unreadable_checkpoint_row_is_reported_as_damage(finished_store, tmp_path, command):
    db = tmp_path / "copy.db"
    shutil.copyfile(finished_store, db)
    with sqlite3.connect(db) as conn:  # bytes overwritten inside a row: not even valid UTF-8 any more
        conn.execute("UPDATE checkpoints SET heads = X'deadbeefdeadbeef' WHERE rowid = "
                     "(SELECT min(rowid) FROM checkpoints)")
    conn.close()
    with sqlite3.connect(db) as conn:
        (damaged,) = conn.execute("SELECT checkpoint_id FROM checkpoints WHERE rowid = "
                                  "(SELECT min(rowid) FROM checkpoints)").fetchone()
    conn.close()
    assert_one_line_error(invoke(*command, "--store", f"sqlite:///{db}"), f"checkpoint {damaged!r} is damaged",
                          "stream heads cannot be decoded", code=EXIT_TAMPERED)
