"""Real agents on real stores for the console's tests (no tests here; imported by name).

A deferred run is the demo's kind of agent (scripted provider, real tools in a workspace,
a SQLite store) with ``approval_mode="defer"``: it stops at the first call that needs a
person, with status ``awaiting_approval``, exactly as a user's run would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.providers import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry, builtin_tools

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_QUOTES = "\"'><img src=x onerror=alert(1)>"
SECRET = "sk-live-abcdefghijklmnopqrstuvwx0123"  # looks like an API key: must never be shown
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PRICES = {"tools": {"LLM": 0.002, "Write": 0.001, "Bash": 0.0005},
          "models": {"scripted": {"input_per_million": 0.15, "output_per_million": 0.60}}}


class Task(Signature):
    """Write the file the task names."""

    task: str = InputField(description="what to do")  # type: ignore[assignment]
    summary: str = OutputField(description="what was done")  # type: ignore[assignment]


def hostile_script() -> list[Any]:
    """A model that writes a file whose name and content carry markup and a secret."""
    return [
        {"content": f"Writing the note {XSS_SCRIPT}",
         "tool_calls": [{"id": "call_write", "name": "Write", "arguments": {
             "path": "note.md", "content": f"{XSS_SCRIPT}\n{XSS_QUOTES}\napi_key={SECRET}\n"}}]},
        "Done: note.md is written.",
    ]


def deferred_agent(store_url: str, workdir: Path, agent_id: str, script: list[Any] | None = None,
                   **config: Any) -> BaseAutonomousAgent:
    """An agent whose side-effect calls wait for a person (build it again the same way to resume)."""
    workdir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = dict(llm_provider="scripted", model="scripted", storage=store_url, workdir=str(workdir),
                                   approval_policy="allow_safe", approval_mode="defer", checkpoint_frequency=1,
                                   max_cycles=6, prices=PRICES)
    options.update(config)
    return BaseAutonomousAgent(AutonomousConfig(**options), Task(), agent_id=agent_id,
                               provider=ScriptedProvider(script if script is not None else hostile_script()),
                               tools=ToolRegistry(builtin_tools(workdir)))


def run_deferred(store_url: str, workdir: Path, agent_id: str, resume: bool = False) -> Any:
    agent = deferred_agent(store_url, workdir, agent_id)
    try:
        return agent.run(resume=True) if resume else agent.run(task="write note.md")
    finally:
        agent.state_manager.close()




# --- a real console server and browser -----------------------------------------------------------
CHROMIUM = os.environ.get("KAIZEN_CHROMIUM", "/usr/bin/chromium")


def browser_error() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run does)"
    return None


def require_browser() -> None:
    """Skip without a browser, with the reason; under CI=true that is a failure instead."""
    error = browser_error()
    if error is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{error} (CI=true: the browser tests may not be skipped)")
    pytest.skip(error)


def default_sigint() -> None:
    """For a child process: Ctrl-C handled as usual, even when a CLI test before this one left the
    test process ignoring SIGINT (an ignored signal stays ignored across exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def console_process(store_url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``kaizen ui --port 0`` in its own process; yields the URL it prints (stopped with Ctrl-C)."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", **(env or {})}
    environment.pop("KAIZEN_STORE", None)
    process = subprocess.Popen([sys.executable, "-m", "kaizen.cli", "ui", "--store", store_url, "--port", "0", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               preexec_fn=default_sigint)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"(http://\S+)", line)
        if found is None:
            process.kill()
            raise AssertionError(f"kaizen ui printed {line!r}; stderr: {process.stderr.read() if process.stderr else ''}")
        yield found.group(1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_in_process(store_url: str, workdir: Path, agent_id: str, resume: bool = False) -> str:
    """A deferred run (or its resumption) in a separate Python process; returns its final status."""
    environment = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{HERE}"}
    done = subprocess.run([sys.executable, str(HERE / "ui_helpers.py"), store_url, str(workdir), agent_id,
                           *(["resume"] if resume else [])], capture_output=True, text=True, env=environment,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


if __name__ == "__main__":  # python ui_helpers.py STORE_URL WORKDIR AGENT [resume]: a run in its own process
    result = run_deferred(sys.argv[1], Path(sys.argv[2]), sys.argv[3], resume=sys.argv[4:] == ["resume"])
    print(result.status)
