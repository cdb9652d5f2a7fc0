"""``LoggingHook``: one log line per hook event, as text or as JSON (structlog), with trace ids.

A line carries the event, the agent, the trigger's trace id (and the OpenTelemetry trace
and span ids when a ``TracingHook`` ran first on the same trigger) and the payload's
*shape*: key names and their count. Payload values are written only when asked for
(``log_full_payloads=True``) and only at DEBUG, always redacted and bounded: agent inputs
and tool arguments carry prompts, documents and credentials.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import InvalidHookArgumentError
from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult
from .deps import require
from .payload import payload_shape, render_payload, safe_label, wants_full_payload

if TYPE_CHECKING:
    from ..security.redaction import SensitiveDataRedactor

logger = logging.getLogger(__name__)
LEVELS = ("debug", "info", "warning", "error", "critical")
TRACE_KEYS = ("otel_trace_id", "otel_span_id")  # put in context.metadata by TracingHook


class LoggingHook(BaseHook):
    """Logs every hook event on logger ``kaizen.core.autonomy.hooks.builtin.logging_hook``.

    ``format="json"`` renders each line as one JSON object (structlog) for log shippers;
    ``redact_sensitive`` adds the ``SensitiveDataRedactor`` pass (PII such as card numbers)
    on top of the secret redaction that always runs. ``redact_sensitive=True`` fails if the
    redactor cannot be loaded; the default then degrades to structure-only lines.
    """

    events: ClassVar[list[HookEvent]] = list(HookEvent)

    def __init__(
        self,
        log_level: str = "INFO",
        include_data: bool = True,
        format: str = "text",
        redact_sensitive: bool | None = None,
        log_full_payloads: bool = False,
        *,
        name: str = "logging_hook",
    ) -> None:
        super().__init__(name=name)
        if not isinstance(log_level, str) or log_level.lower() not in LEVELS:
            raise InvalidHookArgumentError(f"{type(self).__name__}: log_level {log_level!r} is not one of "
                                           f"{', '.join(level.upper() for level in LEVELS)}")
        if format not in ("text", "json"):
            raise InvalidHookArgumentError(f"{type(self).__name__}: format must be 'text' or 'json', got {format!r}")
        self.log_level = log_level
        self.include_data = include_data
        self.format = format
        self.log_full_payloads = log_full_payloads
        self.redact_sensitive = True if redact_sensitive is None else bool(redact_sensitive)
        self.redactor: SensitiveDataRedactor | None = None
        if self.redact_sensitive:
            self.redactor = self._load_redactor(explicit=redact_sensitive is True)
        self._gate = logging.getLogger(self._logger_name())
        self.logger: Any = self._make_logger()

    # -- set-up ---------------------------------------------------------------------------
    def _logger_name(self) -> str:
        return __name__

    def _base_logger(self) -> Any:
        return logger  # read at construction, so a replaced module logger is the one used

    def _make_logger(self) -> Any:
        base = self._base_logger()
        if self.format == "text":
            return base
        structlog = require("structlog", f"{type(self).__name__}(format='json')")
        return structlog.wrap_logger(
            base,
            processors=[
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="logged_at"),
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(default=str, sort_keys=False),
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
            context_class=dict,
        )

    def _load_redactor(self, explicit: bool) -> SensitiveDataRedactor | None:
        try:
            from ..security.redaction import SensitiveDataRedactor
        except ImportError as exc:
            if explicit:
                raise RuntimeError(
                    f"{type(self).__name__}: redact_sensitive=True was asked for, but SensitiveDataRedactor "
                    "(kaizen.core.autonomy.hooks.security.redaction) cannot be imported, so the redaction "
                    "pass cannot run; reinstall kaizen-state, or pass redact_sensitive=False to log "
                    "structure only without it"
                ) from exc
            logging.getLogger(__name__).warning(
                "%s: SensitiveDataRedactor cannot be imported (%s); logging payload structure only",
                type(self).__name__, exc)
            self.redact_sensitive = False
            self.log_full_payloads = False
            return None
        return SensitiveDataRedactor()

    # -- handling -------------------------------------------------------------------------
    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``: never raises, a failed write is a failed result."""
        try:
            safe = self.redactor.redact_hook_context(context) if self.redactor is not None else context
            log = getattr(self.logger, self.log_level.lower())
            if self.format == "json":
                log("hook_event", **self._fields(safe))
            else:
                log(self._text(safe))
            if wants_full_payload(self.log_full_payloads, self._gate):
                self._log_payload(safe)
            return HookResult(success=True)
        except Exception as exc:
            return HookResult(success=False, error=f"{self.name}: logging failed: {type(exc).__name__}: {exc}")

    def _fields(self, context: HookContext) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "event_type": context.event_type.value,
            "agent_id": context.agent_id,
            "trace_id": context.trace_id,
            "timestamp": context.timestamp_iso,
            "level": self.log_level.lower(),
        }
        for key in TRACE_KEYS:
            if key in context.metadata:
                fields[key] = safe_label(context.metadata[key])
        if self.include_data:
            data, meta = payload_shape(context.data), payload_shape(context.metadata)
            fields.update(context_keys=data["keys"], context_field_count=data["count"], metadata_keys=meta["keys"])
        return fields

    def _text(self, context: HookContext) -> str:
        text = f"[{context.event_type.value}] Agent={context.agent_id} TraceID={context.trace_id}"
        if "otel_trace_id" in context.metadata:
            text += f" OtelTraceID={safe_label(context.metadata['otel_trace_id'])}"
        if self.include_data:
            data = payload_shape(context.data)
            text += f" DataKeys={data['keys']} ({data['count']} field(s))"
        return text

    def _log_payload(self, context: HookContext) -> None:
        rendered = render_payload(context.data)
        if self.format == "json":
            self.logger.debug("hook_event_payload", event_type=context.event_type.value,
                              agent_id=context.agent_id, trace_id=context.trace_id, payload=rendered)
        else:
            self.logger.debug(f"[{context.event_type.value}] Agent={context.agent_id} "
                              f"TraceID={context.trace_id} Payload={rendered}")

    async def on_error(self, error: Exception, context: HookContext) -> None:
        logging.getLogger(__name__).error("%s failed on %s: %s", self.name, context.event_type.value, error)


def parse_json_line(line: str) -> dict[str, Any]:
    """One line of ``format="json"`` output as a dict (for tests and log readers)."""
    value = json.loads(line)
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON log line of LoggingHook: {line[:80]!r}")
    return value
