"""TracingHook: a real run becomes an OpenTelemetry trace in the GenAI conventions' shape."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from obs_kit import API_KEY, DB_PASSWORD, assert_no_secret, make_agent, run_agent
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from kaizen.core.autonomy.hooks import HookManager, HookPriority
from kaizen.core.autonomy.hooks.builtin import TracingHook
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.tools import Tool


def traced(tmp_path, **kwargs: Any):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hooks = HookManager()
    hooks.register_hook(TracingHook(tracer_provider=provider), HookPriority.HIGH)
    agent, result = run_agent(tmp_path, hooks, **kwargs)
    return agent, result, exporter.get_finished_spans()


def by_name(spans, prefix):
    return [span for span in spans if span.name.startswith(prefix)]


def test_a_run_is_one_trace_of_run_cycle_model_and_tool_spans(tmp_path):
    agent, result, spans = traced(tmp_path)
    assert result.status == "completed"
    assert len({span.context.trace_id for span in spans}) == 1
    (run,) = by_name(spans, "invoke_agent")
    assert run.parent is None and run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.id"] == agent.agent_id
    assert run.attributes["kaizen.run.id"] == result.run_id
    assert run.attributes["kaizen.run.status"] == "completed"
    assert run.attributes["kaizen.checkpoint.id"] == result.checkpoint_id
    cycles = sorted(by_name(spans, "cycle "), key=lambda s: s.attributes["kaizen.cycle"])
    assert [c.attributes["kaizen.cycle"] for c in cycles] == [1, 2, 3]
    assert all(c.parent.span_id == run.context.span_id for c in cycles)
    assert [c.attributes["kaizen.cycle.final"] for c in cycles] == [False, False, True]

    chats = sorted(by_name(spans, "chat "), key=lambda s: s.start_time)
    assert len(chats) == 3
    for chat, cycle in zip(chats, cycles):
        assert chat.name == "chat m-1" and chat.kind == SpanKind.CLIENT
        assert chat.parent.span_id == cycle.context.span_id
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.provider.name"] == "scripted"
        assert chat.attributes["gen_ai.request.model"] == "m-1"
    assert [c.attributes["gen_ai.usage.input_tokens"] for c in chats] == [120, 200, 260]
    assert [c.attributes["gen_ai.usage.output_tokens"] for c in chats] == [30, 40, 12]
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats) == agent.token_usage["m-1"]["input_tokens"]
    assert [tuple(c.attributes["gen_ai.response.finish_reasons"]) for c in chats] == \
        [("tool_calls",), ("tool_calls",), ("stop",)]

    tools = sorted(by_name(spans, "execute_tool "), key=lambda s: s.start_time)
    assert [t.attributes["gen_ai.tool.name"] for t in tools] == ["Write", "Read", "deploy"]  # the denied one never ran
    ids = [entry["call_id"] for entry in agent.state_manager.resume_from_latest(agent.agent_id).completed_actions]
    assert [t.attributes["gen_ai.tool.call.id"] for t in tools] == [ids[0], ids[1], ids[3]]
    assert tools[0].parent.span_id == cycles[0].context.span_id
    assert tools[1].status.status_code == StatusCode.ERROR  # Read of a missing file
    assert tools[0].status.status_code != StatusCode.ERROR


def test_approvals_and_checkpoint_saves_are_span_events_with_ids(tmp_path):
    agent, result, spans = traced(tmp_path)
    events = [(span, event) for span in spans for event in span.events]
    approvals = [event for _, event in events if event.name == "kaizen.approval"]
    assert [(e.attributes["gen_ai.tool.name"], e.attributes["kaizen.approval.approved"]) for e in approvals] == \
        [("Write", True), ("Read", True), ("deploy", False), ("deploy", True)]
    assert all(e.attributes["kaizen.approval.decided_by"] == "user" for e in approvals)
    assert len({e.attributes["gen_ai.tool.call.id"] for e in approvals}) == 4
    saved = [event.attributes["kaizen.checkpoint.id"] for _, event in events if event.name == "kaizen.checkpoint.saved"]
    assert saved and result.checkpoint_id in saved
    reader = SyncStateManager(f"sqlite:///{tmp_path}/state.db")
    for checkpoint_id in saved:  # every id in the trace opens in `kaizen checkpoints show`
        assert reader.load_checkpoint(checkpoint_id).agent_id == agent.agent_id


def test_no_secret_reaches_a_span(tmp_path):
    _, _, spans = traced(tmp_path)
    text = repr([(s.name, dict(s.attributes), [(e.name, dict(e.attributes)) for e in s.events], s.status.description)
                 for s in spans])
    assert_no_secret(text)


def test_a_failing_model_call_marks_the_chat_and_run_spans(tmp_path):
    _, result, spans = traced(tmp_path, steps=[])  # an exhausted script: the provider raises
    assert result.status == "failed"
    (chat,) = by_name(spans, "chat ")
    assert chat.status.status_code == StatusCode.ERROR and "error.type" in chat.attributes
    (run,) = by_name(spans, "invoke_agent")
    assert run.status.status_code == StatusCode.ERROR
    assert any(event.name == "exception" for event in run.events)


def test_a_resumed_run_links_to_the_run_it_continues(tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt  # Ctrl-C while the tool runs
        return "ok"

    flaky_tool = Tool("flaky", "sometimes interrupted", {"type": "object", "properties": {}}, "idempotent", flaky)
    steps = [{"content": "", "tool_calls": [{"name": "flaky", "arguments": {}}]}, "finished"]

    def fresh_agent():
        hooks = HookManager()
        hooks.register_hook(TracingHook(tracer_provider=provider), HookPriority.HIGH)
        return make_agent(tmp_path, hooks, agent_id="resumer", steps=steps, extra_tools=[flaky_tool])

    with pytest.raises(KeyboardInterrupt):
        fresh_agent().run(task="t")
    result = fresh_agent().run(resume=True)  # a new process would do the same
    assert result.status == "completed"
    first, second = sorted(by_name(exporter.get_finished_spans(), "invoke_agent"), key=lambda s: s.start_time)
    assert first.attributes["kaizen.run.status"] == "interrupted"
    assert second.attributes["kaizen.run.resumed"] is True
    (link,) = second.links
    assert (link.context.trace_id, link.context.span_id) == (first.context.trace_id, first.context.span_id)
    assert first.attributes["kaizen.run.id"] == second.attributes["kaizen.run.id"]


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint: decodes what arrives with opentelemetry-proto's classes."""

    received: list[ExportTraceServiceRequest] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_reach_a_real_otlp_http_receiver(tmp_path):
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = TracingHook.otlp(f"http://127.0.0.1:{server.server_address[1]}/v1/traces", service_name="obs-test")
        hooks = HookManager()
        hooks.register_hook(hook, HookPriority.HIGH)
        agent, result = run_agent(tmp_path, hooks)
        hook.force_flush()
        hook.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    spans, services = [], set()
    for request in Receiver.received:
        for resource_spans in request.resource_spans:
            services.update(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")
            for scope in resource_spans.scope_spans:
                spans.extend(scope.spans)
    assert services == {"obs-test"}
    names = sorted(span.name for span in spans)
    assert names.count("chat m-1") == 3 and names.count("invoke_agent obs-agent") == 1
    chat = next(span for span in spans if span.name == "chat m-1")
    attributes = {a.key: a.value for a in chat.attributes}
    assert attributes["gen_ai.provider.name"].string_value == "scripted"
    assert attributes["gen_ai.usage.input_tokens"].int_value in (120, 200, 260)
    run = next(span for span in spans if span.name.startswith("invoke_agent"))
    run_attributes = {a.key: a.value for a in run.attributes}
    assert run_attributes["kaizen.checkpoint.id"].string_value == result.checkpoint_id
    assert len({span.trace_id for span in spans}) == 1
    assert API_KEY.encode() not in b"".join(r.SerializeToString() for r in Receiver.received)
    assert DB_PASSWORD.encode() not in b"".join(r.SerializeToString() for r in Receiver.received)
