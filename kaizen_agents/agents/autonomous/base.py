"""``kaizen_agents.agents.autonomous.base``: where the original moved ``BaseAutonomousAgent``.

The same classes as ``kaizen.agents.autonomous.base`` (not copies), so ``isinstance`` checks
and subclasses work whichever path a program imports.
"""

from __future__ import annotations

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent
from kaizen.agents.autonomous.result import RunResult

__all__ = ["AutonomousConfig", "BaseAutonomousAgent", "RunResult"]
