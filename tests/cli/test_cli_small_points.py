"""The `kaizen` command's smaller promises: its own exit code for tampering, quiet pipes, diffs that
name a mismatch, agent listing, trees, forks, checkpoint references, and help that names KAIZEN_STORE."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from cli_helpers import assert_one_line_error, checkpoint_ids, invoke, ok, read, run_demo

from kaizen.cli import main
from kaizen.core.autonomy.permissions import APPROVE
from kaizen.demo import build_demo_agent
from kaizen.providers import ScriptedProvider

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_agents(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two")
    store = f"sqlite:///{tmp / 'state.db'}"
    run_demo(store, tmp / "a", "alpha", "--no-workflow")
    run_demo(store, tmp / "b", "beta", "--no-workflow")
    return store


def test_tampering_has_its_own_exit_code_apart_from_usage_errors(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "t", "--no-workflow")
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE records SET data = replace(data, '\"approved\":true', '\"approved\":false') "
                   "WHERE stream = 0 AND seq = 1")
    tampered = invoke("audit", "verify", "t", "--store", store)
    usage_error = invoke("audit", "verify", "t", "--no-such-option")
    assert usage_error.exit_code == 2
    assert tampered.exit_code == 3 and tampered.stderr.startswith("tampered: ")


def test_audit_jsonl_into_a_closed_pipe_exits_quietly(two_agents):
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env["PYTHONPATH"] = str(REPO)
    pipeline = (f"{sys.executable} -m kaizen.cli audit alpha --format jsonl --store '{two_agents}' | head -1; "
                "echo \"exit ${PIPESTATUS[0]}\" >&2")
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.count("\n") == 1 and '"tool_name":"Write"' in done.stdout
    assert done.stderr == "exit 0\n", done.stderr


@pytest.mark.parametrize("command", [["usage", "alpha"], ["log", "alpha"], ["checkpoints", "list", "alpha"],
                                     ["checkpoints", "tree", "alpha"], ["agents"]], ids=" ".join)
def test_tables_into_a_closed_pipe_exit_quietly(two_agents, command):
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env["PYTHONPATH"] = str(REPO)
    args = " ".join(command)
    pipeline = (f"{sys.executable} -m kaizen.cli {args} --store '{two_agents}' | head -c 1 >/dev/null; "
                "echo \"exit ${PIPESTATUS[0]}\" >&2")
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, env=env, timeout=120)
    assert done.stderr == "exit 0\n", done.stderr


def test_diff_names_swapped_order_and_two_agents(two_agents):
    ids = checkpoint_ids(two_agents, "alpha")
    newer, older = ids[0], ids[-1]
    line = assert_one_line_error(invoke("checkpoints", "diff", newer, older, "--store", two_agents),
                                 f"{newer} (step", "is newer than", f"checkpoints diff {older} {newer}")
    assert line
    other = checkpoint_ids(two_agents, "beta")[0]
    assert_one_line_error(invoke("checkpoints", "diff", older, other, "--store", two_agents),
                          f"{older} belongs to agent alpha and {other} to agent beta")
    out = ok("checkpoints", "diff", older, newer, "--store", two_agents).stdout
    assert out.startswith("step 0 -> 5, status running -> completed")


def test_demo_refuses_an_existing_agent_id(two_agents, tmp_path):
    before = checkpoint_ids(two_agents, "alpha")
    line = assert_one_line_error(invoke("demo", "--yes", "--agent-id", "alpha", "--workdir", tmp_path,
                                        "--store", two_agents), "'alpha' already exists", "kaizen resume alpha")
    assert "another writer" not in line
    assert checkpoint_ids(two_agents, "alpha") == before


def test_agents_lists_status_step_and_last_activity(two_agents):
    out = ok("agents", "--store", two_agents).stdout
    rows = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")]
    assert [row[:4] for row in rows] == [["alpha", "completed", "5", str(len(checkpoint_ids(two_agents, "alpha")))],
                                         ["beta", "completed", "5", str(len(checkpoint_ids(two_agents, "beta")))]]
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC", row[4]) for row in rows)


def test_agents_of_an_empty_store_says_so(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "gone", "--no-workflow")
    ok("checkpoints", "delete", "--agent", "gone", "--yes", "--store", store)
    assert ok("agents", "--store", store).stdout.strip() == f"no agents in {store}"


def test_show_accepts_an_agent_latest_and_unique_prefixes(two_agents):
    newest_alpha = checkpoint_ids(two_agents, "alpha")[0]
    newest_beta = checkpoint_ids(two_agents, "beta")[0]  # beta ran last
    for reference, expected in (("alpha", newest_alpha), ("latest", newest_beta), (newest_alpha[:10], newest_alpha),
                                (newest_alpha, newest_alpha)):
        out = ok("checkpoints", "show", reference, "--store", two_agents).stdout
        assert f'"checkpoint_id": "{expected}"' in out, reference
    assert_one_line_error(invoke("checkpoints", "show", "ckpt_", "--store", two_agents), "matches", "give more")


def test_tree_shows_a_fork_as_a_branch(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "branched", "--no-workflow")
    ids = checkpoint_ids(store, "branched")
    fork_point = ids[len(ids) // 2]
    forked = ok("fork", fork_point, "--store", store).stdout
    new = re.search(r"\(checkpoint (ckpt_[0-9a-f]{12})", forked).group(1)
    out = ok("checkpoints", "tree", "branched", "--store", store).stdout
    lines = out.splitlines()
    assert lines[0] == "branched"
    where = {cid: next(i for i, line in enumerate(lines) if cid in line) for cid in ids + [new]}
    depth = {cid: len(lines[i]) - len(lines[i].lstrip(" │├└─")) for cid, i in where.items()}
    assert depth[new] > depth[ids[-1]]  # the fork hangs under its starting point
    assert depth[ids[0]] > depth[ids[-1]]  # and so does the rest of the original history


def test_one_cycle_is_singular(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    agent = build_demo_agent(store, tmp_path / "w", "short", lambda request: APPROVE, with_workflow=False)
    agent._provider = ScriptedProvider(["done at once"])  # a test may reach into the agent it built
    assert agent.run(task="x").cycles == 1
    from kaizen.cli.progress import print_summary
    from kaizen.cli.errors import console

    with console.capture() as captured:
        print_summary(agent, agent.run(resume=True), 0, store)
    assert "completed after 1 cycle: done at once" in captured.get()


def commands_with_a_store_option(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found += commands_with_a_store_option(command, path + (name,))
        elif any("--store" in param.opts for param in command.params if isinstance(param, click.Option)):
            found.append(path + (name,))
    return found


@pytest.mark.parametrize("command", commands_with_a_store_option(main), ids=" ".join)
def test_every_help_with_store_names_kaizen_store(command):
    assert "KAIZEN_STORE" in ok(*command, "--help").stdout


def test_vacuum_shrinks_a_pruned_store(two_agents, tmp_path):
    out = ok("vacuum", "--store", two_agents).stdout
    assert re.fullmatch(r".*state\.db: [\d,]+ -> [\d,]+ bytes\n", out)
    assert_one_line_error(invoke("vacuum", "--store", f"sqlite:///{tmp_path / 'none.db'}"), "no store at")
    assert read(two_agents, lambda m: m.list_agents()) == ["alpha", "beta"]


def test_vacuum_packs_the_histories_of_a_store_written_before_packs(tmp_path):
    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.core.autonomy.state.storage.sqlite_packs import PACK
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    store = f"sqlite:///{tmp_path / 'state.db'}"
    manager = SyncStateManager(f"{store}?synchronous=OFF")
    agent = BaseAutonomousAgent(agent_id="long", state_manager=manager)
    for n in range(PACK):
        agent.record_approval("Bash", True, "once", {"command": f"ls {n}"})
        agent.save_checkpoint()
    manager.close()
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("DELETE FROM record_packs")
    assert "packed 1 block of 256 history entries" in ok("vacuum", "--store", store).stdout
    with sqlite3.connect(tmp_path / "state.db") as db:
        assert db.execute("SELECT count(*) FROM record_packs").fetchone()[0] == 1
    assert "packed" not in ok("vacuum", "--store", store).stdout
    assert ok("audit", "verify", "long", "--store", store).exit_code == 0
