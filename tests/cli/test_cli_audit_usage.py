"""`kaizen audit` (table, jsonl, csv, filters, redaction) and `kaizen usage` (prices)."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timedelta, timezone

import pytest
from cli_helpers import (
    assert_one_line_error,
    invoke,
    jsonl,
    latest,
    ok,
)

from kaizen.core.autonomy.permissions import APPROVE, DENY
from kaizen.demo import build_demo_agent
from kaizen.providers import ScriptedProvider

CSV_COLUMNS = ["timestamp", "tool_name", "approved", "action", "decided_by", "input_summary"]


def table_rows(output: str) -> list[list[str]]:
    return [[c.strip() for c in line.split("│")[1:-1]] for line in output.splitlines() if line.startswith("│")]


def utc_time(timestamp: str) -> str:
    """How the audit table shows a stored time: date, time and zone."""
    return datetime.fromisoformat(timestamp).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- audit formats ------------------------------------------------------------------------------
def test_audit_table(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    history = latest(store, agent).approval_history
    out = ok("audit", agent, "--store", store).stdout
    assert f"Approvals of {agent} ({len(history)})" in out
    header = [c.strip() for c in next(l for l in out.splitlines() if l.startswith("┃")).split("┃")[1:-1]]
    assert header == ["time", "tool", "decision", "action", "by", "input"]
    rows = table_rows(out)
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (utc_time(h["timestamp"]), h["tool_name"], "approved" if h["approved"] else "denied", h["action"],
         h["decided_by"]) for h in history]
    assert [r[5] for r in rows if r[1] == "Read"] == ["{'path': 'notes.md'}"]
    assert [r[5] for r in rows if r[1] == "Bash"] == ["{'command': 'wc -l notes.md && ls'}"]


def test_audit_jsonl_is_one_parseable_object_per_line(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("audit", agent, "--format", "jsonl", "--store", store).stdout
    lines = out.splitlines()
    records = jsonl(out)
    assert len(lines) == len(records) == len(latest(store, agent).approval_history)
    assert records == [dict(r) for r in latest(store, agent).approval_history]
    for record in records:
        assert set(record) == {"tool_name", "approved", "action", "timestamp", "input_summary", "decided_by"}
        assert isinstance(record["approved"], bool)


def test_audit_csv_is_parseable(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("audit", agent, "--format", "csv", "--store", store).stdout
    reader = csv.DictReader(io.StringIO(out))
    assert reader.fieldnames == CSV_COLUMNS
    parsed = list(reader)
    history = latest(store, agent).approval_history
    assert len(parsed) == len(history)
    for row, record in zip(parsed, history):
        assert row["timestamp"] == record["timestamp"]
        assert row["tool_name"] == record["tool_name"]
        assert row["approved"] == str(record["approved"])
        assert row["action"] == record["action"]
        assert row["decided_by"] == record["decided_by"]
        assert row["input_summary"] == record["input_summary"]  # multi-line summaries survive quoting


def test_audit_filter_by_tool(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    records = jsonl(ok("audit", agent, "--tool", "Write", "--format", "jsonl", "--store", store).stdout)
    assert [(r["tool_name"], r["decided_by"]) for r in records] == [("Write", "user"), ("Write", "standing")]
    assert "notes.md" in records[0]["input_summary"] and "report.md" in records[1]["input_summary"]
    assert jsonl(ok("audit", agent, "--tool", "NoSuchTool", "--format", "jsonl", "--store", store).stdout) == []
    out = ok("audit", agent, "--tool", "Bash", "--store", store).stdout
    assert f"Approvals of {agent} (1)" in out


def test_audit_denied_filter(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    assert jsonl(ok("audit", agent, "--denied", "--format", "jsonl", "--store", store).stdout) == []
    out = ok("audit", agent, "--denied", "--format", "csv", "--store", store).stdout
    assert out.splitlines() == [",".join(CSV_COLUMNS)]


def test_audit_since_is_inclusive_and_timezone_aware(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    history = [dict(r) for r in latest(store, agent).approval_history]

    def since(value: str) -> list[dict]:
        return jsonl(ok("audit", agent, "--since", value, "--format", "jsonl", "--store", store).stdout)

    assert since(history[2]["timestamp"]) == history[2:]  # "at or after"
    assert since("2000-01-01") == history
    assert since("2999-01-01T00:00:00") == []
    # the same instant written in another zone selects the same records
    moment = datetime.fromisoformat(history[3]["timestamp"])
    assert since(moment.astimezone(timezone(timedelta(hours=2))).isoformat()) == history[3:]
    assert since(moment.astimezone(timezone(timedelta(hours=-7))).isoformat()) == history[3:]
    # one microsecond later excludes the record at that instant
    assert since((moment + timedelta(microseconds=1)).isoformat()) == history[4:]
    # a naive time is read as UTC
    naive = moment.replace(tzinfo=None).isoformat()
    assert since(naive) == history[3:]


def test_audit_filters_combine(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    history = [dict(r) for r in latest(store, agent).approval_history]
    last_write = history[-1]
    records = jsonl(ok("audit", agent, "--tool", "Write", "--since", last_write["timestamp"], "--format", "jsonl",
                       "--store", store).stdout)
    assert records == [last_write]


def test_audit_malformed_since(demo_store):
    result = invoke("audit", demo_store["agent"], "--since", "yesterday", "--store", demo_store["store"])
    assert_one_line_error(result, "'yesterday' is not an ISO 8601 time")


def test_audit_verify_ok(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    out = ok("audit", "verify", agent, "--store", store).stdout
    count = len(latest(store, agent).approval_history)
    assert out.startswith(f"ok: {count} approval records and ")
    assert out.strip().endswith(f"of {agent} verify")


# --- secrets never leave the store through `kaizen audit` ------------------------------------------
SECRETS = ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "hunter2-Pa55word-XYZ", "sk-proj-ABCDEFGHIJKLMNOPQRSTUV",
           "DbPassw0rd-XYZ")


@pytest.fixture(scope="module")
def secret_store(tmp_path_factory):
    """An agent whose tool inputs carry secrets: approved, failed and denied calls."""
    base = tmp_path_factory.mktemp("secrets")
    store = f"sqlite:///{base}/state.db"

    def approver(request):
        return DENY if "psql" in str(request.tool_input) else APPROVE

    agent = build_demo_agent(store, base / "w", "leaky", approver, with_workflow=False)
    agent._provider = ScriptedProvider([
        {"content": "", "tool_calls": [{"name": "Bash", "arguments": {
            "command": f"echo 'Authorization: Bearer {SECRETS[0]}'"}}]},
        {"content": "", "tool_calls": [{"name": "Write", "arguments": {
            "path": "app.env", "content": f"password={SECRETS[1]}\n"}}]},
        {"content": "", "tool_calls": [{"name": "Write", "arguments": {
            "path": "key.txt", "content": "x", "api_key": SECRETS[2]}}]},
        {"content": "", "tool_calls": [{"name": "Bash", "arguments": {
            "command": f"psql postgresql://admin:{SECRETS[3]}@db.example/prod -c 'select 1'"}}]},
        "never reached",
    ])
    result = agent.run(task="leak nothing")
    assert result.status == "denied"
    return store


@pytest.mark.parametrize("fmt", ["table", "jsonl", "csv"])
def test_audit_never_shows_a_secret(secret_store, fmt):
    out = ok("audit", "leaky", "--format", fmt, "--store", secret_store).stdout
    unfolded = re.sub(r"[\s│]", "", out)
    for secret in SECRETS:
        assert secret not in out and secret not in unfolded
    assert "[REDACTED]" in out
    assert out.count("Bash") == 2 and out.count("Write") == 2


def test_audit_secrets_also_redacted_in_filtered_output(secret_store):
    denied = jsonl(ok("audit", "leaky", "--denied", "--format", "jsonl", "--store", secret_store).stdout)
    assert len(denied) == 1 and denied[0]["tool_name"] == "Bash"
    assert denied[0]["input_summary"] == "{'command': \"psql postgresql://admin:[REDACTED]@db.example/prod -c 'select 1'\"}"
    for record in jsonl(ok("audit", "leaky", "--format", "jsonl", "--store", secret_store).stdout):
        for secret in SECRETS:
            assert secret not in record["input_summary"]


def test_audit_table_shows_brackets_in_tool_input_literally(tmp_path, sqlite_store):
    agent = build_demo_agent(sqlite_store, tmp_path / "w", "brackets", lambda request: APPROVE, with_workflow=False)
    agent._provider = ScriptedProvider([
        {"content": "", "tool_calls": [{"name": "Bash", "arguments": {"command": "echo '[bold]x[/bold] [/tmp]'"}}]},
        "done",
    ])
    assert agent.run(task="brackets").status == "completed"
    out = ok("audit", "brackets", "--store", sqlite_store).stdout
    assert "[bold]x[/bold] [/tmp]" in out


# --- usage ---------------------------------------------------------------------------------------
def usage_table(output: str) -> dict[str, int]:
    """Calls per tool, from the first table (the second one is tokens per model)."""
    tools = output.split("Tokens")[0]
    return {r[0]: int(r[1]) for r in table_rows(tools)}


def test_usage_with_the_runs_prices(demo_store):
    store, agent = demo_store["store"], demo_store["agent"]
    state = latest(store, agent)
    out = ok("usage", agent, "--store", store).stdout
    assert f"Usage of {agent}" in out
    assert usage_table(out) == dict(state.tool_usage_counts)
    calls = list(usage_table(out).values())
    assert calls == sorted(calls, reverse=True)
    tokens = state.token_usage["demo-scripted"]
    prices = state.metadata["prices"]
    model_cost = tokens["input_tokens"] * 0.15 / 1e6 + tokens["output_tokens"] * 0.60 / 1e6
    # a breakdown: each tool's price and cost, each model's tokens and cost
    rows = {row[0]: row for row in table_rows(out)}
    assert rows["demo-scripted"] == ["demo-scripted", str(tokens["input_tokens"]), str(tokens["output_tokens"]),
                                     f"${model_cost:.4f}"]
    for tool, count in state.tool_usage_counts.items():
        price = prices["tools"].get(tool)
        assert rows[tool][2:] == (["-", "unpriced"] if price is None else [f"${price:.4f}", f"${count * price:.4f}"])
    expected = sum(state.tool_usage_counts.get(t, 0) * p for t, p in prices["tools"].items()) + model_cost
    assert f"Estimated cost: ${expected:.4f} (the run's prices)" in out
    # the same figure the demo summary printed
    assert f"Estimated cost: ${expected:.4f} (demo prices)" in demo_store["output"]


def test_usage_with_a_prices_file(demo_store, tmp_path):
    store, agent = demo_store["store"], demo_store["agent"]
    prices = tmp_path / "prices.toml"
    prices.write_text('[tools]\nLLM = 0.01\nWrite = 0.5\nBash = 0.25\n\n'
                      '[models.demo-scripted]\ninput_per_million = 1000.0\noutput_per_million = 2000.0\n')
    state = latest(store, agent)
    tokens = state.token_usage["demo-scripted"]
    counts = state.tool_usage_counts
    expected = (counts["LLM"] * 0.01 + counts["Write"] * 0.5 + counts["Bash"] * 0.25
                + tokens["input_tokens"] * 1000.0 / 1e6 + tokens["output_tokens"] * 2000.0 / 1e6)
    out = ok("usage", agent, "--prices", prices, "--store", store).stdout
    assert re.search(rf"^Estimated cost: \${expected:.4f} \({re.escape(str(prices))}\)$", out, re.MULTILINE), out
    # tools only: models left out cost nothing
    tools_only = tmp_path / "tools.toml"
    tools_only.write_text("[tools]\nLLM = 1.0\n")
    out = ok("usage", agent, "--prices", tools_only, "--store", store).stdout
    assert f"Estimated cost: ${counts['LLM'] * 1.0:.4f}" in out


def test_usage_without_prices(tmp_path, sqlite_store):
    agent = build_demo_agent(sqlite_store, tmp_path / "w", "unpriced", lambda r: APPROVE, with_workflow=False)
    agent.config.prices = {}
    agent._provider = ScriptedProvider(["nothing to do"])
    assert agent.run(task="x").status == "completed"
    out = ok("usage", "unpriced", "--store", sqlite_store).stdout
    assert "Estimated cost: unknown (no prices: pass --prices FILE.toml)" in out
    assert {row[0]: row[3] for row in table_rows(out)} == {"LLM": "unpriced", "demo-scripted": "unpriced"}


def test_usage_warns_about_prices_that_match_nothing(demo_store, tmp_path):
    store, agent = demo_store["store"], demo_store["agent"]
    prices = tmp_path / "other.toml"
    prices.write_text("[tools]\nSearch = 0.5\n\n[models.gpt-4o]\ninput_per_million = 1.0\n")
    result = ok("usage", agent, "--prices", prices, "--store", store)
    assert f"Estimated cost: $0.0000 ({prices})" in result.stdout
    warning = result.stderr.strip()
    assert warning.startswith(f"warning: {prices} has no price for ") and "\n" not in warning
    for tool in latest(store, agent).tool_usage_counts:
        assert f"tool {tool}" in warning
    assert "model demo-scripted" in warning


def test_usage_bad_prices_files(demo_store, tmp_path):
    store, agent = demo_store["store"], demo_store["agent"]
    broken = tmp_path / "broken.toml"
    broken.write_text("[tools\nLLM = ")
    result = invoke("usage", agent, "--prices", broken, "--store", store)
    assert_one_line_error(result)
    missing = invoke("usage", agent, "--prices", tmp_path / "missing.toml", "--store", store)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


def test_usage_invalid_price_value_is_an_error(demo_store, tmp_path):
    # (docs/cli.md shows the usage table printed before this error; only stderr and the exit code are checked)
    bad = tmp_path / "bad.toml"
    for content, fragment in (("[tools]\nLLM = 'cheap'\n", "prices.tools.LLM must be a number"),
                              ("[models.demo-scripted]\ninput = 0.15\n", "unknown key(s) input"),
                              ("[tools]\nLLM = -1\n", "prices.tools.LLM must be a number >= 0")):
        bad.write_text(content)
        result = invoke("usage", demo_store["agent"], "--prices", bad, "--store", demo_store["store"])
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
        assert "Estimated cost" not in result.stdout
