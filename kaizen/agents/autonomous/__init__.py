"""The autonomous agent: ``BaseAutonomousAgent`` and everything its public surface names."""

from __future__ import annotations

from .base import BaseAutonomousAgent
from .config import AutonomousConfig, OnDenial, ProviderName
from .errors import AgentError, ConfigError
from .loop import AgentLoop, LoopHost
from .result import RunResult, RunStatus
from .runtime import RunState
from .workers import AgentRunningError, WorkerInfo, default_worker_id

__all__ = [
    "AgentError",
    "AgentLoop",
    "AgentRunningError",
    "AutonomousConfig",
    "BaseAutonomousAgent",
    "ConfigError",
    "LoopHost",
    "OnDenial",
    "ProviderName",
    "RunResult",
    "RunState",
    "RunStatus",
    "WorkerInfo",
    "default_worker_id",
]
