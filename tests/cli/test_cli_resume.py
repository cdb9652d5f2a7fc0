"""`kaizen resume`: an interrupted demo run continues from its latest checkpoint."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap

import pytest
from cli_helpers import (
    DEMO_TOOLS_NO_WORKFLOW,
    DEMO_TOOLS_WITH_WORKFLOW,
    NOTES,
    REPORT,
    assert_one_line_error,
    checkpoint_ids,
    has_kailash,
    invoke,
    jsonl,
    latest,
    ok,
    read,
)

from kaizen.core.autonomy.state.types import AgentState
from kaizen.demo import auto_approver, build_demo_agent, demo_script
from kaizen.providers import ScriptedProvider


class CtrlCAt(ScriptedProvider):
    """The demo script, but the user presses Ctrl-C while the model is asked for response ``at``."""

    def __init__(self, script, at: int):
        super().__init__(script)
        self.at = at

    def chat(self, *args, **kwargs):
        if self.position == self.at:
            raise KeyboardInterrupt
        return super().chat(*args, **kwargs)


def interrupted_demo(store: str, workdir, agent_id: str, at: int, with_workflow: bool) -> None:
    agent = build_demo_agent(store, workdir, agent_id, auto_approver(), with_workflow)
    agent._provider = CtrlCAt(demo_script(with_workflow), at)
    with pytest.raises(KeyboardInterrupt):
        agent.run(task="checkpoints and approvals")
    agent.state_manager.close()


def test_resume_after_ctrl_c_completes_the_run(tmp_path, sqlite_store):
    with_workflow = has_kailash()
    interrupted_demo(sqlite_store, tmp_path / "w", "ctrlc", at=3, with_workflow=with_workflow)
    stopped = latest(sqlite_store, "ctrlc")
    assert stopped.metadata["run"]["status"] == "interrupted" == stopped.status  # saved on Ctrl-C
    assert stopped.step_number == 3
    assert not (tmp_path / "w" / "report.md").exists()
    before = checkpoint_ids(sqlite_store, "ctrlc")

    out = ok("resume", "ctrlc", "--yes", "--store", sqlite_store).stdout
    assert out.splitlines()[0] == f"resuming ctrlc from checkpoint {before[0]} (step 3)"
    assert re.findall(r"^cycle (\d+)$", out, re.MULTILINE) == (["4", "5", "6"] if with_workflow else ["4", "5"])
    assert "completed after" in out and "Wrote report.md" in out
    state = latest(sqlite_store, "ctrlc")
    assert state.status == "completed"
    assert dict(state.tool_usage_counts) == (DEMO_TOOLS_WITH_WORKFLOW if with_workflow else DEMO_TOOLS_NO_WORKFLOW)
    # no call was executed twice, and the audit trail is the uninterrupted run's
    call_ids = [action["call_id"] for action in state.completed_actions]
    assert len(call_ids) == len(set(call_ids)) == (5 if with_workflow else 4)
    assert [r["tool_name"] for r in jsonl(ok("audit", "ctrlc", "--format", "jsonl", "--store", sqlite_store).stdout)] \
        == (["Write", "Read", "word_stats", "Bash", "Write"] if with_workflow else ["Write", "Read", "Bash", "Write"])
    assert (tmp_path / "w" / "notes.md").read_text() == NOTES
    assert (tmp_path / "w" / "report.md").read_text() == REPORT
    # the new checkpoints continue the old history
    after = checkpoint_ids(sqlite_store, "ctrlc")
    assert after[len(after) - len(before):] == before
    # and now there is nothing left to resume
    again = ok("resume", "ctrlc", "--yes", "--store", sqlite_store).stdout
    assert again.strip() == "agent ctrlc already ended with status completed; nothing to resume"
    assert checkpoint_ids(sqlite_store, "ctrlc") == after


def test_resume_summary_counts_the_checkpoints_it_wrote(tmp_path, sqlite_store):
    interrupted_demo(sqlite_store, tmp_path / "w", "count", at=2, with_workflow=False)
    before = len(checkpoint_ids(sqlite_store, "count"))
    out = ok("resume", "count", "--yes", "--store", sqlite_store).stdout
    written = int(re.search(r"^Checkpoints written: (\d+) ", out, re.MULTILINE).group(1))
    assert written == len(checkpoint_ids(sqlite_store, "count")) - before > 0


def test_resume_interactive_asks_for_the_remaining_approvals(tmp_path, sqlite_store):
    # the first Write was approved once (not "all"), so the resumed run must ask for Bash and the second Write
    agent = build_demo_agent(sqlite_store, tmp_path / "w", "ask-resume", lambda request: "approve", False)
    agent._provider = CtrlCAt(demo_script(False), 2)
    with pytest.raises(KeyboardInterrupt):
        agent.run(task="checkpoints and approvals")
    agent.state_manager.close()
    result = ok("resume", "ask-resume", "--store", sqlite_store, input="a\nd\n")
    assert result.stderr.count("wants to run") == 2
    assert "Agent ask-resume wants to run Bash (dangerous):" in result.stderr
    state = latest(sqlite_store, "ask-resume")
    assert state.status == "denied"
    assert [(r["tool_name"], r["approved"]) for r in state.approval_history] == [
        ("Write", True), ("Read", True), ("Bash", True), ("Write", False)]
    assert not (tmp_path / "w" / "report.md").exists()


CRASHER = textwrap.dedent("""
    import os, sys
    from kaizen.demo import auto_approver, build_demo_agent

    store, workdir, agent_id = sys.argv[1:4]
    agent = build_demo_agent(store, workdir, agent_id, auto_approver(), False)

    def die(context):
        if context.data.get("tool_name") == "Bash":
            os._exit(17)  # the process dies after Bash ran, before its result was saved

    agent.hooks.register("post_tool_use", die)
    agent.run(task="checkpoints and approvals")
