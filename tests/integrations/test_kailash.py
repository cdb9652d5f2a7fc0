"""Mirroring real Kailash workflow runs into an agent's workflow state.

Every workflow here is a real Kailash workflow run by a real LocalRuntime;
the only stand-in is the agent's ``update_workflow_state``, replaced by a plain
recording function with the same signature. Sockets are blocked for the whole
module, so a run that tried to reach the network would fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import importlib.util
import math
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state.jsonsafe import checked_json_copy
from kaizen.integrations.errors import KailashNotInstalledError, WorkflowExecutionError
from kaizen.integrations.kailash import (
    WorkflowRun,
    execute_workflow,
    json_safe_summary,
    workflow_tool_spec,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
HAS_KAILASH = importlib.util.find_spec("kailash") is not None
requires_kailash = pytest.mark.skipif(not HAS_KAILASH, reason="kailash is not installed")


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any attempt to resolve or connect (asyncio's local socketpair is fine)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME, to see whether Kailash writes its tracking DB (~/.kailash)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    return tmp_path


class Recorder:
    """Collects update calls; ``update_workflow_state`` has the agent's signature."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.state: dict[str, Any] = {}

    def update_workflow_state(
        self,
        run_id: str | None = None,
        status: str | None = None,
        current_node: str | None = None,
        node_results: dict | None = None,
        execution_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        fields = {
            "run_id": run_id,
            "status": status,
            "current_node": current_node,
            "node_results": node_results,
            "execution_time": execution_time,
            **kwargs,
        }
        fields = {name: value for name, value in fields.items() if value is not None}
        # What the agent's state core would accept: strict JSON, no NaN, str keys.
        checked_json_copy(fields, "update_workflow_state")
        orjson.dumps(fields)
        self.calls.append(fields)
        self.state.update(fields)

    def values(self, name: str) -> list[Any]:
        return [call[name] for call in self.calls if name in call]


def chain_builder(*, total_code: str = "result = {'sum': sum(data['values'])}") -> Any:
    """load -> total -> report, three PythonCodeNodes fed by runtime parameters."""
    from kailash.workflow.builder import WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "load", {"code": "result = {'values': list(range(0, count * step, step))}"})
    builder.add_node("PythonCodeNode", "total", {"code": total_code})
    builder.add_node("PythonCodeNode", "report", {"code": "result = {'text': label + ': ' + str(s['sum'])}"})
    builder.add_connection("load", "result", "total", "data")
    builder.add_connection("total", "result", "report", "s")
    return builder


CHAIN_PARAMETERS = {"load": {"count": 4, "step": 3}, "report": {"label": "total"}}


def recording_runtime() -> Any:
    """A real LocalRuntime that keeps what its execute() returned."""
    from kailash.runtime.local import LocalRuntime

    class RecordingRuntime(LocalRuntime):
        returned: list[tuple[dict, str | None]]

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            outcome = super().execute(*args, **kwargs)
            self.returned.append(outcome)
            return outcome

    runtime = RecordingRuntime()
    runtime.returned = []
    return runtime


