"""`kaizen demo`: the scripted agent run a new user starts with."""

from __future__ import annotations

import os

import json
import re
import shlex
import tempfile

from cli_helpers import (
    DEMO_TOOLS_NO_WORKFLOW,
    DEMO_TOOLS_WITH_WORKFLOW,
    NOTES,
    REPORT,
    agent_from_demo_output,
    assert_one_line_error,
    checkpoint_ids,
    invoke,
    jsonl,
    latest,
    needs_kailash,
    ok,
    run_demo,
    table_first_column,
)


def test_demo_yes_prints_progress_and_summary(demo_store):
    out = demo_store["output"]
    agent = demo_store["agent"]
    assert out.startswith(f"kaizen demo agent {agent}  store {demo_store['store']}")
    cycles = 6 if demo_store["with_workflow"] else 5
    assert re.findall(r"^cycle (\d+)$", out, re.MULTILINE) == [str(n) for n in range(1, cycles + 1)]
    # every tool call: its approval decision, then its outcome
    assert "  Write: approved (all, by user)" in out
    assert "  Read: approved (once, by policy)" in out
    assert "  Bash: approved (all, by user)" in out
    assert "  Write: approved (all, by standing)" in out  # "approve all" remembered for the 2nd Write
    for tool in ("Write", "Read", "Bash"):
        assert f"    {tool} ok" in out
    assert f"completed after {cycles} cycles: Wrote report.md" in out
    # summary: approvals table, tool usage, cost, checkpoints, inspect commands
    assert "Approvals" in out
    usage_line = re.search(r"^Tool usage: (.*)$", out, re.MULTILINE).group(1)
    expected = DEMO_TOOLS_WITH_WORKFLOW if demo_store["with_workflow"] else DEMO_TOOLS_NO_WORKFLOW
    assert dict((t, int(c)) for t, c in re.findall(r"(\w+) x(\d+)", usage_line)) == expected
    cost = float(re.search(r"^Estimated cost: \$(\d+\.\d{4}) \(demo prices\)$", out, re.MULTILINE).group(1))
    assert cost > 0
    written = re.search(r"^Checkpoints written: (\d+) \(latest (ckpt_[0-9a-f]{12})\)$", out, re.MULTILINE)
    ids = checkpoint_ids(demo_store["store"], agent)
    assert int(written.group(1)) == len(ids)
    assert written.group(2) == ids[0]
    for command in ("checkpoints list", "audit", "usage"):
        assert re.search(rf"^  kaizen {command} {agent}( --store '{re.escape(demo_store['store'])}')?$", out,
                         re.MULTILINE)
    assert agent_from_demo_output(out) == agent


def test_demo_writes_the_workspace_files(demo_store):
    workdir = demo_store["workdir"]
    notes = (workdir / "notes.md").read_text()
    assert notes == NOTES
    assert notes.startswith("# Field notes\n") and "approval" in notes
    report = (workdir / "report.md").read_text()
    assert report == REPORT
    assert report.startswith("# Report\n")
    # what the report says about the notes is true (it is what the demo's `wc -l notes.md` printed)
    assert f"notes.md holds {notes.count(chr(10))} lines" in report
    bash = [a for a in latest(demo_store["store"], demo_store["agent"]).completed_actions if a["tool"] == "Bash"]
    assert bash[0]["ok"] and bash[0]["output"]["stdout"].startswith(f"{notes.count(chr(10))} notes.md\n")


def test_demo_stores_a_completed_run(demo_store):
    state = latest(demo_store["store"], demo_store["agent"])
    assert state.status == "completed"
    assert state.metadata["run"]["status"] == "completed"
    assert state.metadata["cli"] == {"kind": "demo", "workdir": str(demo_store["workdir"]),
                                     "with_workflow": demo_store["with_workflow"], "temporary_workdir": False}
    expected = DEMO_TOOLS_WITH_WORKFLOW if demo_store["with_workflow"] else DEMO_TOOLS_NO_WORKFLOW
    assert dict(state.tool_usage_counts) == expected
    assert [r["tool_name"] for r in state.approval_history] == [
        t for t in ("Write", "Read", "word_stats", "Bash", "Write")
        if demo_store["with_workflow"] or t != "word_stats"]
    assert all(r["approved"] for r in state.approval_history)
    assert state.pending_actions == []
    assert all(action["ok"] for action in state.completed_actions)


