"""Any text a store can hold renders as that text: generated strings go through the console's own
templates and come back out of an HTML parser unchanged, never as elements or attributes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ui_helpers import run_deferred

from kaizen.core.autonomy.permissions import PendingApproval
from kaizen.ui import create_app
from kaizen.ui.graphs import Node, TreeDrawing, line_chart
from kaizen.ui.readers import UsageView

# text as a hostile model or tool might produce it: markup pieces, quotes, entities, any unicode
HOSTILE = st.lists(st.one_of(st.sampled_from(list("<>&\"'/=` ;:{}()[]\\\n\t")),
                             st.sampled_from(["<script>", "</pre>", "<img src=x onerror=", "&amp;", "&lt;", "javascript:",
                                              "-->", "<!--", "<svg/onload=", "]]>"]),
                             st.characters(blacklist_categories=("Cs", "Cc"))),
                   min_size=1, max_size=30).map("".join).filter(lambda text: text.strip() != "")


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("escaping")
    store = f"sqlite:///{tmp}/state.db"
    run_deferred(store, Path(tmp) / "work", "hostile")
    app = create_app(store)
    yield app.state.console.templates.env
    app.state.console.manager.close()


def pending_item(summary: str, reason: str, tool: str, expired: bool) -> PendingApproval:
    asked = datetime.now(timezone.utc) - timedelta(hours=1)
    deadline = asked + (timedelta(minutes=1) if expired else timedelta(days=1))
    return PendingApproval("hostile", "call_write", tool, summary, "side_effect", reason, asked.isoformat(),
                           deadline.isoformat())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(summary=HOSTILE, reason=HOSTILE, tool=HOSTILE, expired=st.booleans())
def test_pending_cards_show_any_stored_text_as_text(templates, summary, reason, tool, expired):
    template = templates.get_template("pending_list.html")
    benign = parsed(template.render(items=[pending_item("x", "y", "Write", expired)], back="pending",
                                    outcome={"ok": False, "message": "m"}))
    hostile = parsed(template.render(items=[pending_item(summary, reason, tool, expired)], back="pending",
                                     outcome={"ok": False, "message": reason}))
    assert hostile.tags == benign.tags  # the same elements: nothing injected
    names = [name for name, _ in hostile.attributes]
    assert names == [name for name, _ in benign.attributes]
    text = "".join(hostile.text)
    for value in (summary, reason, tool):
        assert value.strip() in text


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(label=HOSTILE)
def test_svg_drawings_keep_stored_labels_as_text(templates, label):
    """Chart titles and tooltips, tool and model names, checkpoint statuses: text inside the SVG."""
    now = datetime.now(timezone.utc)
    chart = line_chart(label, label, [(now, 1.0), (now + timedelta(seconds=5), 3.0)])
    usage = UsageView("a", [], [(label, 2, None)], [(label, 10, 5, None)], None)
    common = dict(agent_id="a", notice=None)
    pages = {"usage": templates.get_template("usage.html").render(view=usage, charts=[chart], page="usage", **common)}
    plain = {"usage": templates.get_template("usage.html").render(
        view=UsageView("a", [], [("t", 2, None)], [("m", 10, 5, None)], None),
        charts=[line_chart("c", "u", [(now, 1.0), (now + timedelta(seconds=5), 3.0)])], page="usage", **common)}
    node = Node("ckpt_000000000001", 1, label, "2026-01-01 00:00:00 UTC", 14, 14, False, False)
    drawing = TreeDrawing([node], [], 500, 40, 40, 0)
    pages["tree"] = templates.get_template("tree.html").render(drawing=drawing, page="tree", **common)
    plain["tree"] = templates.get_template("tree.html").render(
        drawing=TreeDrawing([Node("ckpt_000000000001", 1, "running", "t", 14, 14, False, False)], [], 500, 40, 40, 0),
        page="tree", **common)
    for name, html in pages.items():
        page, benign = parsed(html), parsed(plain[name])
        assert page.tags == benign.tags, name
        assert label.strip() in "".join(page.text), name


def test_no_template_or_module_turns_escaping_off():
    package = Path(__file__).resolve().parents[2] / "kaizen" / "ui"
    for path in sorted(package.rglob("*")):
        if path.suffix in (".html", ".py"):
            source = path.read_text(encoding="utf-8")
            for marker in ("|safe", "| safe", "Markup(", "autoescape false", "autoescape=False"):
                assert marker not in source, f"{path.name} contains {marker!r}"
