"""`kaizen approvals`, `kaizen approve`, `kaizen deny` and `kaizen demo --defer` / `kaizen resume`
with waiting calls, through click's CliRunner on every real store, and once in real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, invoke, latest, ok, table_first_column

REPO = Path(__file__).resolve().parents[2]


def deferred_demo(store: str, tmp_path: Path, agent: str = "d1") -> str:
    result = ok("demo", "--defer", "--no-workflow", "--store", store, "--workdir", tmp_path / "ws", "--agent-id", agent)
    assert f"{agent} is waiting for approval" in result.stdout
    assert f"kaizen approve {agent} CALL" in result.stdout and f"kaizen resume {agent}" in result.stdout
    return result.stdout


def test_the_deferred_demo_from_start_to_end(any_store, tmp_path):
    deferred_demo(any_store, tmp_path)
    assert latest(any_store, "d1").status == "awaiting_approval"
    listed = ok("approvals", "--store", any_store)
    assert table_first_column(listed.stdout) == ["d1"]
    assert "call_1" in listed.stdout and "Write" in listed.stdout and "side_effect tool, policy allow_safe" in listed.stdout
    as_json = json.loads(ok("approvals", "d1", "--json", "--store", any_store).stdout)
    assert [(p["agent_id"], p["call_id"], p["tool"], p["expired"]) for p in as_json] == [("d1", "call_1", "Write", False)]

    approved = ok("approve", "d1", "call_1", "--all", "--reason", "notes are fine", "--by", "alice",
                  "--store", any_store)
    assert "approved Write call call_1 of d1 and every later Write call (by alice" in approved.stdout
    assert "kaizen resume d1" in approved.stdout
    assert "no pending approvals" in ok("approvals", "--store", any_store).stdout

    resumed = ok("resume", "d1", "--store", any_store)
    assert "Write: approved (all, by alice)" in resumed.stdout
    assert "d1 is waiting for approval" in resumed.stdout and "Bash" in resumed.stdout  # the next one waits
    bash_call = json.loads(ok("approvals", "d1", "--json", "--store", any_store).stdout)[0]["call_id"]
    ok("deny", "d1", bash_call, "--reason", "no shell", "--by", "bob", "--store", any_store)
    ended = ok("resume", "d1", "--store", any_store)
    assert "Bash: denied (once, by bob)" in ended.stdout and "denied after" in ended.stdout
    records = [(r["tool_name"], r["approved"], r.get("decided_by"), r.get("via"), r.get("reason"))
               for r in latest(any_store, "d1").approval_history]
    assert records == [("Write", True, "alice", "cli", "notes are fine"), ("Read", True, "policy", None, None),
                       ("Bash", False, "bob", "cli", "no shell")]
    assert ok("audit", "verify", "d1", "--store", any_store).stdout.startswith("ok: 3 approval records")
    audit = " ".join(ok("audit", "d1", "--store", any_store).stdout.split())  # the table, unwrapped
    assert "bob via cli" in audit and "denied: no shell" in audit and "alice via cli" in audit


def test_a_second_decision_is_one_line_and_exit_4(sqlite_store, tmp_path):
    deferred_demo(sqlite_store, tmp_path)
    ok("deny", "d1", "call_1", "--by", "alice", "--store", sqlite_store)
    before = len(latest(sqlite_store, "d1").approval_history)
    line = assert_one_line_error(invoke("approve", "d1", "call_1", "--by", "bob", "--store", sqlite_store),
                                 "call 'call_1' of agent 'd1' is not pending", "already denied (once) by alice",
                                 code=4)
    assert "via cli" in line
    assert len(latest(sqlite_store, "d1").approval_history) == before
    assert_one_line_error(invoke("approve", "d1", "call_9", "--store", sqlite_store), "no such call", code=4)
    assert_one_line_error(invoke("approve", "nobody", "call_1", "--store", sqlite_store), "agent 'nobody' not found")


def test_refused_while_a_worker_holds_the_agent(sqlite_store, tmp_path):
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    deferred_demo(sqlite_store, tmp_path)
    with SyncStateManager(sqlite_store) as manager, manager.claim("d1", "worker-9", ttl=30):
        assert_one_line_error(invoke("approve", "d1", "call_1", "--store", sqlite_store), "worker-9", code=75)


def test_no_pending_approvals_and_unknown_agents(sqlite_store, tmp_path):
    deferred_demo(sqlite_store, tmp_path)
    ok("approve", "d1", "call_1", "--store", sqlite_store)
    assert ok("approvals", "--store", sqlite_store).stdout.strip() == "no pending approvals"
    assert ok("approvals", "d1", "--json", "--store", sqlite_store).stdout.strip() == "[]"
    assert_one_line_error(invoke("approvals", "ghost", "--store", sqlite_store), "agent 'ghost' not found")
    assert_one_line_error(invoke("approvals", "--store", f"sqlite:///{tmp_path}/none.db"), "no store at")


def test_defer_and_yes_are_exclusive(sqlite_store, tmp_path):
    assert_one_line_error(invoke("demo", "--defer", "--yes", "--store", sqlite_store), "--yes", "--defer")


@pytest.mark.parametrize("command", ["approvals", "approve", "deny"])
def test_help_has_an_example(command):
    shown = ok(command, "--help").stdout
    assert f"Example: kaizen {command}" in shown and "--store" in shown


def test_an_expired_call_shows_as_expired(sqlite_store, tmp_path):
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    deferred_demo(sqlite_store, tmp_path)
    with SyncStateManager(sqlite_store) as manager:  # age the request: its deadline passed an hour ago
        state = manager.load_latest("d1")
        call = state.pending_actions[0]
        call["approval"]["deadline"] = "2000-01-01T00:00:00+00:00"
        state.parent_checkpoint_id = state.checkpoint_id
        from kaizen.core.autonomy.state.ids import new_checkpoint_id

        state.checkpoint_id = new_checkpoint_id()
        manager.save_checkpoint(state)
    listed = ok("approvals", "--store", sqlite_store)
    assert "expired" in listed.stdout and "denied on resume" in listed.stdout
    assert_one_line_error(invoke("approve", "d1", "call_1", "--store", sqlite_store), "deadline passed", code=4)
    resumed = ok("resume", "d1", "--store", sqlite_store)
    assert "Write: denied (once, by deadline)" in resumed.stdout


def test_in_real_processes(tmp_path):
    """The commands as separate processes (python -m kaizen.cli), one after the other."""
    store = f"sqlite:///{tmp_path}/state.db"
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    env.pop("KAIZEN_STORE", None)

    def kaizen(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "kaizen.cli", *args, "--store", store], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    asked = kaizen("demo", "--defer", "--no-workflow", "--agent-id", "p1", "--workdir", str(tmp_path / "ws"))
    assert asked.returncode == 0 and "p1 is waiting for approval" in asked.stdout, asked.stderr
    assert "call_1" in kaizen("approvals").stdout
    assert kaizen("approve", "p1", "call_1", "--all", "--by", "ops").returncode == 0
    second = kaizen("deny", "p1", "call_1", "--by", "late")
    assert second.returncode == 4 and second.stdout == ""
    assert second.stderr.strip().startswith("error: call 'call_1' of agent 'p1' is not pending: already approved")
    assert len(second.stderr.strip().splitlines()) == 1
    resumed = kaizen("resume", "p1")
    assert resumed.returncode == 0 and "Write: approved (all, by ops)" in resumed.stdout
    assert (tmp_path / "ws" / "notes.md").exists()
