"""A worker process for the kill -9 tests of the autonomous loop (tests/agent/test_agent_crash.py).

It runs (or resumes) one agent on a SQLite file with a ScriptedProvider of CYCLES
turns; turn i calls the registered tool ``step`` with call id ``call_i`` and the
argument ``tag=call_i``, then the model answers "finished". ``step`` appends its
tag to LOG (one line per *side effect*); --danger declares it ("undeclared" passes no
danger, so the tool gets the default). The process kills itself with SIGKILL at
the point chosen by --mode (only when not --resume):

  after_effect  inside ``step`` of call K, after its side effect
  before_effect inside ``step`` of call K, before its side effect
  chat          inside the provider's chat for cycle K, before it answers
  none          never (the parent may kill us: --sleep makes ``step`` sleep first)

Also written: CHAT_LOG (one line per answered model call: the script position) and
ASK_LOG (one line per approval-callback call: the tag). The final RunResult is
printed as one JSON line on stdout. "READY" is printed (flushed) before the run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.core.autonomy.state.errors import CheckpointNotFoundError
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry

CYCLES = 8


class StepSignature(Signature):
    """Run the steps."""

    task: str = InputField(description="the task")
    result: str = OutputField(description="the outcome")


def script(cycles: int = CYCLES) -> list:
    turns: list = [
        {"content": "", "tool_calls": [{"id": f"call_{i}", "name": "step", "arguments": {"tag": f"call_{i}"}}]}
        for i in range(1, cycles + 1)
    ]
    return turns + ["finished"]


def append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as handle:  # closed = written to the kernel: survives SIGKILL
        handle.write(line + "\n")


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # never reached


class RecordingProvider:
    """Wraps the ScriptedProvider: logs answered positions, may die inside chat."""

    name = "scripted"

    def __init__(self, inner: ScriptedProvider, chat_log: str, kill_cycle: int | None) -> None:
        self.inner, self.chat_log, self.kill_cycle = inner, chat_log, kill_cycle

    @property
    def position(self) -> int:
        return self.inner.position

    def seek(self, position: int) -> None:
        self.inner.seek(position)

    def chat(self, messages, tools=(), *, model, temperature=None):
        position = self.inner.position
        if self.kill_cycle is not None and position == self.kill_cycle - 1:
            die()
        response = self.inner.chat(messages, tools, model=model, temperature=temperature)
        append(self.chat_log, str(position))
        return response


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--agent", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--chat-log", required=True)
    parser.add_argument("--ask-log", required=True)
    parser.add_argument("--mode", default="none", choices=("none", "after_effect", "before_effect", "chat"))
    parser.add_argument("--k", type=int, default=0)
    parser.add_argument("--danger", default="side_effect",
                        choices=("read_only", "idempotent", "side_effect", "safe", "dangerous", "undeclared"))
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    crash = not args.resume
    kill_tag = f"call_{args.k}"
    registry = ToolRegistry()

    declared = {} if args.danger == "undeclared" else {"danger": args.danger}

    @registry.tool(**declared)
    def step(tag: str) -> str:
        """Do one step (appends its tag to the log)."""
        if crash and args.mode == "before_effect" and tag == kill_tag:
            die()
        if args.sleep:
            time.sleep(args.sleep)
        append(args.log, tag)
        if crash and args.mode == "after_effect" and tag == kill_tag:
            die()
        return f"did {tag}"

    def approver(request):
        append(args.ask_log, request.tool_input.get("tag", "?"))
        return "approve"

    config = AutonomousConfig(llm_provider="scripted", model="m", storage=f"sqlite:///{args.db}",
                              workdir=args.workdir, approval_policy="ask", max_cycles=50)
    provider = RecordingProvider(ScriptedProvider(script()), args.chat_log,
                                 args.k if crash and args.mode == "chat" else None)
    parts = dict(config=config, signature=StepSignature(), provider=provider, tools=registry,
                 approval_callback=approver)
    print("READY", flush=True)
    if args.resume:
        try:
            agent = BaseAutonomousAgent.resume(args.agent, **parts)
        except CheckpointNotFoundError:  # killed before the first checkpoint: start over
            agent = BaseAutonomousAgent(agent_id=args.agent, **parts)
        result = agent.run(resume=True, task="run the steps")
    else:
        agent = BaseAutonomousAgent(agent_id=args.agent, **parts)
        result = agent.run(task="run the steps")
    print(json.dumps({"status": result.status, "outputs": result.outputs, "cycles": result.cycles,
                      "tool_calls": result.tool_calls, "error": result.error,
                      "checkpoint_id": result.checkpoint_id}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
