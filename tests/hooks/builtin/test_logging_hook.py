"""LoggingHook and SecureLoggingHook on a real run: readable lines, JSON lines, trace ids, no secrets."""

from __future__ import annotations

import json
import logging

import pytest
from obs_kit import API_KEY, DB_PASSWORD, LATE_TOKEN, assert_no_secret, run_agent
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kaizen.core.autonomy.hooks import HookContext, HookEvent, HookManager, HookPriority
from kaizen.core.autonomy.hooks.builtin import LoggingHook, TracingHook
from kaizen.core.autonomy.hooks.security.redaction import SecureLoggingHook, SensitiveDataRedactor

LOGGER = "kaizen.core.autonomy.hooks.builtin.logging_hook"


def lines(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == LOGGER]


def test_text_lines_name_every_event_with_agent_and_trace_id(tmp_path, caplog):
    hooks = HookManager()
    hooks.register_hook(LoggingHook())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        agent, _ = run_agent(tmp_path, hooks)
    logged = lines(caplog)
    assert logged[0].startswith("[pre_checkpoint_save]") or logged[0].startswith("[pre_agent_loop]")
    assert sum(line.startswith("[pre_model_call]") for line in logged) == 3
    assert all(f"Agent={agent.agent_id}" in line and "TraceID=" in line for line in logged)
    assert any("DataKeys=['arguments', 'call_id', 'tool_name']" in line for line in logged)
    assert_no_secret("\n".join(logged))


def test_json_lines_parse_and_carry_the_otel_trace_of_the_run(tmp_path, caplog):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hooks = HookManager()
    hooks.register_hook(TracingHook(tracer_provider=provider), HookPriority.HIGH)
    hooks.register_hook(LoggingHook(format="json"))
    with caplog.at_level(logging.INFO, logger=LOGGER):
        agent, _ = run_agent(tmp_path, hooks)
    entries = [json.loads(line) for line in lines(caplog)]
    assert {entry["event"] for entry in entries} == {"hook_event"}
    assert all(entry["agent_id"] == agent.agent_id and entry["level"] == "info" for entry in entries)
    assert all(entry["timestamp"].endswith("+00:00") and entry["trace_id"] for entry in entries)
    (run_span,) = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_agent")]
    traced = [entry for entry in entries if "otel_trace_id" in entry]
    assert {entry["event_type"] for entry in traced} >= {"pre_agent_loop", "pre_model_call", "pre_tool_use"}
    assert {entry["otel_trace_id"] for entry in traced} == {f"{run_span.context.trace_id:032x}"}
    tool = next(entry for entry in entries if entry["event_type"] == "pre_tool_use")
    assert tool["context_keys"] == ["arguments", "call_id", "tool_name"] and tool["context_field_count"] == 3
    assert_no_secret("\n".join(lines(caplog)))


@pytest.mark.parametrize("hook_class", [LoggingHook, SecureLoggingHook])
def test_full_payloads_at_debug_are_redacted_nested_and_after_the_cut(tmp_path, caplog, hook_class):
    hooks = HookManager()
    hooks.register_hook(hook_class(log_full_payloads=True))
    with caplog.at_level(logging.DEBUG, logger=hook_class.__module__):
        run_agent(tmp_path, hooks)
    logged = [record.getMessage() for record in caplog.records if record.name.startswith("kaizen.core.autonomy.hooks")]
    payloads = [line for line in logged if "Payload=" in line]
    assert any("'deploy'" in line and "[REDACTED]" in line for line in payloads)  # the nested password
    assert any("ship it with" in line for line in payloads)  # values are there, secrets are not
    assert all(len(line) < 2300 for line in payloads)  # 6000-character notes cut
    assert_no_secret("\n".join(logged))


def test_payload_values_stay_out_unless_asked_for(caplog):
    context = HookContext(HookEvent.PRE_AGENT_LOOP, "a1", None, {"inputs": {"prompt": "quarterly memo"}})
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert LoggingHook().record(context).success
    assert "quarterly memo" not in "\n".join(lines(caplog)) and "inputs" in "\n".join(lines(caplog))


def test_the_redactor_covers_secrets_and_pii_in_nested_values():
    redactor = SensitiveDataRedactor(redact_email=True)
    data = {"user": {"card": "4111 1111 1111 1111", "mail": "ann@example.com", "password": DB_PASSWORD},
            "headers": [f"Authorization: Bearer {LATE_TOKEN}"], "note": f"key {API_KEY}"}
    text = repr(redactor.redact_dict(data))
    assert_no_secret(text)
    assert "4111" not in text and "ann@example.com" not in text


def test_bad_options_are_refused_by_name():
    with pytest.raises(ValueError, match="log_level"):
        LoggingHook(log_level="LOUD")
    with pytest.raises(ValueError, match="format"):
        LoggingHook(format="xml")
