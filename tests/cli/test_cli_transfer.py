"""`kaizen export`, `kaizen import` and `kaizen migrate` between real stores."""

from __future__ import annotations

import json

import pytest
from cli_helpers import (
    assert_one_line_error,
    checkpoint_ids,
    invoke,
    jsonl,
    latest,
    agents,
    ok,
    run_demo,
)


def export_to(path, agent: str, store: str):
    out = ok("export", agent, "--store", store).stdout
    path.write_text(out)  # what `kaizen export AGENT > file.json` leaves
    return json.loads(out)


def audit_views(agent: str, store: str) -> tuple[str, str, str]:
    return tuple(ok("audit", agent, "--format", fmt, "--store", store).stdout for fmt in ("jsonl", "csv", "table"))


def test_export_is_one_json_document(demo_store, tmp_path):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("export", agent, "--store", store).stdout
    assert out.endswith("\n") and out.count("\n") == 1
    document = json.loads(out)
    assert document["format"] == "kaizen-state/agent-export" and document["version"] == 2
    assert document["agent_id"] == agent
    assert [c["checkpoint_id"] for c in document["checkpoints"]] == list(reversed(checkpoint_ids(store, agent)))


def target_store(kind: str, tmp_path, request) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/target.db"
    if kind == "filesystem":
        return f"file://{tmp_path}/target-ck"
    return request.getfixturevalue("pg_store")


TARGETS = ["sqlite", "filesystem", "postgres"]


@pytest.mark.parametrize("target_kind", TARGETS)
def test_export_then_import_gives_the_same_audit(demo_store, tmp_path, request, target_kind):
    store, agent = demo_store["store"], demo_store["agent"]
    target = target_store(target_kind, tmp_path, request)
    export_file = tmp_path / "agent.json"
    export_to(export_file, agent, store)
    out = ok("import", export_file, "--store", target).stdout
    assert out.startswith(f"imported agent {agent} into ")
    assert audit_views(agent, target) == audit_views(agent, store)
    assert checkpoint_ids(target, agent) == checkpoint_ids(store, agent)
    newest = checkpoint_ids(store, agent)[0]
    assert ok("checkpoints", "show", newest, "--store", target).stdout == \
        ok("checkpoints", "show", newest, "--store", store).stdout
    assert ok("usage", agent, "--store", target).stdout == ok("usage", agent, "--store", store).stdout
    assert "ok:" in ok("audit", "verify", agent, "--store", target).stdout


def test_import_from_stdin(demo_store, tmp_path):
    store, agent = demo_store["store"], demo_store["agent"]
    target = f"sqlite:///{tmp_path}/stdin.db"
    ok("import", "-", "--store", target, input=ok("export", agent, "--store", store).stdout)
    assert audit_views(agent, target) == audit_views(agent, store)


@pytest.mark.parametrize("target_kind", TARGETS)
def test_importing_twice_fails_cleanly(demo_store, tmp_path, request, target_kind):
    store, agent = demo_store["store"], demo_store["agent"]
    target = target_store(target_kind, tmp_path, request)
    export_file = tmp_path / "agent.json"
    export_to(export_file, agent, store)
    ok("import", export_file, "--store", target)
    before = (checkpoint_ids(target, agent), audit_views(agent, target))
    assert_one_line_error(invoke("import", export_file, "--store", target), f"agent '{agent}' already exists")
    assert (checkpoint_ids(target, agent), audit_views(agent, target)) == before


