"""The spec's tracking API on the agent: each rule a user relies on, and the bad inputs."""

from __future__ import annotations

import json
import math
from datetime import datetime

import pytest

from kaizen.agents.autonomous.base import AutonomousConfig, BaseAutonomousAgent
from kaizen.core.autonomy.state import StateError


@pytest.fixture
def agent():
    return BaseAutonomousAgent(config=AutonomousConfig(llm_provider="scripted", model="m"))


def snapshot(agent):
    return json.dumps(agent._capture_state().to_dict() | {"checkpoint_id": "", "timestamp": "", "updated_at": ""},
                      sort_keys=True)


class TestAgentIdentity:
    def test_generated_ids_are_unique(self):
        ids = {BaseAutonomousAgent().agent_id for _ in range(50)}
        assert len(ids) == 50 and all(i.startswith("agent_") for i in ids)

    def test_given_id_is_kept_and_checked(self):
        assert BaseAutonomousAgent(agent_id="billing-bot").agent_id == "billing-bot"
        with pytest.raises(ValueError, match="agent_id"):
            BaseAutonomousAgent(agent_id="../escape")


class TestRecordApproval:
    def test_record_fields(self, agent):
        agent.record_approval("Bash", True, "once", {"command": "ls -la"})
        (record,) = agent._get_approval_history()
        assert set(record) == {"tool_name", "approved", "action", "timestamp", "input_summary"}
        assert record["input_summary"] == "{'command': 'ls -la'}"
        stamp = datetime.fromisoformat(record["timestamp"])
        assert stamp.utcoffset().total_seconds() == 0

    def test_defaults(self, agent):
        agent.record_approval("Bash", True)
        assert agent._get_approval_history()[0]["action"] == "once"
        assert agent._get_approval_history()[0]["input_summary"] == ""

    @pytest.mark.parametrize(
        "args, match",
        [
            (("Bash", True, "always"), "action"),
            (("Bash", True, "ONCE"), "action"),
            (("Bash", True, None), "action"),
            (("", True), "tool_name"),
            (("   ", True), "tool_name"),
            ((None, True), "tool_name"),
            ((42, True), "tool_name"),
            (("Bash", "yes"), "approved"),
            (("Bash", 1), "approved"),
            (("Bash", True, "deny_all"), "deny_all"),
            (("Bash", False, "all"), "'all'"),
        ],
    )
    def test_bad_input_is_rejected_and_changes_nothing(self, agent, args, match):
        agent.record_approval("Read", True)
        before = agent._get_approval_history()
        with pytest.raises((ValueError, TypeError), match=match):
            agent.record_approval(*args)
        assert agent._get_approval_history() == before

    def test_summary_is_bounded_and_configurable(self):
        agent = BaseAutonomousAgent(config=AutonomousConfig(summary_limit=50))
        agent.record_approval("Write", True, "once", {"content": "x" * 10_000})
        summary = agent._get_approval_history()[0]["input_summary"]
        assert len(summary) == 50 and summary.endswith("...")

    def test_odd_inputs_never_crash(self, agent):
        class Broken:
            def __repr__(self):
                raise RuntimeError("no repr")

        for value in [b"\x00\xffbytes", Broken(), object(), {1, 2}, ("t",), "s" * 2_000_000, {"a": {"b": {"c": [1]}}},
                      {("tuple", "key"): 1}, 3.5, float("nan")]:
            agent.record_approval("Tool", True, "once", value)
        assert all(len(r["input_summary"]) <= 300 for r in agent._get_approval_history())

    def test_secrets_are_redacted(self, agent):
        agent.record_approval("Bash", True, "once", {
            "command": "curl -H 'Authorization: Bearer abc123def456ghi' https://admin:hunter2@example.com",
            "password": "hunter2",
            "api_key": "sk-abcdefghijklmnopqrstuvwx",
            "env": "OPENAI_API_KEY=sk-proj-zzzzzzzzzzzzzzzzzzzz DB=postgresql://u:pw1234@db:5432/x",
        })
        summary = agent._get_approval_history()[0]["input_summary"]
        for secret in ("abc123def456ghi", "hunter2", "sk-abcdefghijklmnopqrstuvwx", "zzzzzzzz", "pw1234"):
            assert secret not in summary
        assert "[REDACTED]" in summary and "example.com" in summary

    def test_secret_at_the_cut_is_not_half_kept(self):
        agent = BaseAutonomousAgent(config=AutonomousConfig(summary_limit=40))
        agent.record_approval("Bash", True, "once", {"command": "x" * 20 + " --token abcdefghijklmnopqrstuvwxyz"})
        summary = agent._get_approval_history()[0]["input_summary"]
        assert "abcdef" not in summary