def exception_chain(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


# --------------------------------------------------------------------------
# Successful runs
# --------------------------------------------------------------------------


@requires_kailash
def test_chain_run_is_mirrored_node_by_node(home: Path) -> None:
    workflow = chain_builder().build()
    recorder = Recorder()
    with recording_runtime() as runtime:
        outcome = execute_workflow(
            workflow, CHAIN_PARAMETERS, update=recorder.update_workflow_state, runtime=runtime
        )
        (runtime_results, runtime_run_id), = runtime.returned

    assert isinstance(outcome, WorkflowRun)
    assert outcome.status == "completed"
    assert outcome.run_id == runtime_run_id and runtime_run_id
    assert outcome.results is runtime_results
    assert outcome.results["total"] == {"result": {"sum": 18}}
    assert outcome.execution_time > 0

    calls = recorder.calls
    # Start: running, with the workflow's identity and a fresh node_results.
    assert calls[0] == {
        "status": "running",
        "node_results": {},
        "workflow_id": workflow.workflow_id,
        "workflow_name": workflow.name,
    }
    # The runtime's run id arrives before any node starts.
    assert calls[1] == {"run_id": runtime_run_id}
    # Then per node: current_node on start, the grown node_results on finish.
    per_node = [
        ("current_node", call["current_node"])
        if "current_node" in call
        else ("node_results", list(call["node_results"]))
        for call in calls[2:-1]
    ]
    assert per_node == [
        ("current_node", "load"),
        ("node_results", ["load"]),
        ("current_node", "total"),
        ("node_results", ["load", "total"]),
        ("current_node", "report"),
        ("node_results", ["load", "total", "report"]),
    ]
    assert recorder.values("status") == ["running", "completed"]
    assert recorder.values("current_node") == ["load", "total", "report"]

    final = calls[-1]
    assert set(final) == {"status", "run_id", "node_results", "execution_time"}
    assert final["status"] == "completed"
    assert final["run_id"] == runtime_run_id
    assert final["execution_time"] == outcome.execution_time > 0
    results = final["node_results"]
    assert results == outcome.node_results
    assert results["load"]["output"] == {"result": {"values": [0, 3, 6, 9]}}
    assert results["total"]["output"] == {"result": {"sum": 18}}
    assert results["report"]["output"] == {"result": {"text": "total: 18"}}
    for node_id in ("load", "total", "report"):
        assert results[node_id]["status"] == "completed"
        assert results[node_id]["node_type"] == "PythonCodeNode"
        assert results[node_id]["execution_time"] >= 0

    assert recorder.state["status"] == "completed"
    assert recorder.state["run_id"] == runtime_run_id
    assert recorder.state["current_node"] == "report"
    # Tracking stayed in memory: the runtime's default would create ~/.kailash.
    assert not (home / ".kailash").exists()


@requires_kailash
def test_mirrors_into_the_real_state_tracker() -> None:
    # The agent's update_workflow_state delegates to StateTracker, which
    # validates types and JSON strictly and replaces each field it is given.
    from kaizen.core.autonomy.state.tracker import StateTracker

    tracker = StateTracker()
    outcome = execute_workflow(chain_builder(), CHAIN_PARAMETERS, update=tracker.update_workflow_state)
    state = tracker.workflow_state()
    assert tracker.workflow_run_id == state["run_id"] == outcome.run_id
    assert state["status"] == "completed"
    assert state["current_node"] == "report"
    assert state["node_results"] == outcome.node_results
    assert state["execution_time"] == outcome.execution_time

    failing = chain_builder(total_code="result = {'sum': sum(data['values']) / divisor}")
    with pytest.raises(WorkflowExecutionError):
        execute_workflow(failing, {**CHAIN_PARAMETERS, "total": {"divisor": 0}}, update=tracker.update_workflow_state)
    state = tracker.workflow_state()
    assert state["status"] == "failed"
    assert state["failed_node"] == "total"
    assert state["error_type"] == "ZeroDivisionError"
    assert list(state["node_results"]) == ["load", "total"]

    # A later successful run clears the earlier failure's fields.
    execute_workflow(chain_builder(), CHAIN_PARAMETERS, update=tracker.update_workflow_state)
    state = tracker.workflow_state()
    assert state["status"] == "completed"
    assert state["error_message"] is None and state["error_type"] is None and state["failed_node"] is None
    assert list(state["node_results"]) == ["load", "total", "report"]


@requires_kailash
def test_builder_is_accepted_and_own_runtime_is_used(home: Path) -> None:
    recorder = Recorder()
    outcome = execute_workflow(chain_builder(), CHAIN_PARAMETERS, update=recorder.update_workflow_state)
    assert outcome.results["report"] == {"result": {"text": "total: 18"}}
    assert recorder.state["run_id"] == outcome.run_id
    assert recorder.values("status") == ["running", "completed"]
    assert not (home / ".kailash").exists()


@requires_kailash
def test_runs_from_inside_an_event_loop() -> None:
    # LocalRuntime.execute moves to a worker thread when a loop is running;
    # the hooks then fire on that thread while the caller waits.
    recorder = Recorder()

    async def agent_step() -> WorkflowRun:
        return execute_workflow(chain_builder(), CHAIN_PARAMETERS, update=recorder.update_workflow_state)

    outcome = asyncio.run(agent_step())
    assert outcome.results["total"] == {"result": {"sum": 18}}
    assert recorder.values("current_node") == ["load", "total", "report"]
    assert recorder.values("status") == ["running", "completed"]


@requires_kailash
def test_cycle_iterations_are_mirrored_under_the_node_id() -> None:
    # The cyclic runner tracks each pass as "<node>_cycle_<id>_iteration_<n>".
    from kailash.workflow.builder import WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "start", {"code": "result = {'count': 0}"})
    builder.add_node("PythonCodeNode", "counter", {"code": "result = {'count': count + 1, 'done': count + 1 >= 3}"})
    builder.add_connection("start", "result.count", "counter", "count")
    workflow = builder.build()
    workflow.create_cycle("loop").connect(
        "counter", "counter", mapping={"result.count": "count"}
    ).max_iterations(5).converge_when("done == True").build()
    recorder = Recorder()

    outcome = execute_workflow(workflow, update=recorder.update_workflow_state)

    assert outcome.results["counter"] == {"result": {"count": 3, "done": True}}
    assert recorder.values("current_node") == ["start", "counter", "counter", "counter"]
    iterations = [
        call["node_results"]["counter"]["iteration"]
        for call in recorder.calls[2:-1]
        if "counter" in call.get("node_results", {})
    ]
    assert iterations == [1, 2, 3]
    assert recorder.state["node_results"]["counter"]["output"] == {"result": {"count": 3, "done": True}}
    assert recorder.values("status") == ["running", "completed"]


