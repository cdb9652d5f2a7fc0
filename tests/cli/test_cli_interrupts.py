"""Ctrl-C during a checkpoint save is held back until the save returned, so the agent and its
store never disagree about the newest checkpoint (which would turn the next save into a conflict)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from kaizen.cli.interrupts import SaveSafeInterrupts
from kaizen.core.autonomy.permissions import APPROVE
from kaizen.demo import build_demo_agent


def agent_that_gets_ctrl_c_mid_save(tmp_path):
    agent = build_demo_agent(f"sqlite:///{tmp_path / 'state.db'}", tmp_path / "w", "saving",
                             lambda request: APPROVE, with_workflow=False)
    agent.save_checkpoint()
    sent = []

    def ctrl_c_once(context):  # fires between planning the save and writing it
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGINT)

    agent.hooks.register("pre_checkpoint_save", ctrl_c_once)
    return agent


def newest(agent):
    return agent.state_manager.list_checkpoints(agent.agent_id, limit=1)[0].checkpoint_id


def test_ctrl_c_during_a_save_lands_after_it(tmp_path):
    agent = agent_that_gets_ctrl_c_mid_save(tmp_path)
    before = newest(agent)
    with pytest.raises(KeyboardInterrupt):
        with SaveSafeInterrupts():
            agent.save_checkpoint()
            time.sleep(5)  # (never reached: the held-back interrupt comes as the save returns)
    assert newest(agent) != before
    assert newest(agent) == agent.last_checkpoint_id  # the save finished, and the agent knows it
    agent.save_checkpoint()  # so the next save continues the same history: no conflict
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_without_the_guard_the_interrupt_cuts_the_save_short(tmp_path):
    agent = agent_that_gets_ctrl_c_mid_save(tmp_path)
    before = newest(agent)
    with pytest.raises(KeyboardInterrupt):
        agent.save_checkpoint()
    assert newest(agent) == before == agent.last_checkpoint_id  # the save never happened


def test_ctrl_c_after_the_run_ended_does_not_ask_for_a_resume(tmp_path, monkeypatch):
    from cli_helpers import invoke

    import kaizen.cli.run

    def ctrl_c(*args, **kwargs):  # Ctrl-C while the summary prints: the run has completed
        raise KeyboardInterrupt

    monkeypatch.setattr(kaizen.cli.run, "print_summary", ctrl_c)
    store = f"sqlite:///{tmp_path / 'state.db'}"
    result = invoke("demo", "--yes", "--no-workflow", "--agent-id", "done", "--workdir", tmp_path / "w",
                    "--store", store)
    assert result.exit_code == 130
    line = result.stderr.strip()
    assert line.startswith("interrupted: ") and "done" in line
    assert "completed" in line and "kaizen resume" not in line
    monkeypatch.undo()
    assert "nothing to resume" in invoke("resume", "done", "--yes", "--store", store).stdout
