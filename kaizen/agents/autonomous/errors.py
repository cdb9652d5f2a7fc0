"""Errors of the autonomous agent."""

from __future__ import annotations


class AgentError(Exception):
    """Base class of the agent's own errors."""


class ConfigError(AgentError, ValueError):
    """An ``AutonomousConfig`` value is invalid; the message names the field."""
