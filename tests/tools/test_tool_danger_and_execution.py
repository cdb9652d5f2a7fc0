"""Danger levels (the safe default for the world, the earlier names still accepted), which calls the
approval policy lets through, and how calls are executed: sync tools directly in the caller's
thread, async ones on the one bridge loop."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kaizen.core.autonomy.permissions import ApprovalPolicy, ApprovalRequest, console_approver
from kaizen.tools import InvalidToolError, Tool, ToolRegistry
from kaizen.tools.tool import DANGER_LEVELS, DEFAULT_DANGER


def noop() -> str:
    """Do nothing."""
    return "ok"


def test_danger_levels_and_the_default():
    assert DANGER_LEVELS == ("read_only", "idempotent", "side_effect") and DEFAULT_DANGER == "side_effect"
    assert Tool.from_function(noop).danger == "side_effect"
    registry = ToolRegistry()
    registry.tool(noop)
    assert registry.get("noop").danger == "side_effect" and not registry.get("noop").rerunnable
    for level, rerunnable in (("read_only", True), ("idempotent", True), ("side_effect", False)):
        tool = Tool.from_function(noop, danger=level)
        assert (tool.danger, tool.rerunnable) == (level, rerunnable)


@pytest.mark.parametrize("old, new", [("safe", "read_only"), ("dangerous", "side_effect")])
def test_earlier_danger_names_still_work(old, new):
    assert Tool.from_function(noop, danger=old).danger == new
    assert Tool("t", "", {"type": "object"}, old, noop).danger == new  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["risky", "", None, 1, "READ_ONLY"])
def test_unknown_danger_is_refused(bad):
    with pytest.raises(InvalidToolError, match="must be one of read_only, idempotent, side_effect"):
        Tool.from_function(noop, danger=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("danger, asked", [("read_only", False), ("safe", False), ("idempotent", True),
                                           ("side_effect", True)])
def test_allow_safe_runs_only_read_only_tools_without_asking(danger, asked):
    questions: list[str] = []
    policy = ApprovalPolicy("allow_safe", lambda request: questions.append(request.danger) or True)
    decision = policy.decide(ApprovalRequest("a1", "t", {}, danger), None)
    assert decision.approved and (questions == [danger]) is asked


def test_console_prompt_names_side_effects_as_dangerous(capsys):
    import io

    ask = console_approver(io.StringIO("a\n"), out := io.StringIO())
    ask(ApprovalRequest("a1", "Bash", {"command": "ls"}, "side_effect", None, "ls"))
    assert "wants to run Bash (dangerous):" in out.getvalue()


def test_sync_tool_runs_directly_in_the_calling_thread():
    seen: list[int] = []
    registry = ToolRegistry()

    @registry.tool(danger="read_only")
    def where() -> str:
        """Report the thread."""
        seen.append(threading.get_ident())
        return "here"

    assert registry.execute("where").output == "here"
    worker_result: list[object] = []
    thread = threading.Thread(target=lambda: worker_result.append(registry.execute("where")))
    thread.start()
    thread.join()
    assert seen == [threading.get_ident(), thread.ident]


def test_sync_tool_keeps_validation_bounding_and_errors():
    registry = ToolRegistry(max_output_chars=50)

    @registry.tool(danger="read_only")
    def shout(word: str) -> str:
        """Repeat a word loudly."""
        if word == "boom":
            raise RuntimeError("no")
        return word.upper() * 100

    assert registry.execute("shout", {"word": 3}).error.startswith("ToolArgumentError")
    assert registry.execute("shout", {"word": "boom"}).error == "RuntimeError: no"
    bounded = registry.execute("shout", {"word": "a"}).output
    assert bounded.startswith("A" * 50) and "truncated: 50 of 100 characters cut" in bounded


def test_async_tools_run_on_the_one_bridge_loop_from_sync_and_in_async_code():
    loops: list[int] = []
    registry = ToolRegistry()

    @registry.tool(danger="read_only")
    async def wait(ms: int) -> int:
        """Wait a little."""
        loops.append(id(asyncio.get_running_loop()))
        await asyncio.sleep(ms / 1000)
        return ms

    assert registry.execute("wait", {"ms": 1}).output == 1
    assert registry.execute("wait", {"ms": 2}).output == 2
    assert loops[0] == loops[1]  # the same loop both times: no new event loop per call

    async def caller() -> int:
        result = await registry.aexecute("wait", {"ms": 1})
        assert id(asyncio.get_running_loop()) == loops[-1]  # awaited in the caller's own loop
        return result.output

    assert asyncio.run(caller()) == 1


def test_aexecute_runs_sync_tools_off_the_event_loop():
    registry = ToolRegistry()

    @registry.tool(danger="read_only")
    def where() -> int:
        """Report the thread."""
        return threading.get_ident()

    async def caller() -> tuple[int, int]:
        return threading.get_ident(), (await registry.aexecute("where")).output

    loop_thread, tool_thread = asyncio.run(caller())
    assert loop_thread != tool_thread