class TestRecordToolUsage:
    def test_counts_accumulate(self, agent):
        agent.record_tool_usage("Bash")
        agent.record_tool_usage("Bash")
        agent.record_tool_usage("Read", increment=5)
        assert agent._get_tool_usage_counts() == {"Bash": 2, "Read": 5}

    @pytest.mark.parametrize("increment", [0, -1, 1.5, 2.0, "3", True, False, None])
    def test_bad_increment_is_rejected(self, agent, increment):
        agent.record_tool_usage("Bash")
        with pytest.raises((ValueError, TypeError), match="increment"):
            agent.record_tool_usage("Bash", increment=increment)
        assert agent._get_tool_usage_counts() == {"Bash": 1}

    @pytest.mark.parametrize("name", ["", None, 3, "  "])
    def test_bad_tool_name_is_rejected(self, agent, name):
        with pytest.raises((ValueError, TypeError), match="tool_name"):
            agent.record_tool_usage(name)
        assert agent._get_tool_usage_counts() == {}


class TestWorkflowState:
    def test_partial_updates_keep_fields_and_stamp(self, agent):
        agent.update_workflow_state(run_id="run_1", status="running", current_node="a", execution_time=1.5, retry_count=2)
        first = agent._get_workflow_state()
        agent.update_workflow_state(status="completed")
        state = agent._get_workflow_state()
        assert state["run_id"] == "run_1" and state["current_node"] == "a" and state["retry_count"] == 2
        assert state["status"] == "completed"
        assert state["last_updated"] >= first["last_updated"]
        assert agent._capture_state().workflow_run_id == "run_1"

    @pytest.mark.parametrize(
        "kwargs, field",
        [
            ({"node_results": {"n": {1, 2}}}, "node_results"),
            ({"blob": object()}, "blob"),
            ({"when": datetime.now()}, "when"),
            ({"score": math.nan}, "score"),
            ({"node_results": {1: "x"}}, "node_results"),
            ({"run_id": 12}, "run_id"),
            ({"execution_time": -1.0}, "execution_time"),
            ({"execution_time": "1s"}, "execution_time"),
        ],
    )
    def test_non_json_values_are_rejected_naming_the_field(self, agent, kwargs, field):
        agent.update_workflow_state(status="running")
        before = agent._get_workflow_state()
        with pytest.raises((ValueError, TypeError), match=field):
            agent.update_workflow_state(status="failed", **kwargs)
        assert agent._get_workflow_state() == before


class TestCopies:
    def test_getters_return_deep_copies(self, agent):
        agent.record_approval("Bash", True)
        agent.record_tool_usage("Bash")
        agent.update_workflow_state(node_results={"n1": {"rows": [1, 2]}})
        agent._get_approval_history()[0]["approved"] = False
        agent._get_approval_history().clear()
        agent._get_tool_usage_counts()["Bash"] = 99
        agent._get_workflow_state()["node_results"]["n1"]["rows"].append(3)
        assert agent._get_approval_history()[0]["approved"] is True
        assert agent._get_tool_usage_counts() == {"Bash": 1}
        assert agent._get_workflow_state()["node_results"] == {"n1": {"rows": [1, 2]}}

    def test_caller_dict_changes_do_not_leak_in(self, agent):
        results = {"n1": {"rows": [1]}}
        agent.update_workflow_state(node_results=results)
        results["n1"]["rows"].append(2)
        assert agent._get_workflow_state()["node_results"] == {"n1": {"rows": [1]}}

    def test_captured_state_is_independent(self, agent):
        agent.record_approval("Bash", True)
        agent.update_workflow_state(node_results={"n": [1]})
        state = agent._capture_state()
        agent.record_approval("Read", True)
        agent.record_tool_usage("Read")
        agent.update_workflow_state(node_results={"n": [1, 2]})
        assert len(state.approval_history) == 1
        assert state.tool_usage_counts == {}
        assert state.workflow_state["node_results"] == {"n": [1]}
        with pytest.raises(TypeError):
            state.approval_history[0]["approved"] = False  # records are the audit trail: immutable
        state.workflow_state["node_results"]["n"].append(9)
        assert agent._get_workflow_state()["node_results"] == {"n": [1, 2]}


