"""``TracingHook``: OpenTelemetry traces of agent runs, after the GenAI semantic conventions.

One span per run (``invoke_agent``), per cycle, per model call (``chat {model}`` with
``gen_ai.provider.name``, ``gen_ai.request.model``, token usage and finish reasons) and per
tool call (``execute_tool {name}`` with ``gen_ai.tool.name`` and ``gen_ai.tool.call.id``).
Approvals and checkpoint saves are span events; a save's ``kaizen.checkpoint.id`` is what
``kaizen checkpoints show`` takes. A resumed run's span links to the run it continues: the
hook hands the loop a ``traceparent`` on ``pre_agent_loop``, which the loop keeps in the
checkpoint. Spans are timed by the events' timestamps. Attribute values are redacted.

Register it before other hooks (``HookPriority.HIGH``) and ``LoggingHook`` lines carry the
OpenTelemetry trace and span ids.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..events import HookEvent
from ..protocol import BaseHook
from ..types import HookContext, HookResult
from .deps import require
from .payload import safe_label

_trace = require("opentelemetry.trace", "TracingHook")
logger = logging.getLogger(__name__)
INSTRUMENTATION = "kaizen.hooks"


@dataclass
class _RunSpans:
    """The open spans of one agent's run, innermost last."""

    run: Any = None
    cycle: Any = None
    model: Any = None
    tools: dict[str, Any] = field(default_factory=dict)

    def innermost(self) -> Any:
        if self.tools:
            return list(self.tools.values())[-1]
        return self.model or self.cycle or self.run