def damaged_copies(document: dict) -> dict[str, str]:
    """Export files damaged in different ways (each must be refused before anything is written)."""
    text = json.dumps(document)
    changed_record = json.loads(text)
    changed_record["records"][0][3]["approved"] = not changed_record["records"][0][3]["approved"]
    missing_record = json.loads(text)
    del missing_record["records"][1]
    changed_row = json.loads(text)
    changed_row["checkpoints"][-1]["step_number"] += 1
    wrong_format = json.loads(text)
    wrong_format["format"] = "something-else"
    return {
        "truncated": text[: len(text) // 2],
        "not-json": "this is not an export\n",
        "changed-record": json.dumps(changed_record),
        "missing-record": json.dumps(missing_record),
        "changed-checkpoint": json.dumps(changed_row),
        "wrong-format": json.dumps(wrong_format),
        "empty-object": "{}",
    }


@pytest.mark.parametrize("target_kind", TARGETS)
def test_importing_a_damaged_file_writes_nothing(demo_store, tmp_path, request, target_kind):
    store, agent = demo_store["store"], demo_store["agent"]
    target = target_store(target_kind, tmp_path, request)
    run_demo(target, tmp_path / "w", "resident", "--no-workflow")  # the target already holds an agent
    before = checkpoint_ids(target, "resident")
    document = export_to(tmp_path / "good.json", agent, store)
    for name, content in damaged_copies(document).items():
        damaged = tmp_path / f"{name}.json"
        damaged.write_text(content)
        result = invoke("import", damaged, "--store", target)
        assert_one_line_error(result)
        assert agents(target) == ["resident"], name
    assert checkpoint_ids(target, "resident") == before
    # the intact file still imports afterwards: nothing half-written was left in the way
    ok("import", tmp_path / "good.json", "--store", target)
    assert agents(target) == sorted(["resident", agent])


def test_importing_a_damaged_file_into_a_new_sqlite_store_creates_nothing(demo_store, tmp_path):
    document = export_to(tmp_path / "good.json", demo_store["agent"], demo_store["store"])
    damaged = tmp_path / "damaged.json"
    damaged.write_text(damaged_copies(document)["changed-record"])
    assert_one_line_error(invoke("import", damaged, "--store", f"sqlite:///{tmp_path}/new.db"), "fails its hash")
    if (tmp_path / "new.db").exists():
        assert agents(f"sqlite:///{tmp_path}/new.db") == []


def test_import_rejects_an_export_relabelled_to_another_agent(demo_store, tmp_path):
    document = export_to(tmp_path / "good.json", demo_store["agent"], demo_store["store"])
    document["agent_id"] = "someone-else"
    relabelled = tmp_path / "relabelled.json"
    relabelled.write_text(json.dumps(document))
    target = f"sqlite:///{tmp_path}/target.db"
    result = invoke("import", relabelled, "--store", target)
    if result.exit_code == 0:  # accepted: then what it says it imported must be there
        assert "someone-else" in agents(target)
        ok("audit", "someone-else", "--store", target)
    else:
        assert_one_line_error(result)
        assert not (tmp_path / "target.db").exists() or agents(target) == []


def test_import_does_not_print_the_store_password(demo_store, tmp_path, pg_store):
    export_to(tmp_path / "agent.json", demo_store["agent"], demo_store["store"])
    with_password = pg_store.replace("postgres@", "postgres:hunter2-pw@", 1)
    assert "hunter2-pw" in with_password
    result = ok("import", tmp_path / "agent.json", "--store", with_password)
    assert "hunter2-pw" not in result.output


# --- migrate ---------------------------------------------------------------------------------
def test_migrate_sqlite_to_postgres_copies_every_agent(tmp_path, sqlite_store, pg_store):
    run_demo(sqlite_store, tmp_path / "w1", "m-one")
    run_demo(sqlite_store, tmp_path / "w2", "m-two", "--no-workflow")
    run_demo(sqlite_store, tmp_path / "w3", "m-three", input="a\nd\n")  # a denied run
    names = agents(sqlite_store)
    assert names == ["m-one", "m-three", "m-two"]
    out = ok("migrate", sqlite_store, pg_store).stdout
    lines = out.strip().splitlines()
    assert lines[-1] == "copied 3 agents"
    assert sorted(line.split("] ", 1)[1] for line in lines[:-1]) == names
    assert [line.split("]")[0] for line in lines[:-1]] == ["[1/3", "[2/3", "[3/3"]
    assert agents(pg_store) == names
    for agent in names:
        assert checkpoint_ids(pg_store, agent) == checkpoint_ids(sqlite_store, agent)
        assert audit_views(agent, pg_store) == audit_views(agent, sqlite_store)
        assert latest(pg_store, agent).to_dict() == latest(sqlite_store, agent).to_dict()
    assert [r["tool_name"] for r in jsonl(ok("audit", "m-three", "--denied", "--format", "jsonl",
                                             "--store", pg_store).stdout)] == ["Bash"]
    # the migrated agents are fully usable: a completed one has nothing to resume
    assert "nothing to resume" in ok("resume", "m-one", "--yes", "--store", pg_store).stdout
    # migrating again refuses instead of duplicating
    assert_one_line_error(invoke("migrate", sqlite_store, pg_store), "already exists")
    assert agents(pg_store) == names


def test_migrate_from_a_missing_store(tmp_path):
    result = invoke("migrate", f"sqlite:///{tmp_path}/none.db", f"sqlite:///{tmp_path}/target.db")
    assert_one_line_error(result, "no store at")
    assert not (tmp_path / "target.db").exists()


def test_migrate_into_a_store_that_has_one_of_the_agents_copies_nothing(tmp_path):
    source, target = f"sqlite:///{tmp_path / 'source.db'}", f"sqlite:///{tmp_path / 'target.db'}"
    for name in ("a1", "a2", "a3"):
        run_demo(source, tmp_path / name, name, "--no-workflow")
    export_to(tmp_path / "a2.json", "a2", source)
    ok("import", tmp_path / "a2.json", "--store", target)
    line = assert_one_line_error(invoke("migrate", source, target), "a2", "already exists", "nothing was copied")
    assert "a1" not in line and "a3" not in line
    assert agents(target) == ["a2"]  # not a1 copied and then a stop at a2