@needs_kailash
def test_demo_runs_the_kailash_workflow_step(demo_store):
    state = latest(demo_store["store"], demo_store["agent"])
    workflow = state.workflow_state
    assert set(workflow["node_results"]) == {"split", "stats"}
    assert workflow["node_results"]["split"]["status"] == "completed"
    assert workflow["node_results"]["stats"]["status"] == "completed"
    assert workflow["node_results"]["stats"]["output"]["result"] == {"count": len(NOTES.split()),
                                                                     "longest": "Checkpoints"}
    assert workflow["node_results"]["split"]["output"]["result"]["words"] == NOTES.split()
    assert workflow["run_id"] and state.workflow_run_id == workflow["run_id"]
    assert workflow["status"] == "completed"
    assert state.tool_usage_counts["word_stats"] == 1
    assert "    word_stats ok" in demo_store["output"]
    assert "word_stats: approved (once, by policy)" in demo_store["output"]  # a safe tool: no prompt


def test_demo_no_workflow_skips_the_kailash_step(tmp_path, sqlite_store):
    result = run_demo(sqlite_store, tmp_path / "w", "nowf", "--no-workflow")
    assert "word_stats" not in result.stdout
    assert "completed after 5 cycles" in result.stdout
    state = latest(sqlite_store, "nowf")
    assert dict(state.tool_usage_counts) == DEMO_TOOLS_NO_WORKFLOW
    assert "node_results" not in state.workflow_state
    assert state.metadata["cli"]["with_workflow"] is False
    assert (tmp_path / "w" / "report.md").read_text() == REPORT


@needs_kailash
def test_demo_no_workflow_message_is_truthful(tmp_path, sqlite_store):
    out = run_demo(sqlite_store, tmp_path / "w", "nowf-msg", "--no-workflow").stdout
    assert "not installed" not in out


def test_demo_without_kailash_prints_a_usable_install_hint(tmp_path, sqlite_store, monkeypatch):
    import kaizen.demo

    monkeypatch.setattr(kaizen.demo, "has_kailash", lambda: False)
    out = run_demo(sqlite_store, tmp_path / "w", "nokailash").stdout
    assert "not installed" in out and "skipped" in out
    assert "completed after 5 cycles" in out
    assert "pip install 'kaizen-state[kailash]'" in out


def test_demo_default_workspace_is_a_new_temp_dir(tmp_path, sqlite_store, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = ok("demo", "--yes", "--no-workflow", "--store", sqlite_store)
    agent = agent_from_demo_output(result.stdout)
    assert re.fullmatch(r"demo-[0-9a-f]{8}", agent)
    workdir = latest(sqlite_store, agent).metadata["cli"]["workdir"]
    assert workdir.startswith(str(tmp_path / "kaizen-demo-"))
    assert f"workspace {workdir} (temporary)" in result.stdout
    # a completed demo cleans up after itself, and says so
    assert f"Removed the temporary workspace {workdir}" in result.stdout
    assert not os.path.exists(workdir)
    kept = ok("demo", "--yes", "--no-workflow", "--keep-workdir", "--store", sqlite_store)
    workdir = latest(sqlite_store, agent_from_demo_output(kept.stdout)).metadata["cli"]["workdir"]
    assert "Removed" not in kept.stdout
    assert open(f"{workdir}/notes.md").read() == NOTES
    assert open(f"{workdir}/report.md").read() == REPORT


def test_demo_refused_by_the_lease_leaves_no_temporary_workspace(tmp_path, sqlite_store, monkeypatch):
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with SyncStateManager(sqlite_store) as manager, manager.claim("racing", "other-worker", ttl=60):
        result = invoke("demo", "--yes", "--no-workflow", "--agent-id", "racing", "--store", sqlite_store)
    assert result.exit_code == 75, result.stderr
    assert list(temp.iterdir()) == []  # the workspace it made for a run that never started is gone


def test_demo_with_a_workspace_it_cannot_make_names_it_and_writes_nothing(tmp_path, sqlite_store):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke("demo", "--yes", "--workdir", blocker / "ws", "--store", sqlite_store)
    assert_one_line_error(result, f"--workdir {blocker / 'ws'}", "cannot make the workspace")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]  # no store file either


