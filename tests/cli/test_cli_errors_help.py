"""Errors are one line on stderr with a non-zero exit; `--help` documents every option."""

from __future__ import annotations

import sys

import pytest
from cli_helpers import assert_one_line_error, checkpoint_ids, invoke, ok, run_demo

# --- errors -------------------------------------------------------------------------------------
READ_COMMANDS = [
    ["checkpoints", "list", "{agent}"],
    ["audit", "{agent}"],
    ["usage", "{agent}"],
    ["export", "{agent}"],
    ["resume", "{agent}", "--yes"],
    ["checkpoints", "prune", "{agent}", "--keep-last", "1"],
    ["checkpoints", "delete", "--agent", "{agent}", "--yes"],
]


def fill(command: list[str], agent: str) -> list[str]:
    return [part.format(agent=agent) for part in command]


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_unknown_store_url(command):
    result = invoke(*fill(command, "a"), "--store", "bogus://somewhere")
    assert_one_line_error(result, "unknown store URL 'bogus://somewhere'", "sqlite:///")


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_missing_store_file(command, tmp_path):
    result = invoke(*fill(command, "a"), "--store", f"sqlite:///{tmp_path}/nothing.db")
    assert_one_line_error(result, f"no store at {tmp_path}/nothing.db", "kaizen demo")
    assert not (tmp_path / "nothing.db").exists()  # looking did not create an empty store


def test_missing_store_file_from_the_default_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("audit", "a"), "no store at .kaizen/state.db")
    assert not (tmp_path / ".kaizen").exists()


def test_missing_bare_store_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("audit", "a", "--store", "missing.db"), "no store at missing.db")
    assert not (tmp_path / "missing.db").exists()


def test_missing_filesystem_store_directory(tmp_path):
    assert_one_line_error(invoke("audit", "a", "--store", f"file://{tmp_path}/none"), f"no store at {tmp_path}/none")
    assert not (tmp_path / "none").exists()


def test_a_file_that_is_not_a_store(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 200)
    assert_one_line_error(invoke("audit", "a", "--store", f"sqlite:///{junk}"), "junk.db")


def test_unreachable_postgres():
    assert_one_line_error(invoke("audit", "a", "--store", "postgresql://nobody:s3cret-pw@127.0.0.1:1/none"),
                          "PostgreSQL")
    result = invoke("audit", "a", "--store", "postgresql://nobody:s3cret-pw@127.0.0.1:1/none")
    assert "s3cret-pw" not in result.output


@pytest.mark.parametrize("url", ["postgresql://nohost/x", "postgres://u@nohost/x?schema=s"])
@pytest.mark.parametrize("command", [["agents"], ["resume", "a", "--yes"], ["demo", "--yes"]], ids=" ".join)
def test_postgres_url_without_psycopg_says_what_to_install(command, url, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    monkeypatch.delitem(sys.modules, "kaizen.core.autonomy.state.storage.postgres", raising=False)
    assert_one_line_error(invoke(*command, "--store", url), "psycopg", "pip install 'kaizen-state[postgres]'")


@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_missing_agent(command, demo_store):
    result = invoke(*fill(command, "ghost"), "--store", demo_store["store"])
    line = assert_one_line_error(result, "agent 'ghost' not found", demo_store["agent"])
    assert "agents here:" in line


def test_missing_agent_in_an_empty_store(tmp_path):
    assert_one_line_error(invoke("audit", "ghost", "--store", "memory://"), "the store has no agents")


@pytest.mark.parametrize("command", [["checkpoints", "show", "{c}"], ["checkpoints", "delete", "{c}"],
                                     ["checkpoints", "diff", "{c}", "{newest}"],
                                     ["checkpoints", "diff", "{newest}", "{c}"]],
                         ids=["show", "delete", "diff-older", "diff-newer"])
def test_missing_checkpoint(command, demo_store):
    newest = checkpoint_ids(demo_store["store"], demo_store["agent"])[0]
    args = [p.format(c="ckpt_000000000000", newest=newest) for p in command]
    line = assert_one_line_error(invoke(*args, "--store", demo_store["store"]), "'ckpt_000000000000'")
    assert "checkpoint not found" in line.lower() or "checkpoint 'ckpt_000000000000' not found" in line


def test_malformed_checkpoint_id(demo_store):
    assert_one_line_error(invoke("checkpoints", "show", "../etc/passwd", "--store", demo_store["store"]),
                          "is not a valid id")


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "12:00", "2026-01-31T25:00"])
def test_malformed_since(demo_store, since):
    result = invoke("audit", demo_store["agent"], "--since", since, "--store", demo_store["store"])
    assert_one_line_error(result, f"{since!r} is not an ISO 8601 time")


