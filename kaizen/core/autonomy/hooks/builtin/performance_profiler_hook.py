"""``PerformanceProfilerHook``: how long each operation took, from its ``pre_`` to its ``post_`` event.

Durations come from the contexts' timestamps, so they measure the operation, not the hook.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, ClassVar

from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult


class PerformanceProfilerHook(BaseHook):
    """Latencies (ms) per operation (``tool_use``, ``agent_loop``, ``model_call`` ...), with percentiles."""

    events: ClassVar[list[HookEvent]] = list(HookEvent)

    def __init__(self) -> None:
        super().__init__(name="performance_profiler_hook")
        self._start_times: dict[str, float] = {}
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``."""
        try:
            name = context.event_type.value
            kind, _, operation = name.partition("_")
            if kind not in ("pre", "post") or not operation:
                return HookResult(success=True)
            key = f"{context.agent_id}:{operation}"
            with self._lock:
                if kind == "pre":
                    self._start_times[key] = context.timestamp
                    return HookResult(success=True, data={"operation": operation})
                started = self._start_times.pop(key, None)
                if started is None:
                    return HookResult(success=True)
                duration_ms = (context.timestamp - started) * 1000.0
                self.latencies[operation].append(duration_ms)
                return HookResult(success=True, data={
                    "operation": operation,
                    "duration_ms": duration_ms,
                    "avg_duration_ms": self._calculate_average(operation),
                    "p95_duration_ms": self._calculate_percentile(operation, 95),
                })
        except Exception as exc:
            return HookResult(success=False, error=f"{self.name}: {type(exc).__name__}: {exc}")

    def _calculate_average(self, operation: str) -> float:
        values = self.latencies.get(operation) or []
        return sum(values) / len(values) if values else 0.0

    def _calculate_percentile(self, operation: str, percentile: float) -> float:
        """Nearest-rank percentile of the recorded latencies; 0.0 when there are none."""
        values = sorted(self.latencies.get(operation) or [])
        if not values:
            return 0.0
        index = min(int(len(values) * percentile / 100), len(values) - 1)
        return values[index]

    def get_performance_report(self) -> dict[str, dict[str, Any]]:
        report: dict[str, dict[str, Any]] = {}
        for operation, values in self.latencies.items():
            if not values:
                continue
            report[operation] = {
                "count": len(values),
                "avg_ms": sum(values) / len(values),
                "min_ms": min(values),
                "max_ms": max(values),
                "p50_ms": self._calculate_percentile(operation, 50),
                "p95_ms": self._calculate_percentile(operation, 95),
                "p99_ms": self._calculate_percentile(operation, 99),
            }
        return report

    def reset_metrics(self) -> None:
        with self._lock:
            self._start_times.clear()
            self.latencies.clear()
