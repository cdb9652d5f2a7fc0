"""A process of many agents (threads, each with its own store object on one database) saving
through the group commit until it is killed.

Usage: python group_commit_worker.py STORE_URL AGENTS
Prints "ACK <agent_id> <checkpoint_id> <step>" only after that agent's save returned, and every
0.1 s "STATS <batches> <saves>" (the shared committer's counts), so the parent knows what was
acknowledged and that saves really were grouped.
"""

from __future__ import annotations

import sys
import threading
import time

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

PRINT = threading.Lock()


def say(line: str) -> None:
    with PRINT:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run(url: str, agent_id: str, start: threading.Barrier) -> None:
    manager = SyncStateManager(url)
    if manager.load_latest(agent_id) is not None:
        agent = BaseAutonomousAgent.resume(agent_id, state_manager=manager)
    else:
        agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    start.wait()
    while True:
        agent.record_approval("Bash", True, "once", {"command": f"echo {agent.step_number}", "pad": "x" * 100})
        agent.record_tool_usage("Bash")
        agent.update_workflow_state(current_node=f"node-{agent.step_number}")
        agent.step_number += 1
        checkpoint_id = agent.save_checkpoint()
        say(f"ACK {agent_id} {checkpoint_id} {agent.step_number}")


def main() -> int:
    url, agents = sys.argv[1], int(sys.argv[2])
    start = threading.Barrier(agents + 1)
    for n in range(agents):
        threading.Thread(target=run, args=(url, f"agent-{n}", start), daemon=True).start()
    start.wait()
    committer = SyncStateManager(url).storage.committer  # type: ignore[attr-defined]
    while True:
        time.sleep(0.1)
        say(f"STATS {committer.batches} {committer.saves}")


if __name__ == "__main__":
    sys.exit(main())
