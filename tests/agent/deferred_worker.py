"""A process of the deferred-approval tests (tests/agent/test_deferred_processes.py).

    python deferred_worker.py ask STORE AGENT LOG        run the agent until it waits for approval
    python deferred_worker.py resume STORE AGENT LOG     run(resume=True)
    python deferred_worker.py approve STORE AGENT CALL BY [--hold]   decide; --hold: print, then sleep
    python deferred_worker.py deny STORE AGENT CALL BY
    python deferred_worker.py race STORE AGENT CALL BY START   decide at time START (approve if BY
                                                               ends in an even digit, else deny)

Every process builds the same agent: a scripted model that asks for ``deploy`` (a side-effect
tool that appends one line to LOG per execution, and with KAIZEN_TEST_HOLD set sleeps after
its effect, so the parent can kill it there), then answers "deployed". The outcome is printed
as one JSON line on stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.permissions import ApprovalNotPendingError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry

SCRIPT = [{"content": "", "tool_calls": [{"id": "call_deploy", "name": "deploy",
                                          "arguments": {"target": "prod", "token": "sk-live-abcdefabcdefabcdef12"}}]},
          "deployed"]


class DeploySignature(Signature):
    """Deploy."""

    task: str = InputField(description="the task")
    result: str = OutputField(description="the outcome")


def build(store: str, agent_id: str, log: str) -> BaseAutonomousAgent:
    registry = ToolRegistry()

    @registry.tool(danger="side_effect")
    def deploy(target: str, token: str) -> str:
        """Deploy to a target."""
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(target + "\n")
        if os.environ.get("KAIZEN_TEST_HOLD"):
            print(json.dumps({"event": "in_tool"}), flush=True)
            time.sleep(60)
        return "deployed " + target

    config = AutonomousConfig(llm_provider="scripted", model="m", storage=store, approval_policy="ask",
                              approval_mode="defer", planning_enabled=False)
    return BaseAutonomousAgent(config, DeploySignature(), agent_id=agent_id, provider=ScriptedProvider(SCRIPT),
                               tools=registry)


def main(argv: list[str]) -> None:
    command, store, agent_id = argv[:3]
    if command in ("ask", "resume"):
        agent = build(store, agent_id, argv[3])
        result = agent.run(task="deploy") if command == "ask" else agent.run(resume=True)
        print(json.dumps({"status": result.status, "pending": [p.to_dict() for p in result.pending_approvals],
                          "tool_calls": result.tool_calls}), flush=True)
        return
    call_id, by = argv[3], argv[4]
    manager = SyncStateManager(store)
    if command == "race":
        start = float(argv[5])
        while time.time() < start:
            time.sleep(0.001)
        command = "approve" if by[-1] in "02468" else "deny"
    decide = manager.approve if command == "approve" else manager.deny
    try:
        record = decide(agent_id, call_id, by=by, reason=f"{command} by {by}", via="cli")
    except ApprovalNotPendingError as exc:
        print(json.dumps({"won": False, "error": str(exc), "decided_by": exc.decided_by}), flush=True)
        return
    print(json.dumps({"won": True, "decided_by": record["decided_by"], "approved": record["approved"]}), flush=True)
    if "--hold" in argv:
        time.sleep(60)  # the parent kills us here (kill -9 after the decision)


if __name__ == "__main__":
    main(sys.argv[1:])
