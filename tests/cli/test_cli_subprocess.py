"""Exactly what the README tells a new user, with the installed `kaizen` executable."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess

import pytest
from cli_helpers import CHECKPOINT_ID, checkpoint_ids, has_kailash, latest

KAIZEN = shutil.which("kaizen")
pytestmark = pytest.mark.skipif(KAIZEN is None and os.environ.get("CI", "").lower() != "true",
                                reason="the kaizen console script is not installed (pip install -e .)")


def kaizen(*args: str, cwd, columns: str = "80", timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env.update({"COLUMNS": columns, "TMPDIR": str(cwd)})
    assert KAIZEN is not None, "the kaizen console script is not on PATH"
    return subprocess.run([KAIZEN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
    """`kaizen demo --yes` in a fresh directory, as the README's first line runs it."""
    cwd = tmp_path_factory.mktemp("quickstart")
    return cwd, kaizen("demo", "--yes", cwd=cwd, columns="200")


def test_readme_quick_start_is_quiet_on_stderr(quick_start):
    # Kailash's LocalRuntime sets its own loggers to INFO: none of that may reach the user
    _, demo = quick_start
    assert demo.returncode == 0
    assert demo.stderr == ""


def test_readme_quick_start(quick_start):
    tmp_path, demo = quick_start
    assert demo.returncode == 0, demo.stderr
    assert "Traceback" not in demo.stderr
    assert (tmp_path / ".kaizen" / "state.db").is_file()  # the default embedded store, relative to cwd
    agent = re.search(r"^  kaizen audit (demo-[0-9a-f]{8})$", demo.stdout, re.MULTILINE).group(1)
    cycles = 6 if has_kailash() else 5
    assert f"completed after {cycles} cycles" in demo.stdout
    workspace = re.search(r"workspace (\S+)", demo.stdout).group(1)
    assert workspace.startswith(str(tmp_path))  # a new temp dir (TMPDIR), not the cwd
    # the demo says where its temporary workspace was, and removes it once the run completed
    assert f"Removed the temporary workspace {workspace}" in demo.stdout
    assert not os.path.exists(workspace)
    store = f"sqlite:///{tmp_path}/.kaizen/state.db"
    assert latest(store, agent).status == "completed"

    # the three commands the summary prints, run as printed (default terminal width)
    listed = kaizen("checkpoints", "list", agent, cwd=tmp_path)
    assert listed.returncode == 0 and listed.stderr == ""
    ids = checkpoint_ids(store, agent)
    found = [m for m in re.findall(r"ckpt_[0-9a-f]+", listed.stdout)]
    assert all(CHECKPOINT_ID.fullmatch(i) for i in found)
    assert found[0::2] == ids  # newest first, each row "checkpoint | parent"
    assert f"Checkpoints written: {len(ids)} (latest {ids[0]})" in demo.stdout

    audit = kaizen("audit", agent, cwd=tmp_path)
    assert audit.returncode == 0 and audit.stderr == ""
    assert f"Approvals of {agent} ({cycles - 1})" in audit.stdout
    for tool in ("Write", "Read", "Bash"):
        assert tool in audit.stdout

    usage = kaizen("usage", agent, cwd=tmp_path)
    assert usage.returncode == 0 and usage.stderr == ""
    assert re.search(r"│ LLM\s+│\s+" + str(cycles) + r" │", usage.stdout)
    summary_cost = re.search(r"Estimated cost: (\$\d+\.\d{4}) \(demo prices\)", demo.stdout).group(1)
    assert f"Estimated cost: {summary_cost} (the run's prices)" in usage.stdout


