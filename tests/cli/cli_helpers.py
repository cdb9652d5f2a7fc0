"""Shared helpers and fixtures for the end-to-end tests of the ``kaizen`` command (no tests here).

Imported by name (``from cli_helpers import ...``): a unique module name, unlike ``conftest``,
which several test directories share. ``conftest.py`` re-exports the fixtures.

Every test drives the real CLI (``click.testing.CliRunner`` on ``kaizen.cli.main``, or the
installed ``kaizen`` executable in a subprocess) against real stores: a SQLite file in
``tmp_path``, a filesystem store, and PostgreSQL in a fresh schema.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from pg import drop_schema, new_schema, require_server, store_url

from kaizen import demo
from kaizen.cli import main
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

# Wide enough that rich never folds a table cell: a value is then found on one line.
WIDE = "250"
CHECKPOINT_ID = re.compile(r"ckpt_[0-9a-f]{12}")
DEMO_TOOLS_WITH_WORKFLOW = {"LLM": 6, "Write": 2, "Read": 1, "word_stats": 1, "Bash": 1}
DEMO_TOOLS_NO_WORKFLOW = {"LLM": 5, "Write": 2, "Read": 1, "Bash": 1}
NOTES = demo.NOTES


def _scripted_report() -> str:
    for step in demo.demo_script(False):
        for call in step.get("tool_calls", []) if isinstance(step, dict) else []:
            if call["arguments"].get("path") == "report.md":
                return call["arguments"]["content"]
    raise AssertionError("the demo script writes no report.md")


REPORT = _scripted_report()


def has_kailash() -> bool:
    return importlib.util.find_spec("kailash") is not None


needs_kailash = pytest.mark.skipif(not has_kailash(), reason="kailash is not installed (pip install -e '.[kailash]')")


def invoke(*args: Any, input: str | None = None, env: dict[str, str | None] | None = None,
           columns: str = WIDE) -> Result:
    """Run ``kaizen ARGS`` in-process. A Python exception escaping the command fails the test."""
    environment: dict[str, str | None] = {"KAIZEN_STORE": None, "COLUMNS": columns}
    environment.update(env or {})
    result = CliRunner().invoke(main, [str(a) for a in args], input=input, env=environment)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"kaizen {' '.join(map(str, args))} raised {result.exception!r}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}") from result.exception
    assert "Traceback" not in result.output
    return result


def ok(*args: Any, **kwargs: Any) -> Result:
    """``invoke`` and require exit status 0."""
    result = invoke(*args, **kwargs)
    assert result.exit_code == 0, (f"kaizen {' '.join(map(str, args))} exited {result.exit_code}\n"
                                   f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def assert_one_line_error(result: Result, *fragments: str, code: int = 1) -> str:
    """The CLI's error contract: non-zero exit, one line on stderr, nothing on stdout, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert result.stdout == "", result.stdout
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def run_demo(store: str, workdir: Path, agent_id: str, *extra: str, input: str | None = None) -> Result:
    args = ["demo", "--store", store, "--workdir", str(workdir), "--agent-id", agent_id, *extra]
    if input is None and "--yes" not in extra:
        args.append("--yes")
    return ok(*args, input=input)


def read(store: str, what: Callable[[SyncStateManager], Any]) -> Any:
    """Look at a store directly (not through the CLI), closing it afterwards."""
    manager = SyncStateManager(store)
    try:
        return what(manager)
    finally:
        manager.close()


def agents(store: str) -> list[str]:
    return sorted(read(store, lambda m: m.list_agents()))


def checkpoint_metas(store: str, agent_id: str) -> list[Any]:
    return read(store, lambda m: m.list_checkpoints(agent_id))


def checkpoint_ids(store: str, agent_id: str) -> list[str]:
    return [meta.checkpoint_id for meta in checkpoint_metas(store, agent_id)]


def load(store: str, checkpoint_id: str) -> Any:
    return read(store, lambda m: m.load_checkpoint(checkpoint_id))


def latest(store: str, agent_id: str) -> Any:
    state = read(store, lambda m: m.load_latest(agent_id))
    assert state is not None, f"no checkpoint of {agent_id} in {store}"
    return state


def table_first_column(output: str) -> list[str]:
    """Values of the first column of a rich table (one row per line: the output is wide)."""
    values = []
    for line in output.splitlines():
        if line.startswith("│"):
            values.append(line.split("│")[1].strip())
    return values


def jsonl(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def agent_from_demo_output(output: str) -> str:
    match = re.search(r"^\s*kaizen audit (\S+)( --store .*)?\s*$", output, re.MULTILINE)
    assert match, output
    return match.group(1)


# --- stores -------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def pg_store():
    require_server()
    schema = new_schema()
    yield store_url(schema)
    drop_schema(schema)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory) -> dict[str, Any]:
    """One completed demo run (with the Kailash step when available), shared read-only by a module."""
    base = tmp_path_factory.mktemp("demo")
    store = f"sqlite:///{base}/state.db"
    result = run_demo(store, base / "work", "demo-shared")
    return {"store": store, "agent": "demo-shared", "workdir": base / "work", "output": result.stdout,
            "with_workflow": has_kailash()}
