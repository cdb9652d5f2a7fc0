"""Per-hook run statistics (``HookManager.get_stats``), in Kailash Kaizen's shape."""

from __future__ import annotations

import threading
from typing import Any

from .types import HookResult


class HookStats:
    """Counts and durations per hook name; safe to update from several threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, dict[str, Any]] = {}

    def record(self, name: str, result: HookResult) -> None:
        with self._lock:
            stats = self._by_name.get(name)
            if stats is None:
                stats = self._by_name[name] = {
                    "call_count": 0, "success_count": 0, "failure_count": 0,
                    "total_duration_ms": 0.0, "avg_duration_ms": 0.0, "max_duration_ms": 0.0,
                }
            stats["call_count"] += 1
            stats["success_count" if result.success else "failure_count"] += 1
            stats["total_duration_ms"] += result.duration_ms
            stats["avg_duration_ms"] = stats["total_duration_ms"] / stats["call_count"]
            stats["max_duration_ms"] = max(stats["max_duration_ms"], result.duration_ms)

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A copy: later runs do not change what the caller holds."""
        with self._lock:
            return {name: dict(stats) for name, stats in self._by_name.items()}
