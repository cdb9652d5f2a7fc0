"""kaizen-state: durable, auditable state for autonomous AI agents.

Start at ``kaizen.agents.autonomous.base`` (``BaseAutonomousAgent``, ``AutonomousConfig``) and
``kaizen.core.autonomy.state`` (``AgentState``, ``StateManager``); the ``kaizen`` command runs
a demo and inspects stores.
"""

from __future__ import annotations


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed package's metadata on first use: importing
    ``kaizen`` (the first thing the ``kaizen`` command does) stays cheap."""
    if name != "__version__":
        raise AttributeError(f"module 'kaizen' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kaizen-state")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0"
