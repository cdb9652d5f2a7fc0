"""Shared helpers for the autonomous-agent loop tests (tests/agent/).

Everything here builds *real* parts: a ScriptedProvider, real tools confined to a
temporary workdir and a real SQLite checkpoint store, so the tests exercise what
a user actually runs.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.hooks import HookEvent, HookManager
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature


class TaskSignature(Signature):
    """Complete the task."""

    task: str = InputField(description="the task to perform")
    result: str = OutputField(description="what was done")


class ReportSignature(Signature):
    """Write a short report."""

    task: str = InputField(description="the task")
    summary: str = OutputField(description="one-line summary")
    score: int = OutputField(description="a score from 0 to 10")


def call(name: str, arguments: dict[str, Any] | None = None, call_id: str | None = None) -> dict[str, Any]:
    """One scripted model turn asking for a single tool call."""
    entry: dict[str, Any] = {"name": name, "arguments": arguments or {}}
    if call_id is not None:
        entry["id"] = call_id
    return {"content": "", "tool_calls": [entry]}


def calls(*entries: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    """One scripted model turn asking for several tool calls."""
    return {"content": "", "tool_calls": [{"name": n, "arguments": a} for n, a in entries]}


def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/state.db"


def make_config(tmp_path: Path, **overrides: Any) -> AutonomousConfig:
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    options: dict[str, Any] = dict(
        llm_provider="scripted", model="m", storage=db_url(tmp_path), workdir=str(workdir),
        approval_policy="allow_all",
    )
    options.update(overrides)
    return AutonomousConfig(**options)


def make_agent(tmp_path: Path, script: list[Any] | None = None, *, signature: Signature | None = None,
               provider: Any = None, **kwargs: Any) -> BaseAutonomousAgent:
    """An agent on a SQLite store in ``tmp_path``; config overrides go in ``kwargs``."""
    agent_kwargs = {k: kwargs.pop(k) for k in ("tools", "hook_manager", "approval_callback", "agent_id")
                    if k in kwargs}
    config = make_config(tmp_path, **kwargs)
    if provider is None:
        provider = ScriptedProvider(script if script is not None else ["done"])
    return BaseAutonomousAgent(config, signature if signature is not None else TaskSignature(),
                               provider=provider, **agent_kwargs)


def fresh_manager(tmp_path: Path) -> SyncStateManager:
    """A second, independent SyncStateManager on the same SQLite file (what another process would see)."""
    return SyncStateManager(db_url(tmp_path))


def load_all_checkpoints(manager: SyncStateManager, agent_id: str) -> list[Any]:
    """Load every checkpoint of ``agent_id`` (each load verifies checksums and hash chains)."""
    metas = manager.list_checkpoints(agent_id)
    assert metas, f"agent {agent_id} has no checkpoints"
    return [manager.load_checkpoint(meta.checkpoint_id) for meta in metas]


class EventRecorder:
    """Registers a recorder on every hook event; ``events`` lists (event, data) in firing order."""

    def __init__(self, hooks: HookManager, only: tuple[str, ...] | None = None) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        for event in HookEvent:
            if only is None or event.value in only:
                hooks.register(event, self._make(event.value))

    def _make(self, name: str) -> Any:
        def record(context: Any) -> None:
            with self._lock:
                self.events.append((name, dict(context.data)))
        record.__name__ = f"record_{name}"
        return record

    def names(self, exclude_checkpoints: bool = False) -> list[str]:
        return [n for n, _ in self.events if not (exclude_checkpoints and "checkpoint" in n)]


class CountingApprover:
    """An approval callback answering from a list (the last answer repeats), counting calls."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers) or [True]
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        index = min(len(self.requests) - 1, len(self.answers) - 1)
        return self.answers[index]

    @property
    def count(self) -> int:
        return len(self.requests)


def tool_messages(agent: BaseAutonomousAgent) -> dict[str, str]:
    """call id -> the observation text the model got for it."""
    return {m["tool_call_id"]: m["content"] for m in agent.conversation_history if m["role"] == "tool"}


TAG = re.compile(r"call_\d+")


def tags_in(text: str) -> list[str]:
    return TAG.findall(text)
