"""`kaizen checkpoints list|show|diff|delete|prune` on real stores."""

from __future__ import annotations

import json
import re

import pytest
from cli_helpers import (
    CHECKPOINT_ID,
    assert_one_line_error,
    checkpoint_ids,
    invoke,
    latest,
    agents,
    checkpoint_metas,
    load,
    needs_kailash,
    ok,
    run_demo,
    table_first_column,
)

SPEC_KEYS = {"checkpoint_id", "agent_id", "timestamp", "step_number", "approval_history", "tool_usage_counts",
             "workflow_run_id", "workflow_state"}


def rows(output: str) -> list[list[str]]:
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


# --- list ---------------------------------------------------------------------------------------
def test_list_is_newest_first_with_complete_ids(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("checkpoints", "list", agent, "--store", store).stdout
    assert f"Checkpoints of {agent}" in out
    table = rows(out)
    expected = checkpoint_metas(store, agent)
    assert [r[0] for r in table] == [m.checkpoint_id for m in expected]
    assert all(CHECKPOINT_ID.fullmatch(r[0]) for r in table)
    # newest first: each row's parent is the next row, the oldest has none
    assert [r[1] for r in table] == [r[0] for r in table[1:]] + ["-"]
    steps = [int(r[2]) for r in table]
    assert steps == sorted(steps, reverse=True)
    assert table[0][3] == "completed" and {r[3] for r in table[1:]} == {"running"}
    assert [int(r[5]) for r in table] == [m.size_bytes for m in expected]


def test_list_ids_stay_complete_on_a_narrow_terminal(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("checkpoints", "list", agent, "--store", store, columns="50").stdout
    found = re.findall(r"ckpt_[0-9a-f]+", out)
    assert found and all(CHECKPOINT_ID.fullmatch(i) for i in found)
    assert found[0::2] == checkpoint_ids(store, agent)


def test_list_limit(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("checkpoints", "list", agent, "--limit", "2", "--store", store).stdout
    assert table_first_column(out) == checkpoint_ids(store, agent)[:2]
    result = invoke("checkpoints", "list", agent, "--limit", "0", "--store", store)
    assert result.exit_code == 2 and "--limit" in result.stderr


def test_listed_ids_are_usable_in_show_and_diff(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    listed = table_first_column(ok("checkpoints", "list", agent, "--store", store).stdout)
    for checkpoint_id in (listed[0], listed[len(listed) // 2], listed[-1]):
        assert json.loads(ok("checkpoints", "show", checkpoint_id, "--store", store).stdout)["checkpoint_id"] == checkpoint_id
    oldest = load(store, listed[-1])
    assert ok("checkpoints", "diff", listed[-1], listed[0], "--store", store).stdout.startswith(
        f"step {oldest.step_number} -> 6, status running -> completed")


# --- show ---------------------------------------------------------------------------------------
def test_show_prints_the_spec_checkpoint_as_json(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    newest = checkpoint_ids(store, agent)[0]
    document = json.loads(ok("checkpoints", "show", newest, "--store", store).stdout)
    assert SPEC_KEYS <= set(document)
    assert document["schema_version"] == 1
    assert document["checkpoint_id"] == newest and document["agent_id"] == agent
    state = latest(store, agent)
    assert document["step_number"] == state.step_number
    assert document["tool_usage_counts"] == dict(state.tool_usage_counts)
    assert document["approval_history"] == [dict(r) for r in state.approval_history]
    for record in document["approval_history"]:
        assert {"tool_name", "approved", "action", "timestamp", "input_summary"} <= set(record)
    assert document["workflow_state"]["status"] == "completed"
    assert document["status"] == "completed"


def test_show_an_older_checkpoint_is_time_travel(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    ids = checkpoint_ids(store, agent)
    document = json.loads(ok("checkpoints", "show", ids[-1], "--store", store).stdout)
    assert document["step_number"] <= 1
    assert document["status"] == "running"
    assert document["parent_checkpoint_id"] is None
    assert document["tool_usage_counts"].get("LLM", 0) <= 1
    assert document["approval_history"] == []
    assert document["workflow_state"]["status"] == "running"
    assert "node_results" not in document["workflow_state"]
    # a checkpoint in the middle holds exactly the history up to it
    middle = load(store, ids[len(ids) // 2])
    shown = json.loads(ok("checkpoints", "show", middle.checkpoint_id, "--store", store).stdout)
    assert shown == middle.to_dict()


# --- diff ---------------------------------------------------------------------------------------
@needs_kailash
def test_diff_first_to_last(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    ids = checkpoint_ids(store, agent)
    out = ok("checkpoints", "diff", ids[-1], ids[0], "--store", store).stdout
    lines = out.splitlines()
    oldest, newest = load(store, ids[-1]), load(store, ids[0])
    assert lines[0] == f"step {oldest.step_number} -> 6, status running -> completed"
    assert "New approvals (5)" in out
    approvals = [r[1] for r in rows(out)]
    assert approvals == ["Write", "Read", "word_stats", "Bash", "Write"]
    llm = oldest.tool_usage_counts.get("LLM", 0)
    for delta in ("  Bash: 0 -> 1 (+1)", f"  LLM: {llm} -> 6 ({6 - llm:+d})", "  Read: 0 -> 1 (+1)",
                  "  Write: 0 -> 2 (+2)", "  word_stats: 0 -> 1 (+1)"):
        assert delta in lines
    assert "  workflow.status: running -> completed" in lines
    assert any(line.startswith("  workflow.node_results: <absent> -> {\"split\"") for line in lines)
    assert any(line.startswith("  workflow.run_id: <absent> -> ") for line in lines)
    assert not any(line.startswith("  workflow.last_updated") for line in lines)
    messages = len(newest.conversation_history) - len(oldest.conversation_history)
    assert lines[-1] == f"  conversation: {messages:+d} messages, completed tool calls: +5"


def test_diff_between_neighbours_shows_only_what_changed(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    ids = checkpoint_ids(store, agent)
    older, newer = load(store, ids[-2]), load(store, ids[-3])
    out = ok("checkpoints", "diff", ids[-2], ids[-3], "--store", store).stdout
    new = len(newer.approval_history) - len(older.approval_history)
    assert f"New approvals ({new})" in out
    assert len(rows(out)) == new
    changed = {t for t in set(older.tool_usage_counts) | set(newer.tool_usage_counts)
               if older.tool_usage_counts.get(t, 0) != newer.tool_usage_counts.get(t, 0)}
    shown = set(re.findall(r"^  (\w+): \d+ -> \d+ \([+-]\d+\)$", out, re.MULTILINE))
    assert shown == changed


def test_diff_same_checkpoint_has_no_changes(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    newest = checkpoint_ids(store, agent)[0]
    out = ok("checkpoints", "diff", newest, newest, "--store", store).stdout
    assert "New approvals (0)" in out
    assert "workflow." not in out
    assert out.splitlines()[-1] == "  conversation: +0 messages, completed tool calls: +0"


# --- delete and prune (each on its own run: they change the store) --------------------------
@pytest.fixture
def fresh_demo(tmp_path, sqlite_store):
    run_demo(sqlite_store, tmp_path / "w", "victim", "--no-workflow")
    run_demo(sqlite_store, tmp_path / "w2", "bystander", "--no-workflow")
    return sqlite_store


def test_delete_one_checkpoint(fresh_demo):
    store = fresh_demo
    before = checkpoint_ids(store, "victim")
    target = before[3]
    out = ok("checkpoints", "delete", target, "--store", store).stdout
    assert out.strip() == f"deleted {target}"
    after = checkpoint_ids(store, "victim")
    assert after == [c for c in before if c != target]
    assert table_first_column(ok("checkpoints", "list", "victim", "--store", store).stdout) == after
    assert_one_line_error(invoke("checkpoints", "show", target, "--store", store), target, "not found")
    # the run is still complete and loadable
    assert latest(store, "victim").status == "completed"
    assert len(checkpoint_ids(store, "bystander")) > 0


def test_delete_refuses_the_newest_checkpoint(fresh_demo):
    store = fresh_demo
    before = checkpoint_ids(store, "victim")
    line = assert_one_line_error(invoke("checkpoints", "delete", before[0], "--store", store), before[0])
    assert "newest" in line
    assert checkpoint_ids(store, "victim") == before


def test_delete_without_an_id_or_agent(fresh_demo):
    assert_one_line_error(invoke("checkpoints", "delete", "--store", fresh_demo), "CHECKPOINT_ID", "--agent")


def test_delete_whole_agent_with_yes(fresh_demo):
    store = fresh_demo
    count = len(checkpoint_ids(store, "victim"))
    out = ok("checkpoints", "delete", "--agent", "victim", "--yes", "--store", store).stdout
    assert out.strip() == f"deleted {count} checkpoints of victim"
    assert agents(store) == ["bystander"]
    line = assert_one_line_error(invoke("checkpoints", "list", "victim", "--store", store), "'victim' not found")
    assert "bystander" in line
    assert latest(store, "bystander").status == "completed"


def test_delete_whole_agent_asks_first(fresh_demo):
    store = fresh_demo
    before = checkpoint_ids(store, "victim")
    result = invoke("checkpoints", "delete", "--agent", "victim", "--store", store, input="n\n")
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert checkpoint_ids(store, "victim") == before
    ok("checkpoints", "delete", "--agent", "victim", "--store", store, input="y\n")
    assert agents(store) == ["bystander"]


def test_prune_keep_last(fresh_demo):
    store = fresh_demo
    before = checkpoint_ids(store, "victim")
    dry = ok("checkpoints", "prune", "victim", "--keep-last", "3", "--dry-run", "--store", store).stdout
    assert dry.split() == [*before[3:], "would", "delete", str(len(before) - 3), "checkpoints", "of", "victim",
                           "(--dry-run:", "nothing", "deleted)"]
    assert checkpoint_ids(store, "victim") == before
    out = ok("checkpoints", "prune", "victim", "--keep-last", "3", "--store", store).stdout.splitlines()
    assert out[0] == f"deleted {len(before) - 3} checkpoints of victim; history records are kept"
    size = re.fullmatch(r"(.+): ([\d,]+) -> ([\d,]+) bytes", out[1])  # the file shrinks (SQLite VACUUM)
    assert size and size.group(1).endswith("state.db")
    assert int(size.group(3).replace(",", "")) < int(size.group(2).replace(",", ""))
    assert checkpoint_ids(store, "victim") == before[:3]
    # history records are kept: the newest checkpoint still has the whole audit trail
    assert len(latest(store, "victim").approval_history) == 4
    out = ok("checkpoints", "prune", "victim", "--keep-last", "3", "--store", store).stdout
    assert out.strip() == "deleted 0 checkpoints of victim; history records are kept"
    assert len(checkpoint_ids(store, "bystander")) == len(before)
    result = invoke("checkpoints", "prune", "victim", "--keep-last", "0", "--store", store)
    assert result.exit_code == 2 and "--keep-last" in result.stderr
