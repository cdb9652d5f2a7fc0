"""The console's pages on real stores: what each shows, escaped and redacted, and the decision form.

Requests go through Starlette's TestClient to the real app on a real SQLite store filled by real
agent runs (ui_helpers.py); the runs' tool arguments carry markup, quote-breaking text and a key.
"""

from __future__ import annotations

import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from ui_helpers import SECRET, XSS_QUOTES, XSS_SCRIPT, run_deferred

from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.demo import auto_approver, build_demo_agent
from kaizen.ui import ConsoleError, create_app

LOCAL = "http://127.0.0.1:8765"
PAGES = ["/", "/pending", "/agents/hostile", "/agents/hostile/audit", "/agents/hostile/tree",
         "/agents/hostile/usage"]


class Elements(HTMLParser):
    """The element names of a page, to check that no stored text became markup."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def tags(page: str) -> set[str]:
    parser = Elements()
    parser.feed(page)
    return set(parser.tags)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no decision form"
    return found.group(1)


def alert_of(page: str) -> str:
    found = re.search(r'role="alert">(.*?)</', page, re.S)
    assert found, "the page shows no refusal"
    return found.group(1)


@pytest.fixture
def waiting(tmp_path: Path) -> str:
    """A store with one run waiting for approval of a Write whose arguments are hostile."""
    store = f"sqlite:///{tmp_path}/state.db"
    assert run_deferred(store, tmp_path / "work", "hostile").status == "awaiting_approval"
    return store


def client(store: str, **options: object) -> TestClient:
    return TestClient(create_app(store, **options), base_url=LOCAL)  # type: ignore[arg-type]


def still_pending(store: str) -> list[str]:
    with SyncStateManager(store) as manager:
        return [item.call_id for item in manager.pending_approvals("hostile")]


def test_every_page_shows_stored_markup_as_text_and_never_the_secret(waiting):
    with client(waiting) as console:
        pending = console.get("/pending").text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pending
        assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;".replace("&#39;", "\\&#39;") in pending
        console.post("/agents/hostile/approvals/call_write", data={
            "csrf": csrf_of(pending), "decision": "approve", "reviewer": "alice", "reason": XSS_QUOTES})
    assert run_deferred(waiting, Path(waiting[len("sqlite:///"):]).parent / "work", "hostile", resume=True).status \
        == "completed"
    with client(waiting) as console:
        for path in PAGES:
            page = console.get(path)
            assert page.status_code == 200, path
            assert XSS_SCRIPT not in page.text and "<img" not in page.text, path
            assert SECRET not in page.text, path
            assert not tags(page.text) & {"script", "img", "iframe", "object"}, path
        timeline = console.get("/agents/hostile").text
        assert "Writing the note &lt;script&gt;alert(1)&lt;/script&gt;" in timeline
        assert "api_key=[REDACTED]" in timeline
        audit = console.get("/agents/hostile/audit").text
        assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in audit  # the reason, as text


def test_pages_forbid_scripts_and_frames_in_their_headers(waiting):
    with client(waiting) as console:
        for path in PAGES + ["/static/console.css", "/agents/nobody"]:
            headers = console.get(path).headers
            assert "default-src 'none'" in headers["content-security-policy"], path
            assert "script-src" not in headers["content-security-policy"]
            assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_approve_records_the_reviewer_and_a_second_decision_is_refused(waiting, tmp_path):
    with client(waiting) as console:
        form = csrf_of(console.get("/agents/hostile").text)
        done = console.post("/agents/hostile/approvals/call_write", follow_redirects=False, data={
            "csrf": form, "decision": "approve", "reviewer": "alice", "reason": "checked the path",
            "back": "timeline"})
        assert done.status_code == 303 and done.headers["location"].startswith("/agents/hostile?decided=call_write")
        assert "call call_write approved once" in console.get(done.headers["location"]).text
        again = console.post("/agents/hostile/approvals/call_write",
                             data={"csrf": form, "decision": "deny", "reviewer": "bob"})
        assert again.status_code == 409
        refusal = alert_of(again.text)
        assert "is not pending" in refusal and "already approved" in refusal and "alice" in refusal
    assert still_pending(waiting) == []
    with SyncStateManager(waiting) as manager:
        record = manager.load_latest("hostile").approval_history[-1]
    assert (record["decided_by"], record["via"], record["reason"], record["approved"]) == \
        ("alice", "web", "checked the path", True)


def test_deny_and_approve_all_reach_the_manager_as_their_actions(tmp_path):
    store = f"sqlite:///{tmp_path}/state.db"
    run_deferred(store, tmp_path / "a", "hostile")
    with client(store) as console:
        console.post("/agents/hostile/approvals/call_write", data={
            "csrf": csrf_of(console.get("/pending").text), "decision": "deny", "reviewer": "carol"})
    with SyncStateManager(store) as manager:
        record = manager.load_latest("hostile").approval_history[-1]
    assert (record["approved"], record["action"], record["decided_by"]) == (False, "once", "carol")
    assert run_deferred(store, tmp_path / "a", "hostile", resume=True).status == "denied"
    assert not (tmp_path / "a" / "note.md").exists()  # denied: never written

    other = f"sqlite:///{tmp_path}/other.db"
    run_deferred(other, tmp_path / "b", "hostile")
    with client(other) as console:
        console.post("/agents/hostile/approvals/call_write", data={
            "csrf": csrf_of(console.get("/pending").text), "decision": "approve_all"})
    with SyncStateManager(other) as manager:
        record = manager.load_latest("hostile").approval_history[-1]
    assert (record["approved"], record["action"], record["via"]) == (True, "all", "web")
    assert "@" in record["decided_by"]  # nobody named: the OS user at this host


@pytest.mark.parametrize("bad", [
    {"drop": "csrf"},
    {"csrf": "forged"},
    {"headers": {"origin": "https://evil.example"}},
    {"headers": {"sec-fetch-site": "cross-site"}},
    {"headers": {"origin": "null"}},
])
def test_a_decision_without_the_page_token_or_from_another_site_is_refused(waiting, bad):
    with client(waiting) as console:
        data = {"csrf": csrf_of(console.get("/pending").text), "decision": "approve", "reviewer": "mallory"}
        if "drop" in bad:
            del data[bad["drop"]]
        if "csrf" in bad:
            data["csrf"] = bad["csrf"]
        refused = console.post("/agents/hostile/approvals/call_write", data=data, headers=bad.get("headers", {}))
    assert refused.status_code == 403 and "refused" in alert_of(refused.text)
    assert still_pending(waiting) == ["call_write"]


def test_a_bad_decision_value_or_unknown_call_changes_nothing(waiting):
    with client(waiting) as console:
        token = csrf_of(console.get("/pending").text)
        odd = console.post("/agents/hostile/approvals/call_write", data={"csrf": token, "decision": "launch"})
        assert odd.status_code == 400 and "unknown decision" in alert_of(odd.text)
        unknown = console.post("/agents/hostile/approvals/call_other", data={"csrf": token, "decision": "approve"})
        assert unknown.status_code == 409 and "call_other" in alert_of(unknown.text)
        nobody = console.post("/agents/nobody/approvals/call_write", data={"csrf": token, "decision": "approve"})
        assert nobody.status_code == 404
    assert still_pending(waiting) == ["call_write"]


def test_a_read_only_console_shows_no_form_and_refuses_every_decision(waiting):
    with client(waiting, read_only=True) as console:
        for path in PAGES:
            page = console.get(path).text
            assert "<form" not in page and "<button" not in page, path
        assert "read-only" in console.get("/").text
        assert "call_write" in console.get("/pending").text  # still listed, just not decidable
        refused = console.post("/agents/hostile/approvals/call_write", data={"decision": "approve"})
        assert refused.status_code == 403 and "read-only" in alert_of(refused.text)
    assert still_pending(waiting) == ["call_write"]


def test_unknown_or_malformed_agents_are_404_pages(waiting):
    with client(waiting) as console:
        assert console.get("/agents/nobody").status_code == 404
        page = console.get("/agents/bad..id/audit")
        assert page.status_code == 404 and "not a valid id" in page.text


def test_a_missing_store_is_refused_instead_of_created(tmp_path):
    with pytest.raises(ConsoleError, match="no store at .*kaizen demo"):
        create_app(f"sqlite:///{tmp_path}/nothing.db")
    assert not (tmp_path / "nothing.db").exists()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> str:
    """The demo agent run to the end, forked at step 2 and that branch run to the end too."""
    tmp = tmp_path_factory.mktemp("finished")
    store = f"sqlite:///{tmp}/state.db"
    for _ in range(2):
        agent = build_demo_agent(store, tmp / "w", "writer", auto_approver(), with_workflow=False,
                                 temporary_workdir=False)
        if agent.state_manager.list_checkpoints("writer", limit=1):
            agent.run(resume=True)
        else:
            agent.run(task="report")
            step_two = next(m for m in agent.state_manager.list_checkpoints("writer") if m.step_number == 2)
            agent.state_manager.fork(step_two.checkpoint_id)
        agent.state_manager.close()
    return store


def test_timeline_reads_as_the_transcript_with_who_approved_and_the_fork(finished):
    with client(finished) as console:
        page = console.get("/agents/writer").text
    assert page.count('class="turn role-assistant"') == 5
    assert page.count('class="call"') == 4 and page.count('class="result ') == 4
    assert re.search(r"approved</span>\s*<b class=\"tool\">Write</b> by <b class=\"reviewer\">user</b>", page)
    assert "forked here" in page  # the first branch left the newest lineage at step 2
    assert "completed</span> at step 5" in page


def test_tree_draws_each_checkpoint_once_with_a_second_column_for_the_fork(finished):
    with client(finished) as console:
        page = console.get("/agents/writer/tree").text
    with SyncStateManager(finished) as manager:
        ids = [meta.checkpoint_id for meta in manager.list_checkpoints("writer")]
    circles = re.findall(r'<circle cx="(\d+)" cy="(\d+)"', page)
    assert len(circles) == len(ids) and all(page.count(f">{cid}<") == 1 for cid in ids)
    assert len({x for x, _ in circles}) == 2  # two branches, two columns
    assert page.count('class="node s-completed') == 2 and " fork" in page


def test_usage_charts_end_at_the_estimate_kaizen_usage_prints(finished):
    with client(finished) as console:
        page = console.get("/agents/writer/usage").text
    with SyncStateManager(finished) as manager:
        state = manager.load_latest("writer")
    from kaizen.agents.autonomous.cost import Prices, estimate_cost
    total = estimate_cost(state.tool_usage_counts, state.token_usage, Prices.parse(state.metadata["prices"])).total
    assert f"${total:.4f}" in page
    assert page.count("<polyline") == 3
    assert re.search(r"<td>Write</td><td class=\"num\">2</td>", page)


def test_tampered_audit_records_are_shown_and_marked(finished, tmp_path):
    store_file = Path(finished[len("sqlite:///"):])
    copy = tmp_path / "copy.db"
    copy.write_bytes(store_file.read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE records SET data = replace(data, '\"approved\":true', '\"approved\":false') "
                   "WHERE stream = 0 AND seq = 1")
    with client(f"sqlite:///{copy}") as console:
        page = console.get("/agents/writer/audit").text
        timeline = console.get("/agents/writer")
        tree = console.get("/agents/writer/tree").text
    assert timeline.status_code == 200 and "fail their checks" in timeline.text and "DAMAGED" in timeline.text
    assert tree.count(" DAMAGED</tspan>") >= 1
    assert "TAMPERED</b>: this history was changed" in page
    rows = re.findall(r'<tr class="v-(\w+)">', page)
    assert rows[0] == "verified" and rows[1] == "tampered" and set(rows[2:]) <= {"unverified"}
    tampered_row = page.split('<tr class="v-tampered">', 1)[1].split("</tr>", 1)[0]
    assert "denied" in tampered_row  # what the edited record now claims, shown as such
    with client(finished) as console:
        clean = console.get("/agents/writer/audit").text
    assert "verified: " in clean and "TAMPERED" not in clean and "v-unverified" not in clean


@pytest.mark.parametrize("kind", ["filesystem", "postgres"])
def test_pages_and_a_decision_on_the_other_stores(kind, tmp_path):
    from pg import drop_schema, new_schema, require_server, store_url

    schema = None
    if kind == "postgres":
        require_server()
        schema = new_schema()
        store = store_url(schema)
    else:
        store = f"file://{tmp_path}/checkpoints"
    try:
        assert run_deferred(store, tmp_path / "work", "hostile").status == "awaiting_approval"
        with client(store) as console:
            for path in PAGES:
                assert console.get(path).status_code == 200, path
            done = console.post("/agents/hostile/approvals/call_write", follow_redirects=False, data={
                "csrf": csrf_of(console.get("/pending").text), "decision": "approve", "reviewer": "dana"})
            assert done.status_code == 303
        assert run_deferred(store, tmp_path / "work", "hostile", resume=True).status == "completed"
        with client(store) as console:
            audit = console.get("/agents/hostile/audit").text
        assert '<td class="reviewer">dana</td>' in audit and "verified: " in audit
    finally:
        if schema is not None:
            drop_schema(schema)


def test_a_decision_while_a_worker_runs_the_agent_is_refused_until_it_stops(waiting):
    worker = SyncStateManager(waiting)
    lease = worker.claim("hostile", worker_id="worker-7", keepalive=False)
    try:
        with client(waiting) as console:
            token = csrf_of(console.get("/pending").text)
            busy = console.post("/agents/hostile/approvals/call_write", data={"csrf": token, "decision": "approve"})
            assert busy.status_code == 409
            assert "worker-7" in alert_of(busy.text) and "the agent is running" in alert_of(busy.text)
            assert still_pending(waiting) == ["call_write"]
            lease.release()
            done = console.post("/agents/hostile/approvals/call_write", follow_redirects=False,
                                data={"csrf": token, "decision": "approve"})
            assert done.status_code == 303
    finally:
        worker.close()
    assert still_pending(waiting) == []
