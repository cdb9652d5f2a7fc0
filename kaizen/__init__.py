"""kaizen-state: durable, auditable state for autonomous AI agents.

Start at ``kaizen.agents.autonomous.base`` (``BaseAutonomousAgent``, ``AutonomousConfig``) and
``kaizen.core.autonomy.state`` (``AgentState``, ``StateManager``); the ``kaizen`` command runs
a demo and inspects stores.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kaizen-state")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
