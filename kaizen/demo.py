"""The demo agent: a small autonomous run, offline, on the embedded store.

It plays a fixed script through the scripted provider, so it needs no model
server, yet everything else is real: files are written and read in a workspace,
Bash runs, approvals are asked (or auto-answered), a Kailash workflow runs when
the SDK is installed, and every step is checkpointed in SQLite. Given the URL of
an OpenAI-compatible server (llama.cpp, vLLM, LM Studio, Ollama's /v1), a real
model plays the same task with the same tools instead of the script.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.hooks import HookManager
from kaizen.core.autonomy.permissions import APPROVE_ALL, ApprovalCallback, ApprovalMode
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers import NamedTool, OpenAIProvider, ScriptedProvider, ToolChoice
from kaizen.providers.wire import normalize_base_url
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry, builtin_tools

DEMO_MODEL = "demo-scripted"
DEMO_PRICES = {
    "tools": {"LLM": 0.002, "Bash": 0.0005, "word_stats": 0.0001, "Write": 0.0, "Read": 0.0},
    "models": {DEMO_MODEL: {"input_per_million": 0.15, "output_per_million": 0.60}},
}
NOTES = (
    "# Field notes\n\n"
    "Checkpoints store each approval record once; a save writes only what changed.\n"
    "A resumed agent remembers every approve-all and deny-all decision.\n"
)


class ReportTask(Signature):
    """Take notes in the workspace, measure them, and write a short report."""

    # the fields are declared as the signature API documents them (a descriptor in a str slot)
    task: str = InputField(description="What to report on")  # type: ignore[assignment]
    summary: str = OutputField(description="One-line summary of the report")  # type: ignore[assignment]


def has_kailash() -> bool:
    return importlib.util.find_spec("kailash") is not None


def demo_script(with_workflow: bool) -> list[Any]:
    """What the scripted model says, cycle by cycle."""
    script: list[Any] = [
        {"content": "I will write the notes first.",
         "tool_calls": [{"name": "Write", "arguments": {"path": "notes.md", "content": NOTES}}]},
        {"content": "Let me read them back.", "tool_calls": [{"name": "Read", "arguments": {"path": "notes.md"}}]},
    ]
    if with_workflow:
        script.append({"content": "Counting words with the Kailash workflow.",
                       "tool_calls": [{"name": "word_stats", "arguments": {"text": NOTES}}]})
    script += [
        {"content": "Checking the workspace.", "tool_calls": [{"name": "Bash", "arguments": {"command": "wc -l notes.md && ls"}}]},
        {"content": "Writing the report.",
         "tool_calls": [{"name": "Write", "arguments": {"path": "report.md", "content": (
             "# Report\n\nnotes.md holds 4 lines about checkpoints and approvals.\n")}}]},
        "Wrote report.md: the notes describe O(delta) checkpoints and remembered approvals.",
    ]
    return script


def word_stats_workflow() -> Any:
    """A two-node Kailash workflow: split the text, then count and find the longest word."""
    from kailash.workflow.builder import WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "split", {"code": "result = {'words': text.split()}"})
    builder.add_node("PythonCodeNode", "stats", {"code": (
        "result = {'count': len(data['words']), 'longest': max(data['words'], key=len)}")})
    builder.add_connection("split", "result", "stats", "data")
    return builder


def add_workflow_step(agent: BaseAutonomousAgent) -> None:
    """Offer the Kailash word-count workflow to the demo agent as the ``word_stats`` tool."""
    logging.getLogger("kailash").setLevel(logging.ERROR)
    agent.add_workflow_tool(
        "word_stats", "Count the words of a text with a Kailash workflow", word_stats_workflow(),
        {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        danger="read_only",
    )


def auto_approver() -> ApprovalCallback:
    """``--yes``: approve every tool for the rest of the run ("all"), as a user in a hurry would."""
    return lambda request: APPROVE_ALL


def model_server(url: str, model_name: str | None = None) -> tuple[str, str]:
    """The OpenAI base URL and model name of a real server: ``/v1`` is added to a bare
    ``http://host:port``, and without ``model_name`` the first model the server lists is used."""
    base = normalize_base_url(url, "--model")
    if not urlsplit(base).path:
        base += "/v1"
    if model_name:
        return base, model_name
    with OpenAIProvider(base_url=base, timeout=10, max_retries=1) as provider:
        served = provider.models()
    if not served:
        raise ValueError(f"the server at {base} lists no model under /models; name one with --model-name")
    return base, served[0]


