"""Errors of the Celery integration; each names the agent (and the fix) it is about."""

from __future__ import annotations

from datetime import datetime, timezone

from kaizen.integrations.errors import IntegrationError, MissingExtraError


class CeleryIntegrationError(IntegrationError):
    """Base class of the errors raised by ``kaizen.integrations.celery``."""


class CeleryNotInstalledError(CeleryIntegrationError, MissingExtraError):
    """The optional ``celery`` package is needed but not installed."""

    needs = 'the Celery integration needs the "celery" package'
    extra = name_of_module = "celery"


class AgentFactoryError(CeleryIntegrationError):
    """The agent factory given at app setup cannot be imported or built a wrong agent."""


class AgentMessageError(CeleryIntegrationError):
    """A queued message is not ``(agent_id, inputs)`` with ``inputs`` a JSON object."""


class AgentBusyError(CeleryIntegrationError):
    """Another worker holds the agent's lease: this delivery waits and retries instead of running it.

    ``holder`` is the lease holder's worker id (``host:pid:task``); ``expires_at`` (epoch seconds)
    is when its lease runs out unless that worker renews it (0 when unknown); ``lease_ttl`` the
    agent's lease time to live, the longest a retry waits.
    """

    def __init__(self, agent_id: str, holder: str, expires_at: float, reason: str = "", *,
                 lease_ttl: float = 30.0) -> None:
        until = datetime.fromtimestamp(expires_at, timezone.utc).isoformat(timespec="seconds") if expires_at else "?"
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"agent {agent_id!r} is running in worker {holder} (lease until {until}){detail}; this delivery "
            "will retry after the lease expires or the run completes. If that worker is gone, its lease "
            "expires on its own after the agent's lease_ttl")
        self.agent_id = agent_id
        self.holder = holder
        self.expires_at = expires_at
        self.lease_ttl = lease_ttl
