"""A process of agents saving into one SQLite file until it is killed (or for STEPS steps each),
to test the group commit across processes.

Usage: python shared_writer_worker.py STORE_URL FIRST_AGENT AGENTS [STEPS [linger] [gate]]
Agents FIRST_AGENT .. FIRST_AGENT+AGENTS-1 run in threads, each on its own store object. Prints
"ACK <agent_id> <checkpoint_id> <step>" only after that save returned, "ROLE <role>" (this
process's writer: host, client or alone) after every save of agent FIRST_AGENT, and "DONE" when
every agent finished its steps; with "linger" it then stays (stores open, idle) until killed. With
"gate" it prints "READY" once started and waits for a line on stdin before saving (so that several
processes save at the same time however long each took to start).
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


def run(url: str, agent_id: str, steps: int, report_role: bool, managers: list[SyncStateManager]) -> None:
    manager = SyncStateManager(url)
    managers.append(manager)
    if manager.load_latest(agent_id) is not None:
        agent = BaseAutonomousAgent.resume(agent_id, state_manager=manager)
    else:
        agent = BaseAutonomousAgent(agent_id=agent_id, state_manager=manager)
    writer = manager.storage.committer.writer  # type: ignore[attr-defined]
    for _ in range(steps):
        agent.record_approval("Bash", True, "once", {"command": f"echo {agent.step_number}"})
        agent.record_tool_usage("Bash")
        agent.step_number += 1
        checkpoint_id = agent.save_checkpoint()
        say(f"ACK {agent_id} {checkpoint_id} {agent.step_number}")
        if report_role:
            say(f"ROLE {writer.role}")


def main() -> int:
    url, first, agents = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    steps = int(sys.argv[4]) if len(sys.argv) > 4 else 1 << 62
    managers: list[SyncStateManager] = []
    if "gate" in sys.argv[5:]:
        say("READY")
        sys.stdin.readline()
    threads = [threading.Thread(target=run, args=(url, f"agent-{first + n}", steps, n == 0, managers))
               for n in range(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    say("DONE")
    while "linger" in sys.argv[5:]:
        time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