@requires_kailash
def test_large_outputs_are_summarized_within_the_bound() -> None:
    from kailash.workflow.builder import WorkflowBuilder

    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "big", {"code": "result = {'blob': 'x' * 100000, 'ratio': float('nan')}"})
    recorder = Recorder()
    outcome = execute_workflow(builder, update=recorder.update_workflow_state, max_output_chars=200)
    output = recorder.state["node_results"]["big"]["output"]
    assert len(orjson.dumps(output).decode()) <= 200
    assert output["result"]["blob"].endswith("…")
    assert len(outcome.results["big"]["result"]["blob"]) == 100000  # raw results untouched


# --------------------------------------------------------------------------
# Failing runs
# --------------------------------------------------------------------------


@requires_kailash
def test_node_failure_mid_chain_is_mirrored_and_raised() -> None:
    # "total" has a dependent, so LocalRuntime itself stops and raises.
    builder = chain_builder(total_code="result = {'sum': sum(data['values']) / divisor}")
    workflow = builder.build()
    recorder = Recorder()
    parameters = {**CHAIN_PARAMETERS, "total": {"divisor": 0}}

    with pytest.raises(WorkflowExecutionError) as caught:
        execute_workflow(workflow, parameters, update=recorder.update_workflow_state)

    error = caught.value
    assert error.failed_node == "total"
    assert error.error_type == "ZeroDivisionError"
    assert "'total'" in str(error) and workflow.name in str(error)
    # The runtime's own exception is the cause; the node's error is in its chain.
    assert type(error.__cause__).__module__.startswith("kailash")
    assert any(isinstance(exc, ZeroDivisionError) for exc in exception_chain(error.__cause__))

    assert recorder.values("status") == ["running", "failed"]
    assert recorder.values("current_node") == ["load", "total"]
    final = recorder.calls[-1]
    assert final["status"] == "failed"
    assert final["error_type"] == "ZeroDivisionError"
    assert "division by zero" in final["error_message"]
    assert final["failed_node"] == "total"
    assert final["execution_time"] > 0
    assert final["run_id"] == recorder.calls[1]["run_id"] == error.run_id
    # Earlier results are preserved; the failed node says why; "report" never ran.
    assert final["node_results"]["load"] == recorder.calls[3]["node_results"]["load"]
    assert final["node_results"]["load"]["output"] == {"result": {"values": [0, 3, 6, 9]}}
    assert final["node_results"]["total"]["status"] == "failed"
    assert "division by zero" in final["node_results"]["total"]["error"]
    assert "report" not in final["node_results"]


@requires_kailash
def test_failing_leaf_node_fails_the_run_although_kailash_continues() -> None:
    # A failing node without dependents does not make LocalRuntime raise: it
    # returns {"failed": True, ...} for it and calls the run completed.
    builder = chain_builder()
    builder.add_node("PythonCodeNode", "audit", {"code": "raise ValueError('audit rejected ' + str(s['sum']))"})
    builder.add_connection("total", "result", "audit", "s")
    recorder = Recorder()

    with pytest.raises(WorkflowExecutionError) as caught:
        execute_workflow(builder, CHAIN_PARAMETERS, update=recorder.update_workflow_state)

    error = caught.value
    assert error.failed_node == "audit"
    assert error.error_type == "ValueError"
    assert error.error_message == "audit rejected 18"
    assert isinstance(error.__cause__, Exception)
    assert any(isinstance(exc, ValueError) for exc in exception_chain(error.__cause__))

    final = recorder.calls[-1]
    assert recorder.values("status") == ["running", "failed"]
    assert final["failed_node"] == "audit"
    assert final["error_type"] == "ValueError"
    assert final["run_id"] == error.run_id
    assert final["node_results"]["audit"]["status"] == "failed"
    assert {"load", "total"} <= {
        node for node, entry in final["node_results"].items() if entry["status"] == "completed"
    }


