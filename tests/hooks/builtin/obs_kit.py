"""One real agent run for the built-in hook tests: scripted model, real tools, SQLite store.

The run carries secrets where users' runs do: in the inputs, in flat and nested tool
arguments, and deep inside a long argument that any writer must cut. No hook may let one
through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.hooks import HookManager
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import Tool, builtin_tools

API_KEY = "sk-live-OBSERVABILITYSECRET0123456789"
DB_PASSWORD = "hunter2-Nested-Password-77"
LATE_TOKEN = "ghp_LateTokenAfterTheCut0123456789abcdef"
SECRETS = (API_KEY, DB_PASSWORD, LATE_TOKEN, "hunter2")
PRICES = {"tools": {"deploy": 0.25}, "models": {"m-1": {"input_per_million": 1000.0, "output_per_million": 2000.0}}}


class Task(Signature):
    """Do the task."""

    task: str = InputField(description="the task")
    result: str = OutputField(description="what was done")


def deploy_tool() -> Tool:
    def deploy(config: dict[str, Any], notes: str = "") -> str:
        return f"deployed {config['db']['host']}"

    return Tool("deploy", "Deploy with a config", {
        "type": "object", "properties": {"config": {"type": "object"}, "notes": {"type": "string"}},
        "required": ["config"]}, "side_effect", deploy)


def script() -> list[Any]:
    """Cycle 1: Write (approved) and Read of a missing file (an error); cycle 2: deploy with a
    nested password and a long note ending in a token (denied once, then approved); cycle 3: answer."""
    long_notes = "x" * 6000 + f" token={LATE_TOKEN}"
    deploy_args = {"config": {"db": {"host": "db1", "password": DB_PASSWORD,
                                     "url": f"postgres://app:{DB_PASSWORD}@db1/app"}}, "notes": long_notes}
    return [
        {"content": "", "tool_calls": [{"name": "Write", "arguments": {"path": "a.txt", "content": f"key {API_KEY}"}},
                                       {"name": "Read", "arguments": {"path": "missing.txt"}}],
         "usage": {"input_tokens": 120, "output_tokens": 30}},
        {"content": "", "tool_calls": [{"name": "deploy", "arguments": deploy_args},
                                       {"name": "deploy", "arguments": deploy_args}],
         "usage": {"input_tokens": 200, "output_tokens": 40}},
        {"content": "all done", "usage": {"input_tokens": 260, "output_tokens": 12}},
    ]


def approver() -> Any:
    answers = iter([True, True, False, True])  # Write, Read, first deploy denied, second approved

    def decide(request: Any) -> bool:
        return next(answers, True)

    return decide


def make_agent(tmp_path: Path, hooks: HookManager, *, agent_id: str = "obs-agent", steps: list[Any] | None = None,
               extra_tools: list[Tool] | None = None) -> BaseAutonomousAgent:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    config = AutonomousConfig(llm_provider="scripted", model="m-1", storage=f"sqlite:///{tmp_path}/state.db",
                              workdir=str(workdir), approval_policy="ask", prices=PRICES,
                              on_denial="continue")
    tools = [*builtin_tools(str(workdir)), deploy_tool(), *(extra_tools or [])]
    return BaseAutonomousAgent(config, Task(), provider=ScriptedProvider(steps if steps is not None else script()),
                               tools=tools, hook_manager=hooks, approval_callback=approver(), agent_id=agent_id)


def run_agent(tmp_path: Path, hooks: HookManager, **kwargs: Any) -> tuple[BaseAutonomousAgent, Any]:
    agent = make_agent(tmp_path, hooks, **kwargs)
    result = agent.run(task=f"ship it with api_key={API_KEY}")
    return agent, result


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret[:8]}... leaked"