def test_audit_with_an_extra_argument(demo_store):
    result = invoke("audit", demo_store["agent"], "extra", "--store", demo_store["store"])
    assert_one_line_error(result, "unexpected argument 'extra'")


def test_audit_verify_without_an_agent_is_a_usage_error(demo_store):
    result = invoke("audit", "verify", "--store", demo_store["store"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "Missing argument 'AGENT_ID'" in result.stderr and "kaizen audit verify AGENT_ID" in result.stderr
    assert "not found" not in result.stderr


def test_an_agent_named_verify_can_still_be_audited(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "verify", "--no-workflow")
    assert "Approvals of verify" in ok("audit", "verify", "--store", store).stdout
    assert ok("audit", "verify", "verify", "--store", store).stdout.startswith("ok: ")


def test_import_a_file_that_is_not_json(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    assert_one_line_error(invoke("import", bad, "--store", f"sqlite:///{tmp_path}/t.db"), "bad.json is not JSON")


def test_invalid_option_values_are_usage_errors(demo_store):
    result = invoke("audit", demo_store["agent"], "--format", "xml", "--store", demo_store["store"])
    assert result.exit_code == 2 and "'xml' is not one of" in result.stderr and result.stdout == ""
    result = invoke("checkpoints", "prune", demo_store["agent"], "--store", demo_store["store"])
    assert result.exit_code == 2 and "--keep-last" in result.stderr


# --- help -----------------------------------------------------------------------------------------
HELP = {
    ("demo",): ["--yes", "--workdir", "--agent-id", "--no-workflow", "--store"],
    ("resume",): ["AGENT_ID", "--yes", "--store"],
    ("checkpoints", "list"): ["AGENT_ID", "--limit", "--store"],
    ("checkpoints", "show"): ["CHECKPOINT", "--store"],
    ("checkpoints", "diff"): ["OLDER", "NEWER", "--store"],
    ("checkpoints", "delete"): ["CHECKPOINT_ID", "--agent", "--yes", "--store"],
    ("checkpoints", "prune"): ["AGENT_ID", "--keep-last", "--store"],
    ("audit",): ["AGENT_ID", "--tool", "--denied", "--since", "--format", "table", "jsonl", "csv", "--store", "verify"],
    ("usage",): ["AGENT_ID", "--prices", "--store"],
    ("export",): ["AGENT_ID", "--store"],
    ("import",): ["FILE", "--store"],
    ("migrate",): ["SOURCE_URL", "TARGET_URL"],
}


@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_lists_the_options(command, flag):
    out = ok(*command, flag).stdout
    assert out.startswith("Usage: ")
    for word in HELP[command] + ["--help"]:
        assert word in out, (command, word)
    if "--store" in HELP[command]:
        assert "KAIZEN_STORE" in out or "sqlite:///.kaizen/state.db" in out


def test_top_level_help_lists_every_command():
    out = ok("--help").stdout
    for command in ("demo", "resume", "checkpoints", "audit", "usage", "export", "import", "migrate"):
        assert f"  {command}" in out
    assert "kaizen demo --yes" in out
    out = ok("checkpoints", "--help").stdout
    for command in ("list", "show", "diff", "delete", "prune"):
        assert f"  {command}" in out


@pytest.mark.parametrize(("typed", "meant"), [("show", "checkpoints show"), ("prune", "checkpoints prune"),
                                             ("list", "checkpoints list"), ("tree", "checkpoints tree"),
                                             ("rotate", "keys rotate"), ("verify", "audit verify")])
def test_a_subcommand_typed_at_the_top_level_names_its_group(typed, meant):
    result = invoke(typed, "latest")
    assert result.exit_code == 2 and result.stdout == ""
    assert f"No such command '{typed}'" in result.stderr and f"kaizen {meant} " in result.stderr


def test_an_unknown_command_is_still_a_plain_usage_error():
    result = invoke("frobnicate")
    assert result.exit_code == 2 and "No such command 'frobnicate'" in result.stderr and "kaizen checkpoints" not in result.stderr


def test_version():
    assert ok("--version").stdout.strip().endswith("0.1.0")



# --- checkpoints delete: one checkpoint or one agent, said unambiguously ------------------------------
def test_delete_with_a_checkpoint_and_agent_deletes_nothing(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    run_demo(store, tmp_path / "w", "kept", "--no-workflow")
    ids = checkpoint_ids(store, "kept")
    result = invoke("checkpoints", "delete", ids[-1], "--agent", "kept", "--yes", "--store", store)
    assert_one_line_error(result, "CHECKPOINT_ID", "--agent", "not both")
    assert checkpoint_ids(store, "kept") == ids
