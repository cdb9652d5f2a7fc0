"""``RunResult``: what ``BaseAutonomousAgent.run`` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from kaizen.core.autonomy.permissions.pending import PendingApproval

RunStatus = Literal["running", "completed", "max_cycles", "denied", "budget_exceeded", "failed", "interrupted",
                    "awaiting_approval"]
# awaiting_approval is not terminal: the run continues (run(resume=True)) once its calls are decided
TERMINAL: tuple[RunStatus, ...] = ("completed", "max_cycles", "denied", "budget_exceeded", "failed")


@dataclass
class RunResult:
    """The signature's outputs, how the run ended, and where it is stored.

    ``tool_calls`` counts the tool calls of the run that were executed (see ``docs/agent-loop.md``).
    ``pending_approvals``: with status "awaiting_approval", the calls waiting for a decision.
    """

    status: str
    outputs: dict[str, Any]
    cycles: int
    agent_id: str
    run_id: str
    checkpoint_id: str | None = None
    error: str | None = None
    tool_calls: int = 0
    budget_spent_usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    pending_approvals: list[PendingApproval] = field(default_factory=list)

    def __getitem__(self, key: str) -> Any:
        """``result["answer"]`` reads an output; ``result["status"]`` the status."""
        if key in self.outputs:
            return self.outputs[key]
        return getattr(self, key)
