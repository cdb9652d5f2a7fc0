"""The original's hook API: BaseHook objects, trigger's list of results, unregister forms,
statistics, and loading hook files from a directory the caller names."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from kaizen.core.autonomy.hooks import BaseHook, HookContext, HookEvent, HookManager, HookPriority, HookResult
from kaizen.core.autonomy.hooks import types as hook_types


class Counter(BaseHook):
    def __init__(self, name="counter", fail=False):
        super().__init__(name)
        self.fail = fail
        self.errors = []

    async def handle(self, context):
        if self.fail:
            raise RuntimeError("boom")
        return HookResult(success=True, data={"agent": context.agent_id})

    async def on_error(self, error, context):
        self.errors.append(str(error))


def test_types_module_has_the_originals_names():
    assert hook_types.HookPriority is HookPriority and hook_types.HookEvent is HookEvent
    context = HookContext(HookEvent.PRE_TOOL_USE, "a1", None, {})
    assert isinstance(context.timestamp, float) and abs(context.timestamp - time.time()) < 5
    with pytest.raises(ValueError, match="must include error message"):
        HookResult(success=False)


def test_trigger_returns_results_in_priority_order_and_counts_stats():
    manager = HookManager()
    low, critical, broken = Counter("low"), Counter("critical"), Counter("broken", fail=True)
    manager.register(HookEvent.POST_TOOL_USE, low, HookPriority.LOW)
    manager.register("post_tool_use", critical, HookPriority.CRITICAL)
    manager.register(HookEvent.POST_TOOL_USE, broken)
    results = asyncio.run(manager.trigger(HookEvent.POST_TOOL_USE, "agent-7", {"x": 1}))
    assert [r.success for r in results] == [True, False, True]
    assert results[0].data == {"agent": "agent-7"} and "boom" in results[1].error
    assert broken.errors == ["boom"]  # on_error heard about it
    stats = manager.get_stats()
    assert stats["broken"]["failure_count"] == 1 and stats["low"]["success_count"] == 1
    stats["low"]["call_count"] = 99  # a copy
    assert manager.get_stats()["low"]["call_count"] == 1


def test_unregister_by_event_by_handler_and_by_handle():
    manager = HookManager()
    first, second = Counter("first"), Counter("second")
    manager.register("pre_cycle", first)
    manager.register("pre_cycle", second)
    handle = manager.register("post_cycle", first)
    assert manager.unregister("pre_cycle", first) == 1
    assert manager.registered("pre_cycle") == ["second"]
    assert manager.unregister(HookEvent.PRE_CYCLE) == 1 and manager.unregister("pre_cycle") == 0
    assert manager.unregister(handle) == 1
    with pytest.raises(KeyError):
        manager.unregister(handle)
    with pytest.raises(ValueError, match="Invalid event type"):
        manager.unregister("no_such_event")


def test_a_trigger_without_hooks_costs_no_trace_id_and_no_loop():
    manager = HookManager()
    outcome = manager.trigger_sync(HookEvent.PRE_TOOL_USE, {"tool_name": "Read"}, agent_id="a1")
    assert outcome.results == [] and outcome.context.data == {"tool_name": "Read"} and outcome.context.trace_id == ""
    with pytest.raises(ValueError):
        manager.trigger_sync("pre_tool_use", ["not", "a", "dict"])
    assert asyncio.run(manager.trigger("pre_tool_use", "a1", {})) == []


HOOK_FILE = '''
from kaizen.core.autonomy.hooks import BaseHook, HookEvent, HookResult
from kaizen.core.autonomy.hooks import BaseHook as Imported  # not defined here: never instantiated

class Audit(BaseHook):
    events = [HookEvent.PRE_TOOL_USE, "post_tool_use"]

    def __init__(self):
        super().__init__("audit-file")

    async def handle(self, context):
        return HookResult(success=True, data={"seen": context.event_type.value})

class NoEvents(BaseHook):
    def __init__(self):
        super().__init__("no-events")
'''


def test_discovery_registers_hooks_defined_in_the_named_directory(tmp_path):
    (tmp_path / "audit.py").write_text(HOOK_FILE)
    (tmp_path / "broken.py").write_text("raise RuntimeError('import-time failure')\n")
    manager = HookManager()
    assert asyncio.run(manager.discover_filesystem_hooks(tmp_path)) == 2
    assert manager.registered("pre_tool_use") == ["audit-file"] == manager.registered("post_tool_use")
    results = asyncio.run(manager.trigger("post_tool_use", "a1", {}))
    assert results[0].data == {"seen": "post_tool_use"}


def test_discovery_refuses_what_other_users_can_write(tmp_path):
    (tmp_path / "audit.py").write_text(HOOK_FILE)
    os.chmod(tmp_path / "audit.py", 0o666)
    manager = HookManager()
    with pytest.raises(PermissionError, match="writable by every user"):
        asyncio.run(manager.discover_filesystem_hooks(tmp_path))
    os.chmod(tmp_path / "audit.py", 0o644)
    os.chmod(tmp_path, 0o777)
    with pytest.raises(PermissionError, match="writable by every user"):
        asyncio.run(manager.discover_filesystem_hooks(tmp_path))
    assert manager.registered("pre_tool_use") == []


def test_discovery_needs_an_existing_directory(tmp_path):
    manager = HookManager()
    with pytest.raises(OSError, match="not found"):
        asyncio.run(manager.discover_filesystem_hooks(tmp_path / "missing"))
    (tmp_path / "file.py").write_text("")
    with pytest.raises(OSError, match="Not a directory"):
        asyncio.run(manager.discover_filesystem_hooks(tmp_path / "file.py"))
    with pytest.raises(TypeError):
        asyncio.run(manager.discover_filesystem_hooks(None))