def test_a_relative_workdir_is_kept_absolute_so_resume_works_from_anywhere(tmp_path, sqlite_store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = ok("demo", "--yes", "--no-workflow", "--agent-id", "here", "--workdir", "ws", "--keep-workdir",
                "--store", sqlite_store)
    assert "workspace ws" in result.stdout  # shown as given
    assert latest(sqlite_store, "here").metadata["cli"]["workdir"] == str(tmp_path / "ws")  # what resume uses


def test_demo_store_from_kaizen_store_env(tmp_path, sqlite_store):
    ok("demo", "--yes", "--no-workflow", "--workdir", tmp_path / "w", "--agent-id", "env1",
       env={"KAIZEN_STORE": sqlite_store})
    assert latest(sqlite_store, "env1").status == "completed"
    records = jsonl(ok("audit", "env1", "--format", "jsonl", env={"KAIZEN_STORE": sqlite_store}).stdout)
    assert len(records) == 4


# --- interactive approvals ------------------------------------------------------------------
def test_demo_interactive_approve_all_through_stdin(tmp_path, sqlite_store):
    result = run_demo(sqlite_store, tmp_path / "w", "ask-all", input="A\nA\n")
    prompts = result.stderr.count("[a]pprove once, approve [A]ll, [d]eny, [D]eny all > ")
    assert prompts == 2  # Write and Bash; the second Write is covered by the standing "all"
    assert "Agent ask-all wants to run Write (dangerous):" in result.stderr
    assert "Agent ask-all wants to run Bash (dangerous):" in result.stderr
    assert "{'command': 'wc -l notes.md && ls'}" in result.stderr
    assert "Write: approved (all, by standing)" in result.stdout
    state = latest(sqlite_store, "ask-all")
    assert state.status == "completed"
    by = [(r["tool_name"], r["action"], r["decided_by"]) for r in state.approval_history if r["tool_name"] != "Read"
          and r["tool_name"] != "word_stats"]
    assert by == [("Write", "all", "user"), ("Bash", "all", "user"), ("Write", "all", "standing")]
    assert (tmp_path / "w" / "report.md").read_text() == REPORT


def test_demo_interactive_approve_once_asks_every_time(tmp_path, sqlite_store):
    result = run_demo(sqlite_store, tmp_path / "w", "ask-once", "--no-workflow", input="x\na\na\na\n")
    assert "please type a, A, d or D" in result.stderr  # "x" is not an answer: asked again
    assert result.stderr.count("wants to run") == 3
    state = latest(sqlite_store, "ask-once")
    assert state.status == "completed"
    assert [(r["tool_name"], r["action"], r["decided_by"]) for r in state.approval_history] == [
        ("Write", "once", "user"), ("Read", "once", "policy"), ("Bash", "once", "user"), ("Write", "once", "user")]


def test_demo_interactive_denial_ends_the_run_denied(tmp_path, sqlite_store):
    result = run_demo(sqlite_store, tmp_path / "w", "ask-deny", input="a\nd\n")
    assert result.exit_code == 0
    assert "Bash: denied (once, by user)" in result.stdout
    assert "denied after" in result.stdout and "Bash: denied by user" in result.stdout
    state = latest(sqlite_store, "ask-deny")
    assert state.status == "denied"
    assert state.metadata["run"]["status"] == "denied"
    assert not (tmp_path / "w" / "report.md").exists()  # the run stopped before writing the report
    assert (tmp_path / "w" / "notes.md").read_text() == NOTES
    assert "Bash" not in state.tool_usage_counts  # a denied call is not counted as used
    denied = jsonl(ok("audit", "ask-deny", "--denied", "--format", "jsonl", "--store", sqlite_store).stdout)
    assert [(r["tool_name"], r["approved"], r["decided_by"]) for r in denied] == [("Bash", False, "user")]


def test_demo_interactive_end_of_input_denies(tmp_path, sqlite_store):
    result = run_demo(sqlite_store, tmp_path / "w", "ask-eof", "--no-workflow", input="")
    assert latest(sqlite_store, "ask-eof").status == "denied"
    assert "Write: denied (once, by user)" in result.stdout
    assert not (tmp_path / "w" / "notes.md").exists()


# --- the demo on every real store -------------------------------------------------------------
def test_demo_and_inspection_on_each_store(tmp_path, any_store):
    out = run_demo(any_store, tmp_path / "w", "everywhere", "--no-workflow").stdout
    assert "completed after 5 cycles" in out
    ids = checkpoint_ids(any_store, "everywhere")
    listed = ok("checkpoints", "list", "everywhere", "--store", any_store).stdout
    assert table_first_column(listed) == ids
    shown = ok("checkpoints", "show", ids[0], "--store", any_store).stdout
    assert json.loads(shown)["status"] == "completed"
    records = jsonl(ok("audit", "everywhere", "--format", "jsonl", "--store", any_store).stdout)
    assert [r["tool_name"] for r in records] == ["Write", "Read", "Bash", "Write"]
    usage = ok("usage", "everywhere", "--store", any_store).stdout
    assert re.search(r"Estimated cost: \$\d+\.\d{4} \(the run's prices\)", usage)


# --- what the summary promises ---------------------------------------------------------------
def test_demo_inspect_commands_work_as_printed(tmp_path, sqlite_store):
    out = run_demo(sqlite_store, tmp_path / "w", "printed", "--no-workflow").stdout
    commands = re.findall(r"^  (kaizen .+)$", out, re.MULTILINE)
    assert len(commands) == 3
    for command in commands:
        ok(*shlex.split(command)[1:])


def test_demo_on_a_memory_store_does_not_suggest_commands_that_cannot_find_it(tmp_path):
    out = run_demo("memory://", tmp_path / "w", "fleeting", "--no-workflow").stdout
    assert "completed after 5 cycles" in out
    assert "kaizen checkpoints list" not in out and "kaizen audit" not in out
    assert "memory:// store ended with this run" in out and "--store sqlite:///" in out


def test_demo_rejects_a_bad_agent_id(tmp_path, sqlite_store):
    result = invoke("demo", "--yes", "--store", sqlite_store, "--workdir", tmp_path / "w", "--agent-id", "bad id")
    assert_one_line_error(result, "agent_id 'bad id' is not a valid id")


def test_demo_does_not_print_the_store_password(tmp_path, pg_store):
    with_password = pg_store.replace("postgres@", "postgres:hunter2-pw@", 1)
    assert "hunter2-pw" in with_password
    result = run_demo(with_password, tmp_path / "w", "pw", "--no-workflow")
    assert "completed after 5 cycles" in result.stdout
    assert "hunter2-pw" not in result.output


def test_demo_refuses_an_agent_id_that_already_exists(tmp_path, sqlite_store):
    run_demo(sqlite_store, tmp_path / "w1", "taken", "--no-workflow")
    before = checkpoint_ids(sqlite_store, "taken")
    result = invoke("demo", "--yes", "--no-workflow", "--store", sqlite_store, "--workdir", tmp_path / "w2",
                    "--agent-id", "taken")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "'taken'" in lines[0]
    assert checkpoint_ids(sqlite_store, "taken") == before  # the existing history is untouched
    assert not (tmp_path / "w2" / "notes.md").exists()  # and no tool ran for the refused run