@requires_kailash
def test_failing_update_never_breaks_the_runtime() -> None:
    calls: list[dict[str, Any]] = []

    def update(**fields: Any) -> None:
        calls.append(fields)
        if "node_results" in fields and fields["node_results"]:
            raise RuntimeError("state store is read-only")

    with recording_runtime() as runtime:
        with pytest.raises(RuntimeError, match="read-only") as caught:
            execute_workflow(chain_builder(), CHAIN_PARAMETERS, update=update, runtime=runtime)
        (results, _), = runtime.returned
    assert any("workflow itself completed" in note for note in caught.value.__notes__)
    # Mirroring stopped at the first failure; the runtime ran all nodes anyway.
    assert [call.get("current_node") for call in calls if "current_node" in call] == ["load"]
    assert results["report"] == {"result": {"text": "total: 18"}}


@requires_kailash
def test_rejects_what_is_not_a_workflow() -> None:
    with pytest.raises(TypeError, match="WorkflowBuilder"):
        execute_workflow({"nodes": []}, update=Recorder().update_workflow_state)
    with pytest.raises(TypeError, match="update"):
        execute_workflow(chain_builder(), update=None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Workflow as an LLM tool
# --------------------------------------------------------------------------


@requires_kailash
def test_workflow_tool_spec_runs_with_mirroring() -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "step": {"type": "integer"},
            "label": {"type": "string"},
        },
        "required": ["count", "step", "label"],
    }
    recorder = Recorder()
    tool = workflow_tool_spec(
        "sum_range", "Sum count values spaced by step.", chain_builder(), schema, update=recorder.update_workflow_state
    )
    name, description, parameters_schema, run = tool
    assert (name, description, parameters_schema) == ("sum_range", "Sum count values spaced by step.", schema)
    assert parameters_schema is not schema

    # Tool arguments arrive flat, as an LLM sends them.
    output = run(count=4, step=3, label="sum")
    assert output["report"] == {"result": {"text": "sum: 18"}}
    orjson.dumps(output)
    assert recorder.values("status") == ["running", "completed"]
    assert recorder.values("current_node") == ["load", "total", "report"]

    second = run(count=2, step=5, label="again")
    assert second["report"] == {"result": {"text": "again: 5"}}
    run_ids = recorder.values("run_id")
    assert len(set(run_ids)) == 2  # one fresh runtime run id per call


@requires_kailash
def test_workflow_tool_spec_validates_its_definition() -> None:
    update = Recorder().update_workflow_state
    with pytest.raises(ValueError, match="tool name"):
        workflow_tool_spec("sum range", "x", chain_builder(), update=update)
    with pytest.raises(ValueError, match="description"):
        workflow_tool_spec("sum_range", " ", chain_builder(), update=update)
    with pytest.raises(ValueError, match="object"):
        workflow_tool_spec("sum_range", "x", chain_builder(), {"type": "string"}, update=update)
    name, _, schema, _ = workflow_tool_spec("sum_range", "x", chain_builder(), update=update)
    assert schema == {"type": "object", "properties": {}, "additionalProperties": True}


# --------------------------------------------------------------------------
# Without Kailash installed
# --------------------------------------------------------------------------


