"""`kaizen log`: the run as a transcript and as JSON lines, on SQLite and PostgreSQL; `--follow` on a
live `kaizen demo` in another process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, checkpoint_ids, invoke, jsonl, latest, ok, run_demo
from test_cli_processes import kaizen_process, read_until

from kaizen.core.autonomy.permissions import APPROVE, DENY
from kaizen.demo import build_demo_agent
from kaizen.providers import ScriptedProvider

KEYS = {
    "turn": ["kind", "role", "content", "tool_calls", "input_tokens", "output_tokens", "cost_usd"],
    "tool_call": ["kind", "call_id", "tool", "arguments"],
    "approval": ["kind", "tool", "approved", "action", "decided_by", "input_summary", "time"],
    "tool_result": ["kind", "call_id", "tool", "ok", "output", "error", "cost_usd"],
    "checkpoint": ["kind", "checkpoint_id", "step", "status", "time"],
    "summary": ["kind", "agent_id", "status", "step", "checkpoint_id", "tool_calls", "token_usage", "cost_usd",
                "error"],
}
MARKUP = "<script>alert(1)</script> [bold]loud[/bold] [/tmp]"
SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e"


@pytest.fixture(params=["sqlite", "pg"])
def store(request):
    return request.getfixturevalue(f"{request.param}_store")


def test_json_lines_follow_the_run_in_order_with_stable_keys(store, tmp_path):
    run_demo(store, tmp_path / "w", "demo-log", "--no-workflow")
    entries = jsonl(ok("log", "demo-log", "--json", "--store", store).stdout)
    state = latest(store, "demo-log")
    for entry in entries:
        assert list(entry) == KEYS[entry["kind"]], entry
    kinds = [entry["kind"] for entry in entries]
    assert kinds[-1] == "summary" and kinds.count("summary") == 1
    # every checkpoint of the (unforked) run, oldest first
    assert [e["checkpoint_id"] for e in entries if e["kind"] == "checkpoint"] == checkpoint_ids(store, "demo-log")[::-1]
    calls = [e for e in entries if e["kind"] == "tool_call"]
    results = [e for e in entries if e["kind"] == "tool_result"]
    approvals = [e for e in entries if e["kind"] == "approval"]
    assert [c["call_id"] for c in calls] == [r["call_id"] for r in results] == [
        a["call_id"] for a in state.completed_actions]
    assert [a["tool"] for a in approvals] == [r["tool_name"] for r in state.approval_history]
    assert [a["decided_by"] for a in approvals] == [r["decided_by"] for r in state.approval_history]
    for call in calls:  # each call is followed by its approval, then its result
        position = entries.index(call)
        after = [e for e in entries[position:] if e["kind"] in ("approval", "tool_result")][:2]
        assert [e["kind"] for e in after] == ["approval", "tool_result"] and after[1]["call_id"] == call["call_id"]
    # per-call costs add up to what `kaizen usage` estimates
    summary = entries[-1]
    turns = [e for e in entries if e["kind"] == "turn" and e["role"] == "assistant"]
    assert sum(t["input_tokens"] for t in turns) == state.token_usage["demo-scripted"]["input_tokens"]
    assert sum(t["output_tokens"] for t in turns) == state.token_usage["demo-scripted"]["output_tokens"]
    per_call = sum(e["cost_usd"] for e in entries if e["kind"] in ("turn", "tool_result") and e["cost_usd"])
    assert per_call == pytest.approx(summary["cost_usd"])
    assert summary["status"] == "completed" and summary["tool_calls"] == dict(state.tool_usage_counts)
    usage = ok("usage", "demo-log", "--store", store).stdout
    assert f"Estimated cost: ${summary['cost_usd']:.4f}" in usage


def test_text_transcript_shows_turns_calls_approvals_results_and_checkpoints(store, tmp_path):
    run_demo(store, tmp_path / "w", "demo-text", "--no-workflow")
    out = ok("log", "demo-text", "--store", store).stdout
    lines = out.splitlines()
    assert lines[0].startswith("system: You are an autonomous agent.")
    assert "model: I will write the notes first. (" in out
    assert '  call Write call_1 {"content":"# Field notes' in out
    assert "  approved Write by user (all): {'path': 'notes.md'" in out
    assert "  result Write call_1 ok: wrote 160 bytes to notes.md $0.0000" in out
    assert "  approved Write by standing (all)" in out
    assert sum(line.startswith("-- checkpoint ckpt_") for line in lines) == len(checkpoint_ids(store, "demo-text"))
    assert lines[-1].startswith("demo-text completed at step 5; tool calls: ")


def test_stored_markup_and_secrets_never_render(store, tmp_path):
    agent = build_demo_agent(store, tmp_path / "w", "hostile", lambda request: APPROVE, with_workflow=False)
    agent._provider = ScriptedProvider([
        {"content": f"[red]{MARKUP}", "tool_calls": [
            {"name": "Bash", "arguments": {"command": f"echo '{MARKUP}'"}}]},
        {"content": "", "tool_calls": [{"name": "Bash", "arguments": {
            "command": f"echo 'Authorization: Bearer {SECRET}' '\x1b[2J'"}}]},
        "done",
    ])
    agent.config.prices = {}
    assert agent.run(task="hostile").status == "completed"
    text = ok("log", "hostile", "--store", store).stdout
    assert f"model: [red]{MARKUP}" in text  # literally, not as colour or a tag
    assert f'"command":"echo \'{MARKUP}\'"' in text
    assert f'"stdout":"{MARKUP}' in text  # the tool's output, as the shell printed it
    assert "\x1b" not in text  # a terminal escape in stored text is shown, never sent
    assert "estimated cost: unknown (the run had no prices)" in text
    json_out = ok("log", "hostile", "--json", "--store", store).stdout
    for output in (text, json_out):
        assert SECRET not in output
        assert "[REDACTED]" in output
    call = next(e for e in jsonl(json_out) if e["kind"] == "tool_call")
    assert call["arguments"] == {"command": f"echo '{MARKUP}'"}
    assert all(e["cost_usd"] is None for e in jsonl(json_out) if "cost_usd" in e)


def test_a_denied_call_shows_who_denied_it_and_costs_nothing(sqlite_store, tmp_path):
    agent = build_demo_agent(sqlite_store, tmp_path / "w", "refused", lambda request: DENY, with_workflow=False)
    agent._provider = ScriptedProvider([
        {"content": "", "tool_calls": [{"name": "Bash", "arguments": {"command": "rm -rf /"}}]}, "gave up"])
    agent.run(task="x")
    entries = jsonl(ok("log", "refused", "--json", "--store", sqlite_store).stdout)
    approval = next(e for e in entries if e["kind"] == "approval")
    result = next(e for e in entries if e["kind"] == "tool_result")
    assert (approval["approved"], approval["decided_by"]) == (False, "user")
    assert result["ok"] is False and result["error"].startswith("denied by user")
    assert result["cost_usd"] == 0.0
    text = ok("log", "refused", "--store", sqlite_store).stdout
    assert "  denied Bash by user (once): {'command': 'rm -rf /'}" in text


def test_unknown_agent_and_missing_store_are_one_line_errors(sqlite_store, tmp_path):
    assert_one_line_error(invoke("log", "x", "--store", sqlite_store), "no store at")
    run_demo(sqlite_store, tmp_path / "w", "known", "--no-workflow")
    assert_one_line_error(invoke("log", "nobody", "--store", sqlite_store), "agent 'nobody' not found", "known")


@pytest.mark.slow
def test_follow_tails_a_demo_in_another_process_and_ends_with_the_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    demo = kaizen_process("demo", "--agent-id", "live", "--no-workflow", "--workdir", "ws", "--store", store,
                          cwd=tmp_path, stdin=subprocess.PIPE)
    follower = None
    try:
        read_until(demo.stderr, "[a]pprove once", timeout=120)  # the run waits for its first approval
        follower = kaizen_process("log", "live", "--follow", "--json", "--interval", "0.1", "--store", store,
                                  cwd=tmp_path)
        seen = read_until(follower.stdout, '"kind":"tool_call"', timeout=60)
        assert '"kind":"tool_result"' not in seen  # nothing ran yet, and the follower is still waiting
        time.sleep(0.5)
        assert follower.poll() is None
        demo.stdin.write("A\nA\n")
        demo.stdin.flush()
        out, err = follower.communicate(timeout=120)
        assert demo.wait(timeout=120) == 0
    finally:
        for process in (demo, follower):
            if process is not None and process.poll() is None:
                process.kill()
    assert follower.returncode == 0, err
    entries = jsonl(seen + out)
    assert entries[-1]["kind"] == "summary" and entries[-1]["status"] == "completed"
    ids = [e["checkpoint_id"] for e in entries if e["kind"] == "checkpoint"]
    assert len(ids) == len(set(ids))  # each entry once, however many polls saw it
    assert ids == checkpoint_ids(store, "live")[::-1]
    assert [e["call_id"] for e in entries if e["kind"] == "tool_result"] == [
        a["call_id"] for a in latest(store, "live").completed_actions]
    # and the whole log read afterwards is the same transcript
    assert jsonl(ok("log", "live", "--json", "--store", store).stdout) == entries


@pytest.mark.slow
def test_follow_waits_for_the_agent_and_ctrl_c_ends_it_quietly(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "other", "--no-workflow")
    follower = kaizen_process("log", "not-yet", "--follow", "--store", store, cwd=tmp_path)
    try:
        read_until(follower.stderr, "waiting for agent not-yet", timeout=60)
        os.kill(follower.pid, signal.SIGINT)
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 130
    assert "Traceback" not in err and out == ""


def test_cli_docs_list_every_json_key():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = docs[docs.index("## `kaizen log`"):]
    for kind, keys in KEYS.items():
        assert f"`{kind}`" in section
        for key in keys:
            assert f"`{key}`" in section, (kind, key)


def test_a_deleted_checkpoint_in_the_middle_does_not_cut_the_transcript(sqlite_store, tmp_path):
    run_demo(sqlite_store, tmp_path / "w", "gappy", "--no-workflow")
    second_newest = checkpoint_ids(sqlite_store, "gappy")[1]
    ok("checkpoints", "delete", second_newest, "--store", sqlite_store)
    entries = jsonl(ok("log", "gappy", "--json", "--store", sqlite_store).stdout)
    assert [e["checkpoint_id"] for e in entries if e["kind"] == "checkpoint"] == checkpoint_ids(sqlite_store, "gappy")[::-1]
    turns = [e for e in entries if e["kind"] == "turn" and e["role"] == "assistant"]
    assert len(turns) == 5 and turns[-1]["output_tokens"] is not None