class TestRestore:
    def test_restore_roundtrip_through_json(self, agent):
        agent.record_approval("Write", True, "all", {"path": "a.txt"})
        agent.record_tool_usage("Write", 3)
        agent.update_workflow_state(run_id="r", status="running")
        document = json.loads(json.dumps(agent._capture_state().to_dict()))
        other = BaseAutonomousAgent()
        other._restore_state(document)
        assert other._get_approval_history() == agent._get_approval_history()
        assert other._get_tool_usage_counts() == {"Write": 3}
        assert other._get_workflow_state() == agent._get_workflow_state()
        assert other.agent_id == agent.agent_id
        assert other.runtime.tracker.standing_decision("Write") == "all"

    def test_invalid_state_changes_nothing(self, agent):
        agent.record_approval("Bash", True)
        before = snapshot(agent)
        document = agent._capture_state().to_dict()
        document["tool_usage_counts"] = {"Bash": "many"}
        with pytest.raises(StateError, match="tool_usage_counts"):
            agent._restore_state(document)
        assert snapshot(agent) == before


class TestSnapshotCopies:
    """A save's snapshot copies the workflow state shallowly while every value is a str, number or
    None (immutable), deeply once any is a list or dict: either way later changes never reach it."""

    def test_flat_then_nested_values_never_leak_between_snapshots_and_tracker(self, agent):
        tracker = agent.runtime.tracker
        agent.update_workflow_state(current_node="a", status="running", retries=2, ratio=0.5, note=None)
        flat = tracker.snapshot(view=True)["workflow_state"]
        agent.update_workflow_state(current_node="b", node_results={"n": [1]}, extra=[{"x": 1}])
        assert flat["current_node"] == "a" and "node_results" not in flat
        nested = tracker.snapshot(view=True)["workflow_state"]
        nested["node_results"]["n"].append(2)
        nested["extra"][0]["x"] = 9
        agent.update_workflow_state(current_node="c")  # later flat updates: still deep copies
        again = tracker.snapshot(view=True)["workflow_state"]
        assert again["node_results"] == {"n": [1]} and again["extra"] == [{"x": 1}]
        again["node_results"]["n"].append(3)
        assert agent._get_workflow_state()["node_results"] == {"n": [1]}

    def test_a_restored_nested_value_is_copied_deeply(self, agent):
        agent.update_workflow_state(node_results={"n": [1]})
        state = agent._capture_state()
        other = BaseAutonomousAgent(config=AutonomousConfig(llm_provider="scripted", model="m"))
        other._restore_state(state)
        snap = other.runtime.tracker.snapshot(view=True)["workflow_state"]
        snap["node_results"]["n"].append(2)
        assert other._get_workflow_state()["node_results"] == {"n": [1]}

    def test_named_and_free_values_are_checked_and_kept_as_before(self, agent):
        agent.update_workflow_state(run_id="r1", execution_time=3, flag=True, items=("a", 1))
        kept = agent._get_workflow_state()
        assert (kept["run_id"], kept["execution_time"], kept["flag"], kept["items"]) == ("r1", 3, True, ["a", 1])
        assert agent.runtime.tracker.workflow_run_id == "r1"
        with pytest.raises(StateError):
            agent.update_workflow_state(execution_time=2**70)
        with pytest.raises(StateError):
            agent.update_workflow_state(current_node=3)
