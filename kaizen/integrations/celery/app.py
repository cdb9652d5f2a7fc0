"""``register_agent_task(app, build_agent)``: the Celery task that runs or resumes an agent by id.

Delivery guarantees come from three settings, set here so nobody has to remember them:
``acks_late`` (the message is acknowledged only after the run returns, so a worker that dies
mid-run leaves it unacknowledged and the broker redelivers it), ``task_reject_on_worker_lost``
(a prefork child killed mid-run requeues the message instead of acknowledging it) and a
prefetch of one (a worker holds no queued runs it is not running, so a crash strands none).
The agent's lease then makes redelivery safe: a duplicate that finds the agent held by a live
worker retries after the lease's remaining time instead of running it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from .errors import AgentBusyError, CeleryNotInstalledError
from .worker import AgentFactory, resolve_factory, run_queued, worker_id_for

DEFAULT_TASK_NAME = "kaizen.run_agent"
_MIN_RETRY_DELAY = 0.25  # seconds; keeps a busy agent's duplicates from spinning


def configure_app(app: Any) -> None:
    """Worker settings the at-least-once delivery of agent runs depends on (JSON messages only)."""
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
    )


def retry_delay(busy: AgentBusyError, now: float | None = None) -> float:
    """Seconds until the holder's lease would run out (plus a little jitter), at most one TTL."""
    lease_ttl = busy.lease_ttl
    remaining = busy.expires_at - (time.time() if now is None else now) if busy.expires_at else lease_ttl
    return min(max(remaining, 0.0) + _MIN_RETRY_DELAY + random.uniform(0.0, 0.25), max(lease_ttl, _MIN_RETRY_DELAY))


def register_agent_task(
    app: Any,
    build_agent: AgentFactory | str,
    *,
    name: str = DEFAULT_TASK_NAME,
    lease_ttl: float | None = None,
    max_busy_retries: int | None = None,
    configure: bool = True,
    close_store: bool = True,
) -> Any:
    """Register on ``app`` the task ``name(agent_id, inputs=None)`` and return it.

    ``build_agent(agent_id)`` (or its dotted path ``"pkg.module:function"``, imported on the
    worker) returns the ``BaseAutonomousAgent`` with its tools, provider and store; the message
    carries only the agent id and the run's inputs (JSON). ``lease_ttl`` overrides the agent's
    ``config.lease_ttl``. A delivery that finds the agent held by another worker retries after
    that lease's remaining time, ``max_busy_retries`` times (None: until the holder finishes or
    its lease expires). ``close_store=False`` keeps the agent's store open after each run (for a
    factory that shares one ``state_manager`` among its agents). The task returns
    ``RunOutcome.to_dict()``.
    """
    try:
        from celery import Task
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise CeleryNotInstalledError() from exc
    if configure:
        configure_app(app)
    factory_ref: dict[str, AgentFactory] = {}

    def factory() -> AgentFactory:
        if "built" not in factory_ref:  # a dotted path is imported on the worker, at first use
            factory_ref["built"] = resolve_factory(build_agent)
        return factory_ref["built"]

    def run_agent(self: Task, agent_id: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
        worker_id = worker_id_for(self.request.id)
        try:
            return run_queued(factory(), agent_id, inputs, worker_id=worker_id, lease_ttl=lease_ttl,
                              close_store=close_store).to_dict()
        except AgentBusyError as busy:
            raise self.retry(exc=busy, countdown=retry_delay(busy), max_retries=max_busy_retries) from busy

    decorate: Callable[[Callable[..., Any]], Any] = app.task(
        name=name, bind=True, shared=False, acks_late=True, reject_on_worker_lost=True, serializer="json",
        max_retries=max_busy_retries, typing=False)
    return decorate(run_agent)
