"""Answers to interrupt() land in the thread's hash-chained approval history."""

from __future__ import annotations

import lg_graphs as graphs
import pytest
from click.testing import CliRunner
from langgraph.types import Command

from kaizen.cli import main
from kaizen.core.autonomy.state import SyncStateManager
from kaizen.integrations.langgraph import AuditRecordError, KaizenSaver


def approvals(saver, thread):
    state = SyncStateManager(saver.store).load_latest(thread)
    return [] if state is None else [dict(record) for record in state.approval_history]


def test_each_answer_is_one_approval_record(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graphs.run_approval(saver, thread="review-1")
        records = approvals(saver, "review-1")
        assert [(r["tool_name"], r["approved"], r.get("decided_by")) for r in records] == [
            ("send_email", True, "alice"),
            ("send_email", False, None),
        ]
        assert "reply 1 to send the report" in records[0]["input_summary"]
        report = SyncStateManager(saver.store).verify_audit("review-1")
        assert report.ok and report.records_checked == 2


def test_subgraph_answers_are_recorded_for_the_thread(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graphs.run_subgraph(saver, thread="nested-1")
        assert [(r["tool_name"], r["approved"]) for r in approvals(saver, "nested-1")] == [("send_email", True)]


def test_replaying_a_thread_does_not_repeat_decisions(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.approval_graph(saver)
        config = {"configurable": {"thread_id": "once-1"}}
        graph.invoke(graphs.human("draft", 0), config)
        graph.invoke(Command(resume=True), config)
        graph.invoke(None, config)  # nothing left to run
        for state in list(graph.get_state_history(config)):
            graph.get_state(state.config)
        assert len(approvals(saver, "once-1")) == 1


def test_audit_false_records_nothing(saver_url):
    with KaizenSaver.from_conn_string(saver_url, audit=False) as saver:
        graphs.run_approval(saver, thread="quiet-1")
        assert approvals(saver, "quiet-1") == []


def test_thread_id_that_cannot_be_an_agent_id_is_named(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.approval_graph(saver)
        config = {"configurable": {"thread_id": "has a space"}}
        graph.invoke(graphs.human("draft", 0), config)
        with pytest.raises(AuditRecordError, match="has a space"):
            graph.invoke(Command(resume=True), config)


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
def test_kaizen_cli_verifies_and_lists_the_thread(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graphs.run_approval(saver, thread="review-2")
    runner = CliRunner()
    verify = runner.invoke(main, ["audit", "verify", "review-2", "--store", saver_url])
    assert verify.exit_code == 0, verify.output
    assert "2 approval records" in verify.output
    listed = runner.invoke(main, ["checkpoints", "list", "review-2", "--store", saver_url])
    assert listed.exit_code == 0, listed.output
    assert listed.output.count("ckpt_") >= 2
