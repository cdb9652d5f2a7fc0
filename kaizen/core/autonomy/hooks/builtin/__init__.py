"""Built-in hooks (the original's ``kaizen.core.autonomy.hooks.builtin``).

``LoggingHook``, ``MetricsHook`` and ``TracingHook`` need the ``observability`` extra
(structlog, prometheus-client, opentelemetry); they are imported on first use, and a
missing library is named with the extra to install: ``pip install 'kaizen-state[observability]'``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .audit_hook import AuditHook, JsonLinesAuditLog
from .cost_tracking_hook import CostTrackingHook
from .performance_profiler_hook import PerformanceProfilerHook

if TYPE_CHECKING:
    from .logging_hook import LoggingHook
    from .metrics_hook import MetricsHook
    from .tracing_hook import TracingHook

__all__ = ["AuditHook", "CostTrackingHook", "JsonLinesAuditLog", "LoggingHook", "MetricsHook",
           "PerformanceProfilerHook", "TracingHook"]

OPTIONAL = {"LoggingHook": "logging_hook", "MetricsHook": "metrics_hook", "TracingHook": "tracing_hook"}


def __getattr__(name: str) -> Any:
    module = OPTIONAL.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted(__all__)
