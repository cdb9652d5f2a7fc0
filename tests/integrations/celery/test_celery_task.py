"""The agent task without a broker: factory resolution, message checks, leases and retries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.integrations.celery import (
    AgentBusyError,
    AgentFactoryError,
    AgentMessageError,
    register_agent_task,
    resolve_factory,
    retry_delay,
    run_queued,
)
from kaizen.providers.scripted import ScriptedProvider
from kaizen.tools import ToolRegistry

celery = pytest.importorskip("celery")


def factory_for(tmp_path: Path, executed: list[str], storage: str | None = None) -> Any:
    def build(agent_id: str) -> BaseAutonomousAgent:
        registry = ToolRegistry()

        @registry.tool(danger="side_effect")
        def note(text: str) -> str:
            """Write a note."""
            executed.append(f"{agent_id}:{text}")
            return "noted"

        script = [{"content": "", "tool_calls": [{"id": "call_1", "name": "note", "arguments": {"text": "a"}}]}, "done"]
        config = AutonomousConfig(llm_provider="scripted", model="m", storage=storage or f"sqlite:///{tmp_path}/state.db",
                                  approval_policy="allow_all", lease_ttl=5.0)
        return BaseAutonomousAgent(config, agent_id=agent_id, provider=ScriptedProvider(script), tools=registry)

    return build


def test_a_completed_run_delivered_again_executes_nothing(tmp_path: Path) -> None:
    executed: list[str] = []
    build = factory_for(tmp_path, executed)
    first = run_queued(build, "agent-1", {"task": "x"}, worker_id="w1")
    again = run_queued(build, "agent-1", {"task": "x"}, worker_id="w2")
    assert executed == ["agent-1:a"]
    assert (first.status, again.status) == ("completed", "completed")
    assert again.run_id == first.run_id and again.outputs == first.outputs == {"result": "done"}
    assert again.worker_id == "w2"


def test_a_delivery_for_an_agent_another_worker_holds_does_not_run_it(tmp_path: Path) -> None:
    executed: list[str] = []
    build = factory_for(tmp_path, executed)
    with SyncStateManager(f"sqlite:///{tmp_path}/state.db").claim("agent-2", "host:1:task", 5.0, keepalive=False):
        with pytest.raises(AgentBusyError) as busy:
            run_queued(build, "agent-2", {"task": "x"}, worker_id="w2")
    assert executed == []
    assert busy.value.holder == "host:1:task" and "agent-2" in str(busy.value)
    assert 0.25 <= retry_delay(busy.value) <= 5.0
    # once the holder has let go, the next delivery runs it
    assert run_queued(build, "agent-2", {"task": "x"}, worker_id="w2").status == "completed"
    assert executed == ["agent-2:a"]


def test_a_long_lived_worker_does_not_keep_a_connection_per_run(tmp_path: Path) -> None:
    import secrets

    import psycopg
    from pg import DSN, drop_schema, new_schema, require_server, store_url

    require_server()
    schema, tag = new_schema(), "kz_celery_" + secrets.token_hex(4)
    executed: list[str] = []
    build = factory_for(tmp_path, executed, f"{store_url(schema)}&application_name={tag}")
    try:
        for i in range(8):
            assert run_queued(build, f"agent-{i}", {"task": "x"}, worker_id="w").status == "completed"
        # A connection's server process leaves pg_stat_activity a moment after the client closed it
        # (the client's side is already in TIME-WAIT); one kept open never does. Each look is its own
        # transaction: within one, pg_stat_activity answers from the same snapshot.
        deadline = time.monotonic() + 10
        with psycopg.connect(DSN, autocommit=True) as conn:
            while True:
                open_now = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                        (tag,)).fetchone()
                if open_now == (0,) or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        assert open_now == (0,) and len(executed) == 8
    finally:
        drop_schema(schema)


def test_a_run_that_loses_its_lease_midway_is_retried_not_reported_failed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    other = SyncStateManager(url)

    def build(agent_id: str) -> BaseAutonomousAgent:
        registry = ToolRegistry()

        @registry.tool(danger="side_effect")
        def note(text: str) -> str:
            """Meanwhile another worker takes the agent over (as after a pause longer than the TTL)."""
            other.storage.release_lease(agent_id, "w1")
            other.claim(agent_id, "host:2:other", 30.0, keepalive=False)
            time.sleep(0.5)  # the runner's next renewal (every TTL/3) finds the lease taken
            return "noted"

        script = [{"content": "", "tool_calls": [{"id": "call_1", "name": "note", "arguments": {"text": "a"}}]},
                  {"content": "", "tool_calls": [{"id": "call_2", "name": "note", "arguments": {"text": "b"}}]},
                  "done"]
        config = AutonomousConfig(llm_provider="scripted", model="m", storage=url, approval_policy="allow_all")
        return BaseAutonomousAgent(config, agent_id=agent_id, provider=ScriptedProvider(script), tools=registry)

    with pytest.raises(AgentBusyError) as busy:
        run_queued(build, "agent-5", {"task": "x"}, worker_id="w1", lease_ttl=0.6)
    assert busy.value.holder == "host:2:other"


def test_retry_waits_for_the_rest_of_the_lease_at_most_one_ttl() -> None:
    now = time.time()
    soon = AgentBusyError("a", "w", now + 2.0, lease_ttl=10.0)
    assert 2.25 <= retry_delay(soon, now) <= 2.5
    stale = AgentBusyError("a", "w", now - 50.0, lease_ttl=10.0)
    assert 0.25 <= retry_delay(stale, now) <= 0.5
    far = AgentBusyError("a", "w", now + 500.0, lease_ttl=10.0)
    assert retry_delay(far, now) == 10.0
    unknown = AgentBusyError("a", "another worker", 0.0, "lease lost", lease_ttl=4.0)
    assert retry_delay(unknown, now) == 4.0


def test_factories_by_dotted_path_and_their_errors() -> None:
    assert resolve_factory("os.path:join") is resolve_factory("os.path.join")
    with pytest.raises(AgentFactoryError, match="cannot import module 'no_such_module_kz'"):
        resolve_factory("no_such_module_kz:build")
    with pytest.raises(AgentFactoryError, match="has no callable 'nothing'"):
        resolve_factory("os.path:nothing")
    with pytest.raises(AgentFactoryError, match="package.module:function"):
        resolve_factory("build")


def test_a_factory_that_builds_another_agent_is_refused(tmp_path: Path) -> None:
    build = factory_for(tmp_path, [])
    with pytest.raises(AgentFactoryError, match="asked for agent 'agent-3' but built 'other'"):
        run_queued(lambda _id: build("other"), "agent-3", {}, worker_id="w")
    with pytest.raises(AgentFactoryError, match="returned dict"):
        run_queued(lambda _id: {}, "agent-3", {}, worker_id="w")


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                           lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8)


@given(st.dictionaries(st.text(), json_values))
def test_any_json_object_is_accepted_as_inputs(inputs: dict[str, Any]) -> None:
    from kaizen.integrations.celery.worker import check_message

    assert check_message("agent", inputs) == inputs


@pytest.mark.parametrize("agent_id, inputs", [("", {}), (7, {}), ("a", ["x"]), ("a", "text"), ("a", {1: "x"})])
def test_malformed_messages_are_named(agent_id: Any, inputs: Any) -> None:
    from kaizen.integrations.celery.worker import check_message

    with pytest.raises(AgentMessageError):
        check_message(agent_id, inputs)


def test_the_task_is_registered_for_at_least_once_delivery(tmp_path: Path) -> None:
    app = celery.Celery("kaizen_test_settings")
    task = register_agent_task(app, "celery_ledger_app:build_agent", name="kaizen.test_run")
    assert task.name == "kaizen.test_run" and app.tasks["kaizen.test_run"].acks_late
    assert task.acks_late and task.reject_on_worker_lost
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.accept_content == ["json"] and task.serializer == "json"


def test_an_eager_task_returns_the_outcome(tmp_path: Path) -> None:
    executed: list[str] = []
    app = celery.Celery("kaizen_test_eager")
    app.conf.task_always_eager = True
    task = register_agent_task(app, factory_for(tmp_path, executed))
    outcome = task.delay("agent-4", {"task": "x"}).get()
    assert outcome["status"] == "completed" and outcome["tool_calls"] == 1 and executed == ["agent-4:a"]
