"""The error a second worker gets: "AGENT is running in worker W (pid P on host H) since T",
read back from the holder's worker id (``kaizen.core.autonomy.state.lease.default_worker_id``)."""

from __future__ import annotations

from datetime import datetime, timezone

from kaizen.core.autonomy.state.errors import LeaseHeldError
from kaizen.core.autonomy.state.lease import WorkerInfo, default_worker_id

__all__ = ["AgentRunningError", "WorkerInfo", "default_worker_id"]


class AgentRunningError(LeaseHeldError):
    """Another worker is running the agent (it holds the agent's lease)."""

    def __init__(self, agent_id: str, holder: str, expires_at: float) -> None:
        super().__init__(agent_id, holder, expires_at)
        until = datetime.fromtimestamp(expires_at, timezone.utc).isoformat(timespec="seconds")
        self.worker = WorkerInfo.parse(holder)
        message = (f"{agent_id} is running in {self.worker.describe()}; wait for it to finish or stop that "
                   f"process (if it died, its lease runs out at {until} and the agent can be resumed then)")
        self.args = (message,)

    def __str__(self) -> str:
        return str(self.args[0])

    @classmethod
    def from_held(cls, exc: LeaseHeldError) -> AgentRunningError:
        return cls(exc.agent_id, exc.holder, exc.expires_at)
