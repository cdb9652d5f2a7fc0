"""Without the observability extra, the hooks that need it say which package to install."""

from __future__ import annotations

import importlib
import sys

import pytest

from kaizen.core.autonomy.hooks import HookManager

HOOKS = "kaizen.core.autonomy.hooks.builtin"


@pytest.mark.parametrize(("name", "package"), [("MetricsHook", "prometheus_client"),
                                                ("TracingHook", "opentelemetry.trace")])
def test_a_missing_library_is_named_with_the_extra(monkeypatch, name, package):
    module = {"MetricsHook": "metrics_hook", "TracingHook": "tracing_hook"}[name]
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"{HOOKS}.{module}", raising=False)
    builtin = importlib.import_module(HOOKS)
    with pytest.raises(ImportError, match=r"kaizen-state\[observability\]"):
        getattr(builtin, name)


def test_json_logging_without_structlog_names_the_extra(monkeypatch):
    from kaizen.core.autonomy.hooks.builtin import LoggingHook

    monkeypatch.setitem(sys.modules, "structlog", None)
    with pytest.raises(ImportError, match=r"structlog.*kaizen-state\[observability\]"):
        LoggingHook(format="json")
    assert LoggingHook().format == "text"  # text lines need nothing extra


def test_the_hooks_system_itself_needs_no_extra(monkeypatch):
    for package in ("prometheus_client", "opentelemetry.trace", "structlog"):
        monkeypatch.setitem(sys.modules, package, None)
    assert HookManager().trigger_sync("pre_cycle").results == []
    from kaizen.core.autonomy.hooks import CostTrackingHook, PerformanceProfilerHook

    assert CostTrackingHook().name and PerformanceProfilerHook().name