""")


def test_resume_after_the_process_died_does_not_repeat_a_dangerous_call(tmp_path):
    store = f"sqlite:///{tmp_path}/state.db"
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    crashed = subprocess.run([sys.executable, "-c", CRASHER, store, str(tmp_path / "w"), "killed"],
                             capture_output=True, text=True, timeout=60, env=env)
    assert crashed.returncode == 17, crashed.stderr
    assert latest(store, "killed").metadata["run"]["status"] == "running"

    resumed = subprocess.run(["kaizen", "resume", "killed", "--yes", "--store", store], capture_output=True,
                             text=True, timeout=60, cwd=tmp_path, env={**env, "COLUMNS": "200"})
    assert resumed.returncode == 0, resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert resumed.stdout.startswith("resuming killed from checkpoint ckpt_")
    assert "completed after 5 cycles" in resumed.stdout
    state = latest(store, "killed")
    assert state.status == "completed"
    bash = [a for a in state.completed_actions if a["tool"] == "Bash"]
    assert len(bash) == 1 and not bash[0]["ok"] and "interrupted by a crash" in bash[0]["error"]
    # run once, not repeated; not counted: usage counts count calls whose result was recorded
    assert "Bash" not in state.tool_usage_counts
    records = jsonl(ok("audit", "killed", "--tool", "Bash", "--format", "jsonl", "--store", store).stdout)
    assert len(records) == 1 and records[0]["approved"]
    assert (tmp_path / "w" / "report.md").read_text() == REPORT


def test_resume_a_completed_or_denied_agent_has_nothing_to_do(demo_store, tmp_path, sqlite_store):
    out = ok("resume", demo_store["agent"], "--yes", "--store", demo_store["store"]).stdout
    assert out.strip() == f"agent {demo_store['agent']} already ended with status completed; nothing to resume"
    ok("demo", "--store", sqlite_store, "--workdir", tmp_path / "w", "--agent-id", "no", "--no-workflow",
       input="d\n")
    before = checkpoint_ids(sqlite_store, "no")
    out = ok("resume", "no", "--yes", "--store", sqlite_store).stdout
    assert out.strip() == "agent no already ended with status denied; nothing to resume"
    assert checkpoint_ids(sqlite_store, "no") == before


def test_resume_refuses_an_agent_not_started_by_the_demo(sqlite_store):
    read(sqlite_store, lambda m: m.save_checkpoint(AgentState(agent_id="library-agent", model="x")))
    line = assert_one_line_error(invoke("resume", "library-agent", "--yes", "--store", sqlite_store),
                                 "was not started by `kaizen demo`")
    assert "BaseAutonomousAgent.resume" in line


def test_resume_a_missing_agent(demo_store):
    line = assert_one_line_error(invoke("resume", "nobody", "--yes", "--store", demo_store["store"]),
                                 "agent 'nobody' not found")
    assert demo_store["agent"] in line


def test_ctrl_c_at_the_approval_prompt_then_resume(tmp_path, sqlite_store, monkeypatch):
    import kaizen.core.autonomy.permissions as permissions

    def impatient_user():
        def ask(request):
            if request.tool_name == "Bash":
                raise KeyboardInterrupt
            return "A"
        return ask

    monkeypatch.setattr(permissions, "console_approver", impatient_user)
    handler_before = signal.getsignal(signal.SIGINT)
    result = invoke("demo", "--store", sqlite_store, "--workdir", tmp_path / "w", "--agent-id", "impatient",
                    "--no-workflow")
    assert result.exit_code == 130
    # in a caller's process (here the test's) the command leaves Ctrl-C as it found it
    assert signal.getsignal(signal.SIGINT) is handler_before
    stopped_at = latest(sqlite_store, "impatient").checkpoint_id
    assert result.stderr.strip() == (f"interrupted: saved checkpoint {stopped_at} of impatient (step 3); "
                                     f"continue with: kaizen resume impatient --store '{sqlite_store}'")
    assert "Traceback" not in result.output
    stopped = latest(sqlite_store, "impatient")
    assert stopped.metadata["run"]["status"] == "interrupted"
    assert [r["tool_name"] for r in stopped.approval_history] == ["Write", "Read"]  # Bash was never decided

    monkeypatch.undo()
    out = ok("resume", "impatient", "--yes", "--store", sqlite_store).stdout
    assert "completed after 5 cycles" in out
    state = latest(sqlite_store, "impatient")
    assert [(r["tool_name"], r["decided_by"]) for r in state.approval_history] == [
        ("Write", "user"), ("Read", "policy"), ("Bash", "user"), ("Write", "standing")]
    assert (tmp_path / "w" / "report.md").read_text() == REPORT
