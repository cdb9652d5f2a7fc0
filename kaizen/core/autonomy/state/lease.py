"""Leases: one worker at a time runs a given agent, and a crashed worker's claim runs out.

A ``Lease`` renews itself on a background thread (every third of its time to
live) while the work runs; if the worker dies, renewals stop and another worker
can claim the agent once the lease expires.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from kaizen.core.values import is_number

from .errors import InvalidStateValueError, LeaseHeldError, StorageError
from .ids import check_id
from .storage.base import CheckpointStore, LeaseRow

log = logging.getLogger("kaizen.state")


_WORKER_ID = re.compile(r"^(?P<host>[^@]+):(?P<pid>\d+)(?:@(?P<since>[^@]+))?$")
_started: tuple[int, str] | None = None  # (pid, since) of this process


def default_worker_id() -> str:
    """``host:pid@since``: unique per running process, stable for its life, and readable in a
    "held by" error (a lease row holds only the worker id and an expiry)."""
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

    def is_dead(self) -> bool:
        """True only when the id names a process on this host that no longer exists (a worker
        killed with kill -9 leaves its lease behind until it expires; this lets it be taken at once).
        Unknown ids, other hosts and processes we may not signal count as alive."""
        if self.pid is None or self.host != socket.gethostname() or self.pid == os.getpid():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return _is_zombie(self.pid)


def _is_zombie(pid: int) -> bool:
    """A killed process its parent has not reaped yet still answers signal 0 (Linux: state Z)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


class Lease:
    """A held claim on an agent. Use as a context manager; ``release()`` gives it up."""

    def __init__(self, store: CheckpointStore, row: LeaseRow, ttl: float, keepalive: bool) -> None:
        self.store = store
        self.agent_id = row.agent_id
        self.worker_id = row.worker_id
        self.expires_at = row.expires_at
        self.ttl = ttl
        self.lost: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if keepalive:
            self._thread = threading.Thread(target=self._renew_loop, name=f"lease-{self.agent_id}", daemon=True)
            self._thread.start()

    def renew(self) -> None:
        """Extend the lease by ``ttl``; ``LeaseHeldError`` if another worker took it meanwhile."""
        row = self.store.acquire_lease(self.agent_id, self.worker_id, self.ttl)
        self.expires_at = row.expires_at

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except (LeaseHeldError, StorageError) as exc:  # remembered; the owner checks `lost`
                self.lost = exc
                log.error("lease on %s lost: %s", self.agent_id, exc)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.store.release_lease(self.agent_id, self.worker_id)
        except StorageError as exc:  # it will expire on its own
            log.warning("could not release the lease on %s: %s", self.agent_id, exc)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def claim(store: CheckpointStore, agent_id: str, worker_id: str | None = None, ttl: float = 30.0,
          keepalive: bool = True) -> Lease:
    check_id(agent_id, "agent_id")
    if not is_number(ttl) or not 0.05 <= ttl <= 86_400:
        raise InvalidStateValueError(f"ttl must be between 0.05 and 86400 seconds, got {ttl!r}")
    worker = worker_id or default_worker_id()
    if not isinstance(worker, str) or not worker or len(worker) > 200:
        raise InvalidStateValueError("worker_id must be a non-empty str of at most 200 characters")
    try:
        row = store.acquire_lease(agent_id, worker, float(ttl))
    except LeaseHeldError as exc:
        if not WorkerInfo.parse(exc.holder).is_dead():
            raise
        log.warning("taking over %s: its lease holder %s is no longer running", agent_id, exc.holder)
        store.release_lease(agent_id, exc.holder)  # only if that dead worker still holds it
        row = store.acquire_lease(agent_id, worker, float(ttl))
    return Lease(store, row, float(ttl), keepalive)