class TracingHook(BaseHook):
    """Creates spans on the given ``tracer_provider`` (else the global one)."""

    events: ClassVar[list[HookEvent]] = list(HookEvent)

    def __init__(self, tracing_manager: Any = None, events_to_trace: list[HookEvent] | None = None, *,
                 tracer_provider: Any = None) -> None:
        super().__init__(name="tracing_hook")
        self.tracing_manager = tracing_manager
        self.events_to_trace = list(events_to_trace or [])
        self.tracer_provider = tracer_provider
        own_tracer = getattr(tracing_manager, "tracer", None)
        self.tracer = own_tracer or _trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        self._runs: dict[str, _RunSpans] = {}
        self._lock = threading.Lock()

    @classmethod
    def otlp(cls, endpoint: str, service_name: str = "kaizen", **exporter_options: Any) -> TracingHook:
        """A hook exporting over OTLP/HTTP to ``endpoint`` (e.g. ``http://127.0.0.1:4318/v1/traces``)."""
        sdk_trace = require("opentelemetry.sdk.trace", "TracingHook.otlp")
        export = require("opentelemetry.sdk.trace.export", "TracingHook.otlp")
        resources = require("opentelemetry.sdk.resources", "TracingHook.otlp")
        otlp = require("opentelemetry.exporter.otlp.proto.http.trace_exporter", "TracingHook.otlp")
        provider = sdk_trace.TracerProvider(resource=resources.Resource.create({"service.name": service_name}))
        provider.add_span_processor(export.BatchSpanProcessor(otlp.OTLPSpanExporter(endpoint=endpoint,
                                                                                    **exporter_options)))
        return cls(tracer_provider=provider)

    def force_flush(self) -> None:
        """Send finished spans now (providers batch them)."""
        flush = getattr(self.tracer_provider, "force_flush", None)
        if flush is not None:
            flush()

    def shutdown(self) -> None:
        stop = getattr(self.tracer_provider, "shutdown", None)
        if stop is not None:
            stop()

    async def handle(self, context: HookContext) -> HookResult:
        return self.record(context)

    def record(self, context: HookContext) -> HookResult:
        """The sync body of ``handle``: a tracing failure is a failed result, never an exception."""
        if self.events_to_trace and context.event_type not in self.events_to_trace:
            return HookResult(success=True, data={"span_created": False, "reason": "event_filtered"})
        try:
            with self._lock:
                span = self._on_event(context)
            if span is None:
                return HookResult(success=True, data={"span_created": False})
            span_context = span.get_span_context()
            trace_id, span_id = f"{span_context.trace_id:032x}", f"{span_context.span_id:016x}"
            context.metadata["otel_trace_id"], context.metadata["otel_span_id"] = trace_id, span_id
            return HookResult(success=True, data={"span_name": getattr(span, "name", ""), "span_id": span_id,
                                                  "otel_trace_id": trace_id, "trace_id": context.trace_id,
                                                  "agent_id": context.agent_id})
        except Exception as exc:
            logger.error("%s failed on %s: %s", self.name, context.event_type.value, safe_label(exc, 300))
            return HookResult(success=False, error=f"{self.name}: {type(exc).__name__}: {safe_label(exc, 300)}")

    # -- events -----------------------------------------------------------------------------
    def _on_event(self, context: HookContext) -> Any:
        event, data, agent = context.event_type, context.data, context.agent_id
        now = _ns(context.timestamp)
        if event == HookEvent.PRE_AGENT_LOOP:
            return self._start_run(context, now)
        spans = self._runs.get(agent)
        if spans is None or spans.run is None:
            return None
        if event == HookEvent.PRE_CYCLE:
            _end(spans.cycle, now)
            spans.cycle = self._child(spans.run, f"cycle {data.get('cycle', '?')}", now,
                                      {"kaizen.cycle": data.get("cycle"), "kaizen.agent.id": agent})
            return spans.cycle
        if event == HookEvent.POST_CYCLE:
            span, spans.cycle = spans.cycle, None
            if span is not None:
                span.set_attribute("kaizen.cycle.final", bool(data.get("final")))
                span.end(end_time=now)
            return span
        if event == HookEvent.PRE_MODEL_CALL:
            model = safe_label(data.get("model") or "unknown")
            spans.model = self._child(spans.cycle or spans.run, f"chat {model}", now, {
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": safe_label(data.get("provider") or "unknown"),
                "gen_ai.request.model": model}, kind=_trace.SpanKind.CLIENT)
            return spans.model
        if event == HookEvent.POST_MODEL_CALL:
            span, spans.model = spans.model, None
            if span is not None:
                self._finish_model(span, data, now)
            return span
        if event == HookEvent.PRE_TOOL_USE:
            name, call_id = safe_label(data.get("tool_name") or "unknown"), str(data.get("call_id") or "")
            span = self._child(spans.cycle or spans.run, f"execute_tool {name}", now, {
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name,
                "gen_ai.tool.call.id": safe_label(call_id), "gen_ai.tool.type": "function"})
            spans.tools[call_id] = span
            return span
        if event == HookEvent.POST_TOOL_USE:
            span = spans.tools.pop(str(data.get("call_id") or ""), None)
            if span is not None:
                if data.get("ok") is False:
                    span.set_status(_trace.Status(_trace.StatusCode.ERROR, safe_label(data.get("error"), 300)))
                    span.set_attribute("error.type", "tool_error")
                span.end(end_time=now)
            return span
        if event == HookEvent.APPROVAL_DECIDED:
            span = spans.cycle or spans.run
            span.add_event("kaizen.approval", _attrs({
                "gen_ai.tool.name": data.get("tool_name"), "gen_ai.tool.call.id": data.get("call_id"),
                "kaizen.approval.approved": bool(data.get("approved")), "kaizen.approval.action": data.get("action"),
                "kaizen.approval.decided_by": data.get("decided_by"),
                "kaizen.approval.via": data.get("via")}), timestamp=now)  # via: a deferred decision's channel
            return span
        if event == HookEvent.POST_CHECKPOINT_SAVE:
            span = spans.innermost()
            span.add_event("kaizen.checkpoint.saved", _attrs({
                "kaizen.checkpoint.id": data.get("checkpoint_id"), "kaizen.checkpoint.size_bytes": data.get("size_bytes"),
                "kaizen.checkpoint.step": data.get("step_number")}), timestamp=now)
            return span
        if event == HookEvent.ERROR:
            spans.run.add_event("exception", _attrs({"exception.type": data.get("error_type"),
                                                     "exception.message": data.get("error")}), timestamp=now)
            return spans.run
        if event in (HookEvent.PRE_INTERRUPT, HookEvent.POST_INTERRUPT):
            spans.run.add_event(f"kaizen.{event.value}", _attrs({"kaizen.cycle": data.get("cycle")}), timestamp=now)
            if event == HookEvent.POST_INTERRUPT:
                return self._end_run(agent, spans, {"status": "interrupted"}, now)
            return spans.run
        if event == HookEvent.POST_AGENT_LOOP:
            return self._end_run(agent, spans, data, now)
        return None

    def _start_run(self, context: HookContext, now: int) -> Any:
        data, agent = context.data, context.agent_id
        stale = self._runs.pop(agent, None)
        if stale is not None:
            self._end_run(agent, stale, {"status": "abandoned"}, now)
        links = []
        previous = _parse_traceparent(data.get("previous_traceparent"))
        if previous is not None:
            links.append(_trace.Link(previous, {"kaizen.link": "continues_run"}))
        attributes = _attrs({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": agent,
                             "gen_ai.agent.name": agent, "gen_ai.request.model": data.get("model"),
                             "gen_ai.provider.name": data.get("provider"), "kaizen.run.id": data.get("run_id"),
                             "kaizen.run.resumed": previous is not None})
        span = self.tracer.start_span(f"invoke_agent {safe_label(agent)}", attributes=attributes, links=links,
                                      start_time=now)
        self._runs[agent] = _RunSpans(run=span)
        span_context = span.get_span_context()
        context.data["traceparent"] = f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-01"
        return span

    def _end_run(self, agent: str, spans: _RunSpans, data: dict[str, Any], now: int) -> Any:
        for open_span in [*spans.tools.values(), spans.model, spans.cycle]:
            _end(open_span, now)
        run = spans.run
        status = str(data.get("status", "unknown"))
        run.set_attributes(_attrs({"kaizen.run.status": status, "kaizen.run.cycles": data.get("cycles"),
                                   "kaizen.checkpoint.id": data.get("checkpoint_id"),
                                   "kaizen.cost_usd": data.get("estimated_cost_usd")}))
        if status not in ("completed", "interrupted"):
            run.set_status(_trace.Status(_trace.StatusCode.ERROR, safe_label(data.get("error") or status, 300)))
        run.end(end_time=now)
        self._runs.pop(agent, None)
        return run

    def _finish_model(self, span: Any, data: dict[str, Any], now: int) -> None:
        finish = data.get("finish_reason")
        span.set_attributes(_attrs({
            "gen_ai.response.model": data.get("response_model"),
            "gen_ai.usage.input_tokens": data.get("input_tokens"),
            "gen_ai.usage.output_tokens": data.get("output_tokens"),
            "kaizen.cost_usd": data.get("estimated_cost_usd"),
            "kaizen.tool_calls": data.get("tool_calls")}))
        if finish:
            span.set_attribute("gen_ai.response.finish_reasons", [safe_label(finish)])
        if data.get("error"):
            span.set_status(_trace.Status(_trace.StatusCode.ERROR, safe_label(data["error"], 300)))
            span.set_attribute("error.type", safe_label(data.get("error_type") or "error"))
        span.end(end_time=now)

    def _child(self, parent: Any, name: str, now: int, attributes: dict[str, Any], kind: Any = None) -> Any:
        return self.tracer.start_span(name, context=_trace.set_span_in_context(parent), attributes=_attrs(attributes),
                                      start_time=now, kind=kind if kind is not None else _trace.SpanKind.INTERNAL)


def _ns(timestamp: float) -> int:
    return int(timestamp * 1_000_000_000)


def _end(span: Any, now: int) -> None:
    if span is not None and getattr(span, "is_recording", lambda: False)():
        span.end(end_time=now)


def _attrs(values: dict[str, Any]) -> dict[str, Any]:
    """Attribute values OpenTelemetry accepts: numbers and booleans as they are, text redacted."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value if isinstance(value, (bool, int, float)) else safe_label(value, 300)
    return out


def _parse_traceparent(value: Any) -> Any:
    """A W3C ``traceparent`` as a remote ``SpanContext``, or None when absent or malformed."""
    if not isinstance(value, str):
        return None
    parts = value.split("-")
    if len(parts) != 4 or len(parts[1]) != 32 or len(parts[2]) != 16:
        return None
    try:
        trace_id, span_id = int(parts[1], 16), int(parts[2], 16)
    except ValueError:
        return None
    if not trace_id or not span_id:
        return None
    return _trace.SpanContext(trace_id, span_id, is_remote=True, trace_flags=_trace.TraceFlags(1))
