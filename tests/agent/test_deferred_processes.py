"""Deferred approvals across real processes, on SQLite, the filesystem store and PostgreSQL:
one process asks, another decides, a third resumes; reviewers racing in separate processes;
kill -9 between the decision and the resume, and during the resumed call."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaizen.core.autonomy.state.sync_manager import SyncStateManager

WORKER = Path(__file__).with_name("deferred_worker.py")
REPO = Path(__file__).resolve().parents[2]
AGENT = "deployer"


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def worker(*args: str, **extra: str) -> dict:
    done = subprocess.run([sys.executable, str(WORKER), *args], capture_output=True, text=True, env=env(**extra),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def start(*args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env(**extra))


def kill_after_first_line(process: subprocess.Popen) -> dict:
    """Read the process's first JSON line, then SIGKILL it."""
    assert process.stdout is not None
    line = process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert line, process.stderr.read() if process.stderr else ""
    return json.loads(line)


def effects(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def decisions_of(url: str, call_id: str = "call_deploy") -> list[dict]:
    with SyncStateManager(url) as manager:
        state = manager.load_latest(AGENT)
        return [dict(r) for r in state.approval_history if r.get("call_id") == call_id]


def test_one_process_asks_another_approves_a_third_resumes(any_store, tmp_path):
    log = tmp_path / "deploy.log"
    asked = worker("ask", any_store, AGENT, str(log))
    assert asked["status"] == "awaiting_approval" and effects(log) == []
    [pending] = asked["pending"]
    assert pending["call_id"] == "call_deploy" and pending["tool"] == "deploy"
    assert "sk-live" not in json.dumps(asked) and "[REDACTED]" in pending["arguments_summary"]
    # a resume before any decision changes nothing and writes nothing
    with SyncStateManager(any_store) as manager:
        before = len(manager.list_checkpoints(AGENT))
    assert worker("resume", any_store, AGENT, str(log))["status"] == "awaiting_approval"
    with SyncStateManager(any_store) as manager:
        assert len(manager.list_checkpoints(AGENT)) == before
        assert [p.call_id for p in manager.pending_approvals()] == ["call_deploy"]

    decided = worker("approve", any_store, AGENT, "call_deploy", "alice")
    assert decided == {"won": True, "decided_by": "alice", "approved": True}
    resumed = worker("resume", any_store, AGENT, str(log))
    assert resumed["status"] == "completed" and resumed["pending"] == []
    assert effects(log) == ["prod"]
    [record] = decisions_of(any_store)
    assert (record["decided_by"], record["via"], record["approved"], record["reason"]) == (
        "alice", "cli", True, "approve by alice")
    with SyncStateManager(any_store) as manager:
        assert manager.verify_audit(AGENT).ok
        assert manager.pending_approvals() == []
    # deciding again: refused, names who decided
    again = worker("deny", any_store, AGENT, "call_deploy", "bob")
    assert again["won"] is False and again["decided_by"] == "alice" and "already approved" in again["error"]


def test_a_denial_from_another_process_stops_the_run_without_the_call(any_store, tmp_path):
    log = tmp_path / "deploy.log"
    worker("ask", any_store, AGENT, str(log))
    assert worker("deny", any_store, AGENT, "call_deploy", "carol")["won"]
    resumed = worker("resume", any_store, AGENT, str(log))
    assert resumed["status"] == "denied" and effects(log) == []
    assert [(r["approved"], r["decided_by"]) for r in decisions_of(any_store)] == [(False, "carol")]


@pytest.mark.slow
def test_reviewers_in_separate_processes_exactly_one_wins(any_store, tmp_path):
    log = tmp_path / "deploy.log"
    worker("ask", any_store, AGENT, str(log))
    begin = f"{time.time() + 2.0:.3f}"  # every process decides at the same moment
    reviewers = [start("race", any_store, AGENT, "call_deploy", f"reviewer{i}", begin) for i in range(6)]
    outcomes = []
    for process in reviewers:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    winners = [o for o in outcomes if o["won"]]
    assert len(winners) == 1, outcomes
    losers = [o for o in outcomes if not o["won"]]
    assert all(o["decided_by"] == winners[0]["decided_by"] for o in losers)
    [record] = decisions_of(any_store)
    assert record["decided_by"] == winners[0]["decided_by"]
    resumed = worker("resume", any_store, AGENT, str(log))
    assert effects(log) == (["prod"] if winners[0]["approved"] else [])
    assert resumed["status"] == ("completed" if winners[0]["approved"] else "denied")


@pytest.mark.slow
def test_kill_9_after_the_decision_loses_neither_and_the_call_runs_once(any_store, tmp_path):
    log = tmp_path / "deploy.log"
    worker("ask", any_store, AGENT, str(log))
    decided = kill_after_first_line(start("approve", any_store, AGENT, "call_deploy", "dave", "--hold"))
    assert decided["won"]
    assert [r["decided_by"] for r in decisions_of(any_store)] == ["dave"]  # durable although the decider died
    assert worker("resume", any_store, AGENT, str(log))["status"] == "completed"
    assert worker("resume", any_store, AGENT, str(log))["status"] == "completed"
    assert effects(log) == ["prod"]


@pytest.mark.slow
def test_kill_9_during_the_resumed_call_does_not_repeat_it(any_store, tmp_path):
    log = tmp_path / "deploy.log"
    worker("ask", any_store, AGENT, str(log))
    worker("approve", any_store, AGENT, "call_deploy", "erin")
    assert kill_after_first_line(start("resume", any_store, AGENT, str(log), KAIZEN_TEST_HOLD="1")) == {
        "event": "in_tool"}
    assert effects(log) == ["prod"]
    resumed = worker("resume", any_store, AGENT, str(log))
    # a side-effect call killed before its result was saved is never run again silently
    assert resumed["status"] == "completed" and effects(log) == ["prod"]
    assert [r["decided_by"] for r in decisions_of(any_store)] == ["erin"]
    with SyncStateManager(any_store) as manager:
        state = manager.load_latest(AGENT)
    [done] = [a for a in state.completed_actions if a["call_id"] == "call_deploy"]
    assert not done["ok"] and "interrupted by a crash" in done["error"]
