"""The console in a real browser (the system's Chromium, driven by Playwright) against ``kaizen ui``
in its own process, with agent runs in processes of their own, as a reviewer would use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_helpers import CHROMIUM, SECRET, XSS_QUOTES, XSS_SCRIPT, console_process, require_browser, run_in_process

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def waiting(tmp_path: Path) -> tuple[str, Path]:
    store = f"sqlite:///{tmp_path}/state.db"
    assert run_in_process(store, tmp_path / "work", "hostile") == "awaiting_approval"
    return store, tmp_path / "work"


def watched_page(browser: Any, **options: Any) -> tuple[Any, list[str]]:
    """A page that notes every dialog (an alert() would mean stored text ran as script)."""
    page = browser.new_page(**options)
    dialogs: list[str] = []

    def note(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", note)
    return page, dialogs


def test_approve_in_the_browser_then_the_resumed_run_completes_and_the_audit_names_the_reviewer(browser, waiting):
    store, workdir = waiting
    with console_process(store) as url:
        page, dialogs = watched_page(browser)
        page.goto(url + "pending")
        card = page.locator("article.pending", has_text="call_write")
        assert card.locator(".tool").inner_text() == "Write"
        arguments = card.locator("pre.args").inner_text()
        assert XSS_SCRIPT in arguments and "onerror=alert(1)>" in arguments  # shown as the text it is
        assert SECRET not in page.content() and "[REDACTED]" in arguments
        assert page.locator("img").count() == 0

        card.get_by_label("reviewer").fill("alice")
        card.get_by_label("reason").fill(XSS_QUOTES)
        card.get_by_role("button", name="Approve", exact=True).click()
        page.wait_for_url("**/pending?decided=call_write*")
        assert "call call_write approved once" in page.locator(".notice.ok").inner_text()
        assert page.locator("article.pending").count() == 0

        assert run_in_process(store, workdir, "hostile", resume=True) == "completed"
        assert (workdir / "note.md").read_text().startswith(XSS_SCRIPT)

        page.goto(url + "agents/hostile/audit")
        row = page.locator("table.audit tbody tr").last
        assert row.locator("td.reviewer").inner_text() == "alice"
        assert "web" in row.inner_text() and XSS_QUOTES in row.inner_text()
        assert "verified" in page.locator(".verify").inner_text()
        page.goto(url)
        assert "completed" in page.locator("table.agents tr", has_text="hostile").inner_text()
        assert dialogs == []


def test_a_second_click_on_a_decided_call_shows_the_refusal(browser, waiting):
    store, _ = waiting
    with console_process(store) as url:
        first, _ = watched_page(browser)
        second, _ = watched_page(browser)
        first.goto(url + "agents/hostile")
        second.goto(url + "pending")  # a second reviewer, looking at the same call
        first.locator("#pending").get_by_label("reviewer").fill("alice")
        first.get_by_role("button", name="Deny").click()
        first.wait_for_url("**/agents/hostile?decided=call_write*")
        second.get_by_role("button", name="Approve", exact=True).click()
        refusal = second.get_by_role("alert").inner_text()
        assert "refused" in refusal and "not pending" in refusal and "already denied" in refusal and "alice" in refusal
        assert second.locator("article.pending").count() == 0  # the refusal page lists what is still pending


PHONE_PAGES = ["", "pending", "agents/hostile", "agents/hostile/audit", "agents/hostile/tree", "agents/hostile/usage"]


def test_pages_fit_a_phone_screen(browser, waiting):
    store, _ = waiting
    too_wide = {}
    with console_process(store) as url:
        page, dialogs = watched_page(browser, viewport={"width": 375, "height": 740}, is_mobile=True)
        for path in PHONE_PAGES:
            page.goto(url + path)
            overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            main = page.locator("main").bounding_box()
            assert main is not None
            if overflow > 0 or main["x"] < 0 or main["x"] + main["width"] > 375:
                too_wide[path or "/"] = overflow
            if path in ("pending", "agents/hostile"):
                approve = page.get_by_role("button", name="Approve", exact=True).bounding_box()
                assert approve is not None and approve["x"] + approve["width"] <= 375  # no sideways scrolling
    assert too_wide == {}, f"wider than a 375px screen (px): {too_wide}"
    assert dialogs == []
