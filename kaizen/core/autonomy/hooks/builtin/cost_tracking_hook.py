"""``CostTrackingHook``: the spend of runs, per agent, tool, model and specialist.

The loop puts ``estimated_cost_usd`` on ``post_tool_use`` (the tool's price) and on
``post_agent_loop`` (the model calls of that run, priced from ``config.prices``), so the
hook's total is what the run spent.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar

from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult


class CostTrackingHook(BaseHook):
    """Adds up ``estimated_cost_usd`` from the events that carry it."""

    events: ClassVar[list[HookEvent]] = [
        HookEvent.POST_TOOL_USE,
        HookEvent.POST_AGENT_LOOP,
        HookEvent.POST_SPECIALIST_INVOKE,
    ]

    def __init__(self) -> None:
        super().__init__(name="cost_tracking_hook")
        self.total_cost_usd = 0.0
        self.costs_by_tool: dict[str, float] = defaultdict(float)
        self.costs_by_agent: dict[str, float] = defaultdict(float)
        self.costs_by_specialist: dict[str, float] = defaultdict(float)
        self.costs_by_model: dict[str, float] = defaultdict(float)

    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``."""
        try:
            cost = _cost(context.data.get("estimated_cost_usd"))
            if cost > 0:
                self.total_cost_usd += cost
                self.costs_by_agent[context.agent_id] += cost
                event = context.event_type
                if event == HookEvent.POST_TOOL_USE:
                    self.costs_by_tool[str(context.data.get("tool_name", "unknown"))] += cost
                elif event == HookEvent.POST_SPECIALIST_INVOKE:
                    self.costs_by_specialist[str(context.data.get("specialist_name", "unknown"))] += cost
                elif event == HookEvent.POST_AGENT_LOOP:
                    self.costs_by_model[str(context.data.get("model", "unknown"))] += cost
            return HookResult(success=True, data={
                "total_cost_usd": self.total_cost_usd,
                "event_cost_usd": cost,
                "agent_cost_usd": self.costs_by_agent.get(context.agent_id, 0.0),
            })
        except Exception as exc:
            return HookResult(success=False, error=f"{self.name}: {type(exc).__name__}: {exc}")

    def get_total_cost(self) -> float:
        return self.total_cost_usd

    def get_cost_breakdown(self) -> dict[str, Any]:
        return {
            "total_cost_usd": self.total_cost_usd,
            "by_tool": dict(self.costs_by_tool),
            "by_agent": dict(self.costs_by_agent),
            "by_specialist": dict(self.costs_by_specialist),
            "by_model": dict(self.costs_by_model),
        }

    def reset_costs(self) -> None:
        self.total_cost_usd = 0.0
        for table in (self.costs_by_tool, self.costs_by_agent, self.costs_by_specialist, self.costs_by_model):
            table.clear()


def _cost(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.0
    return float(value)
