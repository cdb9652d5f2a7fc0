"""HookManager: ordering, isolation of failing hooks, timeouts, blocking, loops."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from kaizen.core.autonomy.hooks import (
    HookContext,
    HookEvent,
    HookManager,
    HookPriority,
    HookResult,
    UnknownHookHandleError,
)


@pytest.fixture
def manager() -> HookManager:
    return HookManager()


def recorder(log: list[str], label: str):
    def hook(context: HookContext) -> None:
        log.append(label)

    return hook


def test_priority_order_then_registration_order(manager):
    log: list[str] = []
    manager.register("pre_cycle", recorder(log, "normal-1"))
    manager.register("pre_cycle", recorder(log, "low"), HookPriority.LOW)
    manager.register("pre_cycle", recorder(log, "critical"), HookPriority.CRITICAL)
    manager.register("pre_cycle", recorder(log, "normal-2"), HookPriority.NORMAL)
    manager.register("pre_cycle", recorder(log, "high"), HookPriority.HIGH)

    outcome = manager.trigger_sync(HookEvent.PRE_CYCLE)

    assert log == ["critical", "high", "normal-1", "normal-2", "low"]
    assert len(outcome.results) == 5 and outcome.success


def test_async_and_sync_hooks_mix_in_priority_order(manager):
    log: list[str] = []

    async def async_hook(context):
        await asyncio.sleep(0)
        log.append("async")

    manager.register("post_cycle", recorder(log, "sync"), HookPriority.LOW)
    manager.register("post_cycle", async_hook, HookPriority.HIGH)
    manager.trigger_sync("post_cycle")
    assert log == ["async", "sync"]


def test_hooks_only_run_for_their_event(manager):
    log: list[str] = []
    manager.register("pre_tool_use", recorder(log, "pre"))
    manager.register("post_tool_use", recorder(log, "post"))
    manager.trigger_sync("post_tool_use")
    assert log == ["post"]


def test_context_carries_data_agent_and_metadata(manager):
    seen: list[HookContext] = []
    manager.register("pre_tool_use", seen.append)
    data = {"tool_name": "Bash", "arguments": {"command": "ls"}}

    outcome = manager.trigger_sync("pre_tool_use", data, agent_id="agent-7", metadata={"run": 1}, trace_id="t-1")

    (context,) = seen
    assert context.data.get("tool_name") == "Bash"
    assert context.data is not data  # the caller's dict is not handed out
    assert context.agent_id == "agent-7" and context.metadata == {"run": 1}
    assert context.trace_id == "t-1" == outcome.context.trace_id
    assert context.event is HookEvent.PRE_TOOL_USE


def test_string_events_everywhere_and_bad_event_lists_valid_ones(manager):
    handle = manager.register("approval_decided", lambda c: None)
    assert manager.registered("APPROVAL_DECIDED") == ["<lambda>"]
    manager.unregister(handle)
    for call in (
        lambda: manager.register("approval", lambda c: None),
        lambda: manager.trigger_sync("approval"),
        lambda: manager.on("approval"),
    ):
        with pytest.raises(ValueError, match="valid events: pre_tool_use"):
            call()


def test_register_validates_arguments(manager):
    with pytest.raises(TypeError, match="pre_cycle"):
        manager.register("pre_cycle", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout of hook 'h'"):
        manager.register("pre_cycle", lambda c: None, timeout=0, name="h")
    with pytest.raises(ValueError, match="priority"):
        manager.register("pre_cycle", lambda c: None, priority=9)


def test_unregister_removes_the_hook(manager):
    log: list[str] = []
    keep = manager.register("error", recorder(log, "keep"), name="keep")
    drop = manager.register("error", recorder(log, "drop"), name="drop")
    assert keep != drop
    manager.unregister(drop)
    manager.trigger_sync("error")
    assert log == ["keep"]
    with pytest.raises(UnknownHookHandleError, match=drop):
        manager.unregister(drop)


def test_decorator_registers_and_returns_function(manager):
    @manager.on("pre_agent_loop", priority=HookPriority.HIGH, name="greeter")
    def greet(context):
        return HookResult.ok({"hello": context.agent_id})

    assert callable(greet) and greet.__name__ == "greet"
    outcome = manager.trigger_sync("pre_agent_loop", agent_id="a")
    assert outcome.hook_names == ["greeter"]
    assert outcome.results[0].data == {"hello": "a"}


def test_objects_with_handle_method_are_accepted(manager):
    class AuditHook:
        def __init__(self):
            self.events: list[str] = []

        async def handle(self, context):
            self.events.append(context.event.value)
            return HookResult.ok()

    audit = AuditHook()
    manager.register("post_checkpoint_save", audit)
    assert manager.trigger_sync("post_checkpoint_save").success
    assert audit.events == ["post_checkpoint_save"]


def test_raising_hooks_are_isolated_and_logged(manager, caplog):
    log: list[str] = []

    def sync_boom(context):
        raise ValueError("sync kaboom")

    async def async_boom(context):
        raise RuntimeError("async kaboom")

    manager.register("pre_tool_use", sync_boom, HookPriority.CRITICAL)
    manager.register("pre_tool_use", async_boom, HookPriority.HIGH)
    manager.register("pre_tool_use", recorder(log, "after"), HookPriority.LOW)

    with caplog.at_level(logging.WARNING, logger="kaizen.hooks"):
        outcome = manager.trigger_sync("pre_tool_use", {"tool_name": "Read"})

    assert log == ["after"]
    first, second, third = outcome.results
    assert not first.success and "sync_boom" in first.error and "ValueError: sync kaboom" in first.error
    assert not second.success and "async_boom" in second.error and "RuntimeError: async kaboom" in second.error
    assert third.success
    assert not outcome.blocked and not outcome.success
    logged = " ".join(record.getMessage() for record in caplog.records if record.name == "kaizen.hooks")
    assert "sync kaboom" in logged and "async kaboom" in logged


def test_hook_returning_garbage_becomes_a_failure(manager):
    manager.register("post_cycle", lambda c: 42, name="answer")
    outcome = manager.trigger_sync("post_cycle")
    assert not outcome.success
    assert "returned int" in outcome.results[0].error and "answer" in outcome.results[0].error


def test_timeouts_of_blocking_sync_and_async_hooks_are_isolated(manager):
    release = threading.Event()
    log: list[str] = []

    def stuck_sync(context):
        release.wait(10)

    async def stuck_async(context):
        await asyncio.sleep(10)

    manager.register("pre_cycle", stuck_sync)
    manager.register("pre_cycle", stuck_async)
    manager.register("pre_cycle", recorder(log, "after"))
    try:
        started = time.monotonic()
        outcome = manager.trigger_sync("pre_cycle", timeout=0.2)
        elapsed = time.monotonic() - started
    finally:
        release.set()

    assert elapsed < 2.0
    assert log == ["after"]
    assert [r.success for r in outcome.results] == [False, False, True]
    assert "stuck_sync" in outcome.results[0].error and "timed out after 0.2 s" in outcome.results[0].error
    assert "timed out" in outcome.results[1].error
    assert outcome.results[0].duration_ms >= 150


def test_hook_ignoring_cancellation_still_times_out(manager):
    async def stubborn(context):
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.05)  # swallows the cancellation and keeps going a little

    manager.register("post_interrupt", stubborn)

    async def main():
        started = time.monotonic()
        outcome = await manager.atrigger("post_interrupt", timeout=0.1)
        return outcome, time.monotonic() - started

    outcome, elapsed = asyncio.run(main())
    assert elapsed < 1.0 and "timed out" in outcome.results[0].error


def test_hooks_own_timeout_overrides_the_triggers(manager):
    def slowish(context):
        time.sleep(0.3)

    manager.register("pre_checkpoint_save", slowish, name="generous", timeout=2.0)
    manager.register("pre_checkpoint_save", slowish, name="strict", timeout=0.05)
    outcome = manager.trigger_sync("pre_checkpoint_save", timeout=0.1)
    assert outcome.results[0].success
    assert not outcome.results[1].success and "timed out after 0.05 s" in outcome.results[1].error


def test_blocking_hook_blocks_but_later_hooks_still_run(manager):
    log: list[str] = []

    @manager.on("pre_tool_use", priority=HookPriority.CRITICAL)
    def deny_rm(context):
        if "rm -rf" in context.data["arguments"]["command"]:
            return HookResult.block("rm -rf is not allowed")
        return None

    manager.register("pre_tool_use", lambda c: HookResult.block("second opinion"), HookPriority.HIGH, name="other")
    manager.register("pre_tool_use", recorder(log, "audit"), HookPriority.LOW)

    outcome = manager.trigger_sync("pre_tool_use", {"tool_name": "Bash", "arguments": {"command": "rm -rf /"}})
    assert outcome.blocked
    assert outcome.reason == "rm -rf is not allowed" and outcome.blocked_by == "deny_rm"
    assert log == ["audit"]

    manager.unregister(manager.register("pre_tool_use", lambda c: None))  # registry still consistent
    outcome = manager.trigger_sync("pre_tool_use", {"tool_name": "Bash", "arguments": {"command": "ls"}})
    assert outcome.blocked and outcome.reason == "second opinion"


def test_trigger_inside_a_running_event_loop(manager):
    loop_threads: list[int] = []

    async def async_hook(context):
        loop_threads.append(threading.get_ident())
        return HookResult.block("stop")

    manager.register("pre_tool_use", async_hook)

    async def agent_step():
        caller = threading.get_ident()
        outcome = manager.trigger_sync("pre_tool_use", {"tool_name": "Write"})  # sync call from async code
        return caller, outcome

    caller, outcome = asyncio.run(agent_step())
    assert outcome.blocked and outcome.reason == "stop"
    assert loop_threads and loop_threads[0] != caller  # ran on a worker thread's loop


def test_atrigger_runs_sync_hooks_off_the_event_loop(manager):
    def blocking(context):
        time.sleep(0.3)

    manager.register("post_agent_loop", blocking)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        outcome = await manager.atrigger("post_agent_loop")
        task.cancel()
        return outcome, ticks

    outcome, ticks = asyncio.run(main())
    assert outcome.success
    assert ticks >= 5  # the loop kept running while the sync hook slept


def test_no_hooks_is_a_cheap_empty_outcome(manager):
    outcome = manager.trigger_sync("error", {"error": "x"})
    assert outcome.results == [] and not outcome.blocked and outcome.success
    assert outcome.context.data == {"error": "x"}


def test_concurrent_triggers_from_threads(manager):
    counter = {"n": 0}
    lock = threading.Lock()

    def count(context):
        with lock:
            counter["n"] += 1

    manager.register("pre_cycle", count)
    threads = [threading.Thread(target=manager.trigger_sync, args=("pre_cycle",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter["n"] == 8
