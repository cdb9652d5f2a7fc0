"""Worker ids that say who runs an agent, and the error a second worker gets.

A lease row holds only the worker id and an expiry, so the default worker id carries what
an operator needs to find the holder: ``host:pid@since`` (since = when this process first
asked for its worker id, UTC). ``AgentRunningError`` reads it back into
"AGENT is running in worker W (pid P on host H) since T".
"""

from __future__ import annotations

import os
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from kaizen.core.autonomy.state.errors import LeaseHeldError

_WORKER_ID = re.compile(r"^(?P<host>[^@]+):(?P<pid>\d+)(?:@(?P<since>[^@]+))?$")
_started: tuple[int, str] | None = None  # (pid, since) of this process


def default_worker_id() -> str:
    """``host:pid@since``: unique per running process and stable for its life."""
    global _started
    pid = os.getpid()
    if _started is None or _started[0] != pid:  # a forked child is another worker
        _started = (pid, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    return f"{socket.gethostname()}:{pid}@{_started[1]}"


@dataclass(frozen=True)
class WorkerInfo:
    """What a worker id tells about the process behind it (all None for a custom id)."""

    worker_id: str
    host: str | None = None
    pid: int | None = None
    since: str | None = None

    @classmethod
    def parse(cls, worker_id: str) -> WorkerInfo:
        match = _WORKER_ID.match(worker_id)
        if match is None:
            return cls(worker_id)
        return cls(worker_id, match["host"], int(match["pid"]), match["since"])

    def describe(self) -> str:
        if self.pid is None:
            return f"worker {self.worker_id}"
        text = f"worker {self.worker_id} (pid {self.pid} on host {self.host})"
        return text + (f" since {self.since}" if self.since else "")


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
