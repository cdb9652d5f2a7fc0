"""Agents on Celery workers across machines, with one PostgreSQL store.

``register_agent_task(app, build_agent)`` registers a task that runs or resumes an agent by
id under its lease (late acks, redelivery on worker loss, a duplicate never runs an agent a
second worker holds); ``task.delay(agent_id, {"task": ...})`` queues a run. See docs/scaling.md.
"""

from __future__ import annotations

from .app import DEFAULT_TASK_NAME, configure_app, register_agent_task, retry_delay
from .errors import (
    AgentBusyError,
    AgentFactoryError,
    AgentMessageError,
    CeleryIntegrationError,
    CeleryNotInstalledError,
)
from .worker import AgentFactory, RunOutcome, resolve_factory, run_queued, worker_id_for

__all__ = [
    "DEFAULT_TASK_NAME",
    "AgentBusyError",
    "AgentFactory",
    "AgentFactoryError",
    "AgentMessageError",
    "CeleryIntegrationError",
    "CeleryNotInstalledError",
    "RunOutcome",
    "configure_app",
    "register_agent_task",
    "resolve_factory",
    "retry_delay",
    "run_queued",
    "worker_id_for",
]
