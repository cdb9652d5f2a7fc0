"""The worker side of a queued agent run, free of Celery so it can be read and tested alone.

One delivery of ``(agent_id, inputs)`` builds the agent with the user's factory, takes the
agent's lease, and calls ``run(resume=True, **inputs)``: the first delivery starts the run,
a redelivery after a crash continues it from its checkpoints, and a delivery for a run that
already completed returns the stored result without executing anything. The lease is taken
*before* the agent looks at its checkpoints, so a duplicate cannot slip between "no checkpoint
yet" and "start a new run" while another worker finishes the same agent.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kaizen.core.autonomy.state.errors import CheckpointConflictError, LeaseHeldError

from .errors import AgentBusyError, AgentFactoryError, AgentMessageError

AgentFactory = Callable[[str], Any]
"""``build_agent(agent_id) -> BaseAutonomousAgent``: tools and providers live here, never in a message."""


@dataclass(frozen=True)
class RunOutcome:
    """What the task returns (JSON-safe): how the agent's run ended and who ran it."""

    agent_id: str
    status: str
    run_id: str
    worker_id: str
    outputs: dict[str, Any] = field(default_factory=dict)
    checkpoint_id: str | None = None
    cycles: int = 0
    tool_calls: int = 0
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def worker_id_for(task_id: str | None) -> str:
    """``host:pid:task``: names the machine and process in a "held by" message, and differs
    for every delivery so a lease is never mistaken for its own predecessor's."""
    return f"{socket.gethostname()}:{os.getpid()}:{task_id or 'local'}"


def resolve_factory(factory: AgentFactory | str) -> AgentFactory:
    """A callable as given, or the one a dotted path (``pkg.module:name`` or ``pkg.module.name``) names."""
    if callable(factory):
        return factory
    if not isinstance(factory, str) or not factory.strip():
        raise AgentFactoryError(f"the agent factory must be a callable or a dotted path, got {factory!r}")
    module_name, _, attr = factory.partition(":") if ":" in factory else factory.rpartition(".")
    if not module_name or not attr:
        raise AgentFactoryError(f"agent factory {factory!r}: write it as 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentFactoryError(f"agent factory {factory!r}: cannot import module {module_name!r} ({exc}); "
                                "make it importable on every worker (PYTHONPATH or an installed package)") from exc
    built = getattr(module, attr, None)
    if not callable(built):
        raise AgentFactoryError(f"agent factory {factory!r}: module {module_name!r} has no callable {attr!r}")
    return built  # type: ignore[no-any-return]


def check_message(agent_id: object, inputs: object) -> dict[str, Any]:
    """The inputs as a dict, or ``AgentMessageError`` naming what is wrong with the message."""
    if not isinstance(agent_id, str) or not agent_id:
        raise AgentMessageError(f"a queued agent run needs the agent id as a non-empty str, got {agent_id!r}")
    if inputs is None:
        return {}
    if not isinstance(inputs, Mapping) or not all(isinstance(key, str) for key in inputs):
        raise AgentMessageError(f"agent {agent_id!r}: inputs must be a JSON object (dict with str keys), "
                                f"got {type(inputs).__name__}")
    return dict(inputs)


def build(factory: AgentFactory, agent_id: str) -> Any:
    """The factory's agent for ``agent_id``, checked to be that agent."""
    from kaizen.agents.autonomous.base import BaseAutonomousAgent

    agent = factory(agent_id)
    if not isinstance(agent, BaseAutonomousAgent):
        raise AgentFactoryError(f"the agent factory returned {type(agent).__name__} for agent {agent_id!r}; "
                                "it must return a BaseAutonomousAgent built with agent_id=<the id it was given>")
    if agent.agent_id != agent_id:
        raise AgentFactoryError(f"the agent factory was asked for agent {agent_id!r} but built {agent.agent_id!r}; "
                                "pass the id through: BaseAutonomousAgent(config, signature, agent_id)")
    return agent


def run_queued(factory: AgentFactory, agent_id: str, inputs: Mapping[str, Any] | None, *, worker_id: str,
               lease_ttl: float | None = None, close_store: bool = True) -> RunOutcome:
    """Run or resume ``agent_id`` under its lease; ``AgentBusyError`` when another worker holds it.

    ``lease_ttl`` overrides the agent's ``config.lease_ttl`` (seconds without renewal before
    another worker may take a crashed worker's agent over). ``close_store`` closes the agent's
    store afterwards: an agent built from ``config.storage`` opens its own connection pool, and a
    long-lived worker would otherwise keep one per run it ever did. A factory that passes one
    shared ``state_manager`` to every agent should say ``close_store=False``.
    """
    checked = check_message(agent_id, inputs)
    agent = build(factory, agent_id)
    try:
        return _run_under_lease(agent, agent_id, checked, worker_id, lease_ttl)
    finally:
        if close_store:
            agent.state_manager.close()


def _run_under_lease(agent: Any, agent_id: str, checked: dict[str, Any], worker_id: str,
                     lease_ttl: float | None) -> RunOutcome:
    ttl = float(lease_ttl if lease_ttl is not None else agent.config.lease_ttl)
    # The agent's own run() renews this same lease (same worker id) while it runs.
    agent.config = dataclasses.replace(agent.config, worker_id=worker_id, lease_ttl=ttl)
    try:
        with agent.state_manager.claim(agent_id, worker_id, ttl, keepalive=False):
            result = agent.run(resume=True, **checked)
            if result.status == "failed":
                # A run that lost its lease (a pause longer than the TTL, and another worker took the
                # agent over) ends "failed": claiming again tells that apart from a real failure.
                agent.state_manager.claim(agent_id, worker_id, ttl, keepalive=False)
    except LeaseHeldError as held:
        raise AgentBusyError(agent_id, held.holder, held.expires_at, lease_ttl=ttl) from held
    except CheckpointConflictError as conflict:  # another worker saved meanwhile: our lease was lost
        raise AgentBusyError(agent_id, "another worker", 0.0, f"lease lost: {conflict}",
                             lease_ttl=ttl) from conflict
    return RunOutcome(agent_id=result.agent_id, status=result.status, run_id=result.run_id, worker_id=worker_id,
                      outputs=dict(result.outputs), checkpoint_id=result.checkpoint_id, cycles=result.cycles,
                      tool_calls=result.tool_calls, error=result.error)
