#!/usr/bin/env python
"""Per-call cost of the agent's state-tracking API (no storage involved).

* ``record_approval("Bash", True, "once", {"command": "ls N"})``,
  ``record_tool_usage("Bash")``, ``update_workflow_state(current_node="node_N")``:
  microseconds per call, ``--calls`` calls per run, best run of ``--runs``;
* ``_capture_state()`` (what every ``save_checkpoint`` starts with) and
  ``_get_approval_history()`` (a mutable copy of the audit trail) on an agent
  holding ``--records`` approval records (default 10,000): microseconds per call,
  best run of ``--runs``.

Run ``python bench/tracking.py [--json FILE]``. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kaizen.agents.autonomous.base import BaseAutonomousAgent  # noqa: E402
from kaizen.agents.autonomous.config import AutonomousConfig  # noqa: E402

perf = time.perf_counter


def new_agent() -> BaseAutonomousAgent:
    # memory:// so that nothing here can touch the disk (no checkpoint is saved anyway)
    return BaseAutonomousAgent(AutonomousConfig(storage="memory://"))


def best_per_call(make: Callable[[], Callable[[int], Any]], calls: int, runs: int) -> dict[str, float]:
    """µs per call: ``make()`` builds a fresh subject per run, ``call(i)`` is timed ``calls`` times."""
    per_run = []
    for _ in range(runs):
        call = make()
        gc.collect()
        started = perf()
        for i in range(calls):
            call(i)
        per_run.append((perf() - started) / calls * 1e6)
    return {"best_us": min(per_run), "median_us": sorted(per_run)[len(per_run) // 2], "calls": calls, "runs": runs}


def agent_with_records(records: int) -> BaseAutonomousAgent:
    agent = new_agent()
    for i in range(records):
        agent.record_approval("Bash", True, "once", {"command": f"ls {i}"})
        agent.record_tool_usage("Bash")
    agent.update_workflow_state(current_node=f"node_{records}")
    agent.step_number = records
    return agent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per run of the tracking methods")
    parser.add_argument("--runs", type=int, default=5, help="runs; the best one is reported")
    parser.add_argument("--records", type=int, default=10_000, help="approval records for the capture benchmarks")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    results: dict[str, Any] = {}

    def approvals() -> Callable[[int], Any]:
        agent = new_agent()
        return lambda i: agent.record_approval("Bash", True, "once", {"command": f"ls {i}"})

    def tool_usage() -> Callable[[int], Any]:
        agent = new_agent()
        return lambda i: agent.record_tool_usage("Bash")

    def workflow() -> Callable[[int], Any]:
        agent = new_agent()
        return lambda i: agent.update_workflow_state(current_node=f"node_{i}")

    print("timing record_approval / record_tool_usage / update_workflow_state ...", file=sys.stderr, flush=True)
    results["record_approval"] = best_per_call(approvals, args.calls, args.runs)
    results["record_tool_usage"] = best_per_call(tool_usage, args.calls, args.runs)
    results["update_workflow_state"] = best_per_call(workflow, args.calls, args.runs)

    print(f"building an agent with {args.records:,} approval records ...", file=sys.stderr, flush=True)
    big = agent_with_records(args.records)
    capture_calls = max(20, 2_000_000 // max(args.records, 1))
    history_calls = max(5, 200_000 // max(args.records, 1))
    results["_capture_state"] = best_per_call(lambda: lambda i: big._capture_state(), capture_calls, args.runs)
    results["_capture_state"]["records"] = args.records
    results["_get_approval_history"] = best_per_call(
        lambda: lambda i: big._get_approval_history(), history_calls, args.runs
    )
    results["_get_approval_history"]["records"] = args.records
    # Same two calls on an almost empty agent: what part of the cost grows with the history.
    small = agent_with_records(1)
    results["_capture_state_1_record"] = best_per_call(lambda: lambda i: small._capture_state(), 20_000, args.runs)
    results["_get_approval_history_1_record"] = best_per_call(
        lambda: lambda i: small._get_approval_history(), 20_000, args.runs
    )

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"State tracking, µs per call (best of {args.runs} runs)")
    for column in ("call", "µs/call (best)", "µs/call (median run)", "calls/run"):
        table.add_column(column, justify="left" if column == "call" else "right")
    labels = {
        "record_approval": "record_approval(\"Bash\", True, \"once\", {...})",
        "record_tool_usage": "record_tool_usage(\"Bash\")",
        "update_workflow_state": "update_workflow_state(current_node=...)",
        "_capture_state": f"_capture_state() at {args.records:,} records",
        "_capture_state_1_record": "_capture_state() at 1 record",
        "_get_approval_history": f"_get_approval_history() at {args.records:,} records",
        "_get_approval_history_1_record": "_get_approval_history() at 1 record",
    }
    for key, label in labels.items():
        figures = results[key]
        table.add_row(label, f"{figures['best_us']:,.2f}", f"{figures['median_us']:,.2f}", f"{figures['calls']:,}")
    Console(width=120).print(table)

    if args.json:
        document = {
            "results": results,
            "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