def build_demo_agent(store: str | None, workdir: Path | None = None, agent_id: str | None = None,
                     approval_callback: ApprovalCallback | None = None,
                     with_workflow: bool | None = None, *, worker_id: str | None = None,
                     temporary_workdir: bool | None = None, model_url: str | None = None,
                     model_name: str | None = None, tool_choice: ToolChoice | None = None,
                     approval_mode: ApprovalMode = "inline") -> BaseAutonomousAgent:
    """The demo agent; with the same ``agent_id``/``workdir`` it is also how a demo run is resumed.

    ``worker_id``: the agent holds a lease while it runs, so a second process cannot run it
    at the same time. Without ``workdir`` a temporary one is made (``metadata["cli"]`` says so).
    ``model_url`` (and ``model_name``, see :func:`model_server`): a real model on an
    OpenAI-compatible server plays the demo instead of the script; ``tool_choice`` is sent with
    each of its calls. ``approval_mode="defer"``: calls that need approval wait for
    ``kaizen approve``/``kaizen deny`` instead of asking ``approval_callback``.
    """
    with_workflow = has_kailash() if with_workflow is None else with_workflow
    if temporary_workdir is None:
        temporary_workdir = workdir is None
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="kaizen-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = dict(max_cycles=10, storage=store, workdir=str(workdir), approval_policy="allow_safe",
                                  checkpoint_frequency=1, worker_id=worker_id, tool_choice=tool_choice,
                                  approval_mode=approval_mode)
    provider: Any = None  # a real model: the provider the config describes
    if model_url is not None:
        base_url, model_name = model_server(model_url, model_name)
        config = AutonomousConfig(llm_provider="openai", model=model_name, base_url=base_url,
                                  prices={"tools": DEMO_PRICES["tools"]}, **common)
    else:
        config = AutonomousConfig(llm_provider="scripted", model=DEMO_MODEL, prices=DEMO_PRICES, **common)
        provider = ScriptedProvider(demo_script(with_workflow))
    hooks = HookManager()
    manager = SyncStateManager.from_config(config)
    manager.hook_manager = hooks  # checkpoint events reach the demo's progress output
    agent = BaseAutonomousAgent(
        config, ReportTask(), agent_id=agent_id or f"demo-{secrets.token_hex(4)}",
        state_manager=manager,
        provider=provider, tools=ToolRegistry(builtin_tools(workdir)),
        hook_manager=hooks, approval_callback=approval_callback,
    )
    if with_workflow:
        add_workflow_step(agent)
    agent.metadata["cli"] = {"kind": "demo", "workdir": str(workdir), "with_workflow": with_workflow,
                             "temporary_workdir": temporary_workdir}
    if approval_mode != "inline":  # so `kaizen resume` leaves the calls to `kaizen approve` as well
        agent.metadata["cli"]["approval_mode"] = approval_mode
    if model_url is not None:  # so `kaizen resume` asks the same server and model
        agent.metadata["cli"].update(model_url=config.base_url, model_name=config.model,
                                     tool_choice=_plain(config.tool_choice))
    return agent


def _plain(choice: ToolChoice | None) -> str | dict[str, str] | None:
    """A tool choice as JSON, the way ``AutonomousConfig`` reads it back."""
    return {"name": choice.name} if isinstance(choice, NamedTool) else choice
