"""Make the console screenshots in docs/img/ (run from the repository root):

    PYTHONPATH=. python3 docs/img/make_screenshots.py

It fills a temporary SQLite store with real runs (the scripted demo agent, a fork of it, and two
runs waiting for approval), serves it with ``kaizen ui`` and photographs the pages with the
system's Chromium through Playwright.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from playwright.sync_api import sync_playwright  # noqa: E402
from ui_helpers import CHROMIUM, console_process, deferred_agent  # noqa: E402

from kaizen.core.autonomy.state.sync_manager import SyncStateManager  # noqa: E402
from kaizen.demo import auto_approver, build_demo_agent  # noqa: E402

OUT = Path(__file__).resolve().parent


def fill(store: str, work: Path) -> None:
    agent = build_demo_agent(store, work / "report", "report-writer", auto_approver(), with_workflow=False,
                             temporary_workdir=False)
    agent.run(task="Summarise the field notes")
    agent.state_manager.close()
    with SyncStateManager(store) as manager:
        step_two = next(m for m in manager.list_checkpoints("report-writer") if m.step_number == 2)
        manager.fork(step_two.checkpoint_id)
    again = build_demo_agent(store, work / "report", "report-writer", auto_approver(), with_workflow=False,
                             temporary_workdir=False)
    again.run(resume=True)
    again.state_manager.close()
    for agent_id, script in (
        ("deploy-bot", [{"content": "Staging is green; deploying the release.",
                         "tool_calls": [{"id": "call_deploy", "name": "Bash", "arguments": {
                             "command": "./deploy.sh --env production --token ghp_abcdefghijklmnopqrstuvwx012345"}}]},
                        "Deployed."]),
        ("release-notes", [{"content": "Writing the release notes.",
                            "tool_calls": [{"id": "call_notes", "name": "Write", "arguments": {
                                "path": "NOTES.md", "content": "## 1.4.0\n- deferred approvals\n- web console\n"}}]},
                           "Done."]),
    ):
        waiting = deferred_agent(store, work / agent_id, agent_id, script)
        waiting.run(task=f"{agent_id} task")
        waiting.state_manager.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # the header then shows the short store URL a user would type
        store = "sqlite:///state.db"
        fill(store, Path(tmp))
        with console_process(store) as url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            wide = browser.new_page(viewport={"width": 1100, "height": 640}, device_scale_factor=1)
            wide.goto(url)
            wide.screenshot(path=str(OUT / "console-agents.png"), clip={"x": 0, "y": 0, "width": 1100, "height": 290})
            wide.goto(url.rstrip("/") + "/pending")
            wide.screenshot(path=str(OUT / "console-pending.png"), full_page=True)
            wide.goto(url.rstrip("/") + "/agents/report-writer/tree")
            wide.screenshot(path=str(OUT / "console-tree.png"), full_page=True)
            phone = browser.new_page(viewport={"width": 375, "height": 900}, device_scale_factor=2)
            phone.goto(url.rstrip("/") + "/agents/deploy-bot")
            phone.screenshot(path=str(OUT / "console-phone.png"))
            browser.close()
    print("wrote", ", ".join(sorted(path.name for path in OUT.glob("console-*.png"))))


if __name__ == "__main__":
    main()
