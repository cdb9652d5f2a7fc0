"""``kaizen_agents.agents.autonomous``: the original's path to the autonomous agent."""

from __future__ import annotations

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent

__all__ = ["AutonomousConfig", "BaseAutonomousAgent"]
