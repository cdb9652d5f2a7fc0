"""``MetricsHook``: Prometheus metrics of agent runs (prometheus_client).

The original's metrics (events by type and agent, operation durations, active agents) and
what an operator watches: runs by status, model calls and tokens by model, tool calls by
tool and outcome, approvals by decision, checkpoint save latency and size, spend. Label
values go through the secret redaction; agent ids can be hashed (``hash_agent_ids``).
``hook.serve()`` exposes them over HTTP on 127.0.0.1 (``MetricsEndpoint``).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any, ClassVar

from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult
from .deps import require
from .payload import safe_label
from .performance_profiler_hook import PerformanceProfilerHook

if TYPE_CHECKING:
    from ..endpoints.metrics_endpoint import MetricsEndpoint

_prom = require("prometheus_client", "MetricsHook")
logger = logging.getLogger(__name__)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
SAVE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BYTES_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


class MetricsHook(BaseHook):
    """Collects metrics into its own ``CollectorRegistry`` (or the one given)."""

    events: ClassVar[list[HookEvent]] = list(HookEvent)

    def __init__(self, registry: Any = None, enable_percentiles: bool = True,
                 profiler: PerformanceProfilerHook | None = None, hash_agent_ids: bool = False) -> None:
        super().__init__(name="metrics_hook")
        self.registry = registry if registry is not None else _prom.CollectorRegistry()
        self.enable_percentiles = enable_percentiles
        self.profiler = (profiler or PerformanceProfilerHook()) if enable_percentiles else None
        self.hash_agent_ids = hash_agent_ids
        counter, histogram, gauge, reg = _prom.Counter, _prom.Histogram, _prom.Gauge, self.registry
        self.event_counter = counter("kaizen_hook_events_total", "Hook events by type and agent",
                                     ["event_type", "agent_id"], registry=reg)
        self.operation_duration = histogram("kaizen_operation_duration_seconds",
                                            "Duration from a pre_ to its post_ event", ["operation", "agent_id"],
                                            registry=reg, buckets=DURATION_BUCKETS)
        self.active_agents = gauge("kaizen_active_agents", "Agents seen by this hook", registry=reg)
        self.runs = counter("kaizen_runs_total", "Agent runs ended, by status", ["status"], registry=reg)
        self.model_calls = counter("kaizen_model_calls_total", "Model calls by model, provider and outcome",
                                   ["model", "provider", "outcome"], registry=reg)
        self.tokens = counter("kaizen_model_tokens_total", "Tokens by model and type (input, output)",
                              ["model", "type"], registry=reg)
        self.tool_calls = counter("kaizen_tool_calls_total", "Tool calls by tool and outcome (ok, error)",
                                  ["tool", "outcome"], registry=reg)
        self.approvals = counter("kaizen_approvals_total", "Approval decisions by decision and action",
                                 ["decision", "action"], registry=reg)
        self.checkpoint_seconds = histogram("kaizen_checkpoint_save_seconds", "Checkpoint save latency",
                                            registry=reg, buckets=SAVE_BUCKETS)
        self.checkpoint_bytes = histogram("kaizen_checkpoint_save_bytes", "Bytes written per checkpoint save",
                                          registry=reg, buckets=BYTES_BUCKETS)
        self.cost = counter("kaizen_cost_usd_total", "Spend in USD by kind (model, tool) and name",
                            ["kind", "name"], registry=reg)
        self._active_agent_ids: set[str] = set()
        self._save_started: dict[str, float] = {}
        self._lock = threading.Lock()
        self.counters: dict[str, int] = defaultdict(int)
        self.agent_counters: dict[str, int] = defaultdict(int)

    def _hash_agent_id(self, agent_id: str) -> str:
        return hashlib.sha256(agent_id.encode()).hexdigest()[:16]

    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``: a failure is a failed result, never an exception."""
        try:
            event = context.event_type.value
            agent = self._hash_agent_id(context.agent_id) if self.hash_agent_ids else safe_label(context.agent_id)
            self.event_counter.labels(event_type=event, agent_id=agent).inc()
            with self._lock:
                self._active_agent_ids.add(agent)
                self.active_agents.set(len(self._active_agent_ids))
                metric, agent_metric = f"kaizen_hook_{event}", f"kaizen_agent_{agent}_events"
                self.counters[metric] += 1
                self.agent_counters[agent_metric] += 1
                count, agent_count = self.counters[metric], self.agent_counters[agent_metric]
            self._observe(context)
            duration_ms = None
            if self.profiler is not None:
                timing = self.profiler.record(context)
                duration_ms = (timing.data or {}).get("duration_ms") if timing.success else None
                if duration_ms is not None:
                    operation = event.removeprefix("post_")
                    self.operation_duration.labels(operation=operation, agent_id=agent).observe(duration_ms / 1000)
            return HookResult(success=True, data={"metric": metric, "count": count, "agent_metric": agent_metric,
                                                  "agent_count": agent_count, "duration_ms": duration_ms})
        except Exception as exc:
            logger.error("%s: collecting metrics for %s failed: %s", self.name, context.event_type.value, exc)
            return HookResult(success=False, error=f"{self.name}: {type(exc).__name__}: {exc}")

    def _observe(self, context: HookContext) -> None:
        """The run-level metrics, from the data the agent loop puts on its events."""
        event, data = context.event_type, context.data
        if event == HookEvent.POST_AGENT_LOOP:
            self.runs.labels(status=safe_label(data.get("status", "unknown"))).inc()
        elif event == HookEvent.POST_MODEL_CALL:
            model = safe_label(data.get("model") or "unknown")
            outcome = "error" if data.get("error") else "ok"
            self.model_calls.labels(model=model, provider=safe_label(data.get("provider") or "unknown"),
                                    outcome=outcome).inc()
            for kind in ("input", "output"):
                tokens = _number(data.get(f"{kind}_tokens"))
                if tokens:
                    self.tokens.labels(model=model, type=kind).inc(tokens)
            self._add_cost("model", model, data)
        elif event == HookEvent.POST_TOOL_USE:
            tool = safe_label(data.get("tool_name") or "unknown")
            self.tool_calls.labels(tool=tool, outcome="ok" if data.get("ok", True) else "error").inc()
            self._add_cost("tool", tool, data)
        elif event == HookEvent.APPROVAL_DECIDED:
            self.approvals.labels(decision="approved" if data.get("approved") else "denied",
                                  action=safe_label(data.get("action") or "unknown")).inc()
        elif event == HookEvent.PRE_CHECKPOINT_SAVE:
            with self._lock:
                self._save_started[context.agent_id] = context.timestamp
        elif event == HookEvent.POST_CHECKPOINT_SAVE:
            with self._lock:
                started = self._save_started.pop(context.agent_id, None)
            if started is not None:
                self.checkpoint_seconds.observe(max(context.timestamp - started, 0.0))
            size = _number(data.get("size_bytes"))
            if size is not None:
                self.checkpoint_bytes.observe(size)

    def _add_cost(self, kind: str, name: str, data: dict[str, Any]) -> None:
        cost = _number(data.get("estimated_cost_usd"))
        if cost:
            self.cost.labels(kind=kind, name=name).inc(cost)

    # -- reading --------------------------------------------------------------------------
    def export_prometheus(self) -> bytes:
        """The metrics in Prometheus text format."""
        data: bytes = _prom.generate_latest(self.registry)
        return data

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> MetricsEndpoint:
        """Serve ``/metrics`` on ``host:port`` in a background thread (port 0: any free port)."""
        from ..endpoints.metrics_endpoint import MetricsEndpoint

        return MetricsEndpoint(self, port=port, host=host).start()

    def get_percentiles(self, operation: str) -> dict[str, float]:
        if self.profiler is None:
            return {}
        report = self.profiler.get_performance_report().get(operation)
        return {key: report[key] for key in ("p50_ms", "p95_ms", "p99_ms")} if report else {}

    def get_metrics(self) -> dict[str, int]:
        return {**self.counters, **self.agent_counters}

    def reset_metrics(self) -> None:
        """Clears the in-memory counters; Prometheus metrics are cumulative and stay."""
        with self._lock:
            self.counters.clear()
            self.agent_counters.clear()
            self._active_agent_ids.clear()
        if self.profiler is not None:
            self.profiler.reset_metrics()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)
