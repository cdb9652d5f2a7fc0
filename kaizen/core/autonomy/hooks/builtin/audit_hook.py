"""``AuditHook``: every hook event as a record in an audit trail, payloads redacted.

The trail is any object with ``log_event(user, action, result, metadata) -> id`` (the
original's ``AuditTrailProvider`` shape). ``JsonLinesAuditLog`` is one: an append-only
JSON-lines file. The agent's own approval history, kept in its checkpoints and verified by
``kaizen audit``, stays the record of decisions; this trail is for shipping events elsewhere.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from pathlib import Path
from typing import Any, ClassVar, Protocol

import orjson

from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult
from .payload import redacted_copy

logger = logging.getLogger(__name__)


class AuditTrail(Protocol):
    def log_event(self, user: str, action: str, result: str, metadata: dict[str, Any]) -> Any: ...


class JsonLinesAuditLog:
    """Appends one JSON object per event to ``path`` (created with its directory, mode 0600)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def log_event(self, user: str, action: str, result: str, metadata: dict[str, Any]) -> str:
        event_id = "audit_" + uuid.uuid4().hex[:16]
        line = orjson.dumps({"id": event_id, "user": user, "action": action, "result": result,
                             "metadata": metadata}, default=str) + b"\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        return event_id

    def read(self) -> list[dict[str, Any]]:
        """Every record written so far, oldest first."""
        if not self.path.exists():
            return []
        return [orjson.loads(line) for line in self.path.read_bytes().splitlines() if line.strip()]


class AuditHook(BaseHook):
    """Writes each event (optionally only those in ``event_filter``) to ``audit_provider``."""

    events: ClassVar[list[HookEvent]] = list(HookEvent)

    def __init__(self, audit_provider: AuditTrail, event_filter: list[HookEvent] | None = None) -> None:
        super().__init__(name="audit_hook")
        self.audit_provider = audit_provider
        self.event_filter = event_filter

    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``."""
        try:
            if self.event_filter and context.event_type not in self.event_filter:
                return HookResult(success=True, data={"skipped": True, "reason": "event_filter"})
            data = context.data
            result = "error" if data.get("error") else "failure" if data.get("success") is False or \
                data.get("ok") is False else str(data.get("result", "success"))
            event_id = self.audit_provider.log_event(
                user=context.agent_id,
                action=context.event_type.value,
                result=result,
                metadata={"trace_id": context.trace_id, "timestamp": context.timestamp,
                          "event_type": context.event_type.value, "data": redacted_copy(data),
                          "metadata": redacted_copy(context.metadata)},
            )
            return HookResult(success=True, data={"audit_event_id": event_id})
        except Exception as exc:
            logger.error("%s failed for %s: %s", self.name, context.event_type.value, exc)
            return HookResult(success=False, error=f"{self.name}: {type(exc).__name__}: {exc}")