def test_pipeable_outputs_and_errors(tmp_path):
    demo = kaizen("demo", "--yes", "--no-workflow", "--agent-id", "piped", cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr
    newest = checkpoint_ids(f"sqlite:///{tmp_path}/.kaizen/state.db", "piped")[0]
    shown = kaizen("checkpoints", "show", newest, cwd=tmp_path)
    assert json.loads(shown.stdout)["checkpoint_id"] == newest
    lines = kaizen("audit", "piped", "--format", "jsonl", cwd=tmp_path).stdout.splitlines()
    assert [json.loads(line)["tool_name"] for line in lines] == ["Write", "Read", "Bash", "Write"]
    rows = list(csv.DictReader(io.StringIO(kaizen("audit", "piped", "--format", "csv", cwd=tmp_path).stdout)))
    assert [row["tool_name"] for row in rows] == ["Write", "Read", "Bash", "Write"]
    export = kaizen("export", "piped", cwd=tmp_path)
    (tmp_path / "piped.json").write_text(export.stdout)
    imported = kaizen("import", "piped.json", "--store", "sqlite:///copy.db", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert kaizen("audit", "piped", "--format", "jsonl", "--store", "sqlite:///copy.db", cwd=tmp_path).stdout == \
        "\n".join(lines) + "\n"
    # errors: one line on stderr, exit 1, no traceback
    for args in (["audit", "ghost"], ["checkpoints", "show", "ckpt_000000000000"],
                 ["audit", "piped", "--since", "soon"], ["audit", "piped", "--store", "nope://x"],
                 ["usage", "piped", "--store", "sqlite:///missing.db"]):
        failed = kaizen(*args, cwd=tmp_path)
        assert failed.returncode == 1, (args, failed.stdout, failed.stderr)
        assert failed.stdout == "" and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1 and failed.stderr.startswith("error: "), failed.stderr


def test_damaged_store_fallback_and_audit_verify(tmp_path):
    assert kaizen("demo", "--yes", "--no-workflow", "--agent-id", "t", cwd=tmp_path).returncode == 0
    db_path = tmp_path / ".kaizen" / "state.db"
    store = f"sqlite:///{db_path}"
    ids = checkpoint_ids(store, "t")
    clean = kaizen("audit", "verify", "t", cwd=tmp_path)
    assert clean.returncode == 0 and clean.stdout.startswith("ok: 4 approval records and ")

    # a damaged newest checkpoint: read commands show the newest intact one, say so in one line, and
    # audit exits with the tamper code
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE checkpoints SET step_number = step_number + 1 WHERE checkpoint_id = ?", (ids[0],))
    audit = kaizen("audit", "t", "--format", "jsonl", cwd=tmp_path)
    assert audit.returncode == 3
    assert [json.loads(line)["tool_name"] for line in audit.stdout.splitlines()] == ["Write", "Read", "Bash", "Write"]
    warning = audit.stderr.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("warning: agent t is damaged: 1 checkpoint(s)"), warning
    assert ids[0] in warning[0] and "Traceback" not in audit.stderr
    verify = kaizen("audit", "verify", "t", cwd=tmp_path)
    assert verify.returncode == 3 and verify.stdout == ""
    assert any(line.startswith(f"tampered: checkpoint '{ids[0]}'") for line in verify.stderr.splitlines())
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE checkpoints SET step_number = step_number - 1 WHERE checkpoint_id = ?", (ids[0],))

    # an approval flipped behind kaizen's back: verify names the record
    with sqlite3.connect(db_path) as db:
        (data,) = db.execute("SELECT data FROM records WHERE stream = 0 AND seq = 2").fetchone()
        assert b'"approved":true' in data
        db.execute("UPDATE records SET data = ? WHERE stream = 0 AND seq = 2",
                   (data.replace(b'"approved":true', b'"approved":false'),))
    verify = kaizen("audit", "verify", "t", cwd=tmp_path)
    assert verify.returncode == 3 and verify.stdout == ""
    assert any(line.startswith("tampered: record 2 of lineage lin_") for line in verify.stderr.splitlines())
    # the forged "denied" never shows up as if it were genuine
    audit = kaizen("audit", "t", "--denied", "--format", "jsonl", cwd=tmp_path)
    assert audit.returncode == 3 and audit.stdout == ""
    assert "damaged" in audit.stderr