def test_module_imports_without_kailash_and_says_how_to_install() -> None:
    script = """
import sys
sys.modules["kailash"] = None  # makes "import kailash" fail as if not installed
import kaizen.integrations.kailash as mirror
assert not [name for name, mod in sys.modules.items() if mod is not None and name.split(".")[0] == "kailash"]
print(mirror.json_safe_summary({"ok": [1, 2.5, None]}))
try:
    mirror.execute_workflow(object(), update=lambda **kw: None)
except ImportError as exc:
    print(type(exc).__name__, exc)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "{'ok': [1, 2.5, None]}"
    assert lines[1].startswith("KailashNotInstalledError")
    assert 'pip install "kaizen-state[kailash]"' in lines[1]
    assert issubclass(KailashNotInstalledError, ImportError)


# --------------------------------------------------------------------------
# json_safe_summary
# --------------------------------------------------------------------------


def json_len(value: Any) -> int:
    return len(orjson.dumps(value).decode("utf-8"))


class Opaque:
    def __str__(self) -> str:
        return "opaque thing"


class BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@dataclasses.dataclass
class Point:
    x: int
    label: Any


any_text = st.text(st.characters(exclude_categories=()), max_size=40)  # includes lone surrogates
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**300),
    st.integers(min_value=-(2**300), max_value=-(2**63) - 1),
    st.floats(),  # NaN and infinities included
    any_text,
    st.binary(max_size=40),
    st.complex_numbers(allow_nan=True),
    st.decimals(),
    st.datetimes(),
    st.uuids(),
    st.builds(Opaque),
    st.builds(BrokenStr),
    st.builds(ValueError, any_text),
)
keys = st.one_of(any_text, st.integers(), st.floats(allow_nan=False), st.none(), st.booleans(), st.tuples(st.integers()))
hashables = st.one_of(st.integers(), any_text, st.floats(allow_nan=False), st.none())
nested_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=8),
        st.tuples(children, children),
        st.dictionaries(keys, children, max_size=8),
        st.frozensets(hashables, max_size=8),
        st.builds(Point, st.integers(), children),
    ),
    max_leaves=40,
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=nested_values, max_chars=st.integers(min_value=16, max_value=1500))
def test_summary_of_any_value_is_bounded_json(value: Any, max_chars: int) -> None:
    summary = json_safe_summary(value, max_chars=max_chars)
    text = orjson.dumps(summary).decode("utf-8")
    assert len(text) <= max_chars
    assert checked_json_copy(summary, "summary") == summary  # what the state core accepts


@settings(max_examples=100, deadline=None, database=None)
@given(value=json_values)
def test_json_values_that_fit_are_returned_unchanged(value: Any) -> None:
    max_chars = max(json_len(value), 16)
    assert json_safe_summary(value, max_chars=max_chars) == value


@settings(max_examples=100, deadline=None, database=None)
@given(value=json_values, max_chars=st.integers(min_value=16, max_value=200))
def test_cut_json_values_stay_within_the_bound(value: Any, max_chars: int) -> None:
    summary = json_safe_summary(value, max_chars=max_chars)
    assert json_len(summary) <= max_chars
    if json_len(value) <= max_chars:
        assert summary == value


def test_summary_special_values() -> None:
    assert json_safe_summary([math.nan, math.inf, -math.inf]) == ["NaN", "Infinity", "-Infinity"]
    assert json_safe_summary(2**64) == str(2**64)
    assert json_safe_summary(2**64 - 1) == 2**64 - 1
    assert json_safe_summary((1, {2}, frozenset())) == [1, [2], []]
    assert json_safe_summary({1: "a", None: "b", (1, 2): "c"}) == {"1": "a", "None": "b", "(1, 2)": "c"}
    assert json_safe_summary(Point(1, decimal.Decimal("1.5"))) == {"x": 1, "label": "1.5"}
    assert json_safe_summary(ValueError("bad")) == "ValueError: bad"
    assert json_safe_summary(BrokenStr()) == "<unprintable BrokenStr>"
    assert json_safe_summary(b"\x00ab") == "b'\\x00ab'"
    assert json_safe_summary(datetime.date(2024, 1, 2)) == "2024-01-02"
    assert json_safe_summary(uuid.UUID(int=0)) == "00000000-0000-0000-0000-000000000000"
    assert json_safe_summary("a\ud800b") == "a\\ud800b"  # lone surrogate made visible, valid UTF-8


def test_summary_cuts_large_values_with_markers() -> None:
    text = json_safe_summary("x" * 10_000, max_chars=50)
    assert text.endswith("…") and json_len(text) <= 50
    items = json_safe_summary(list(range(10_000)), max_chars=60)
    assert items[-1].startswith("…+") and items[-1].endswith(" more")
    assert items[:3] == [0, 1, 2] and json_len(items) <= 60
    mapping = json_safe_summary({f"k{i}": i for i in range(1000)}, max_chars=60)
    assert mapping["…"].endswith(" more") and json_len(mapping) <= 60
    assert json_len(json_safe_summary(10**5000, max_chars=40)) <= 40  # beyond int->str limit


def test_summary_survives_cycles_and_deep_nesting() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    assert json_safe_summary(loop) == [1, "<cycle: list>"]
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    summary = json_safe_summary(deep, max_chars=500)
    assert json_len(summary) <= 500
    assert checked_json_copy(summary, "deep") == summary


def test_summary_bound_is_validated() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        json_safe_summary("x", max_chars=3)
    with pytest.raises(TypeError):
        json_safe_summary("x", max_chars=True)  # type: ignore[arg-type]
