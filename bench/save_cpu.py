#!/usr/bin/env python
"""The CPU cost of one agent step with a save, and loading an agent cold: ours vs LangGraph.

Two figures, importable (``bench/many_agents.py`` puts them into its JSON) and printed by
``python bench/save_cpu.py [--steps N] [--records N] [--runs R] [--json FILE]``:

``cpu_us_per_save(steps=5000, store="sqlite")``
    ``BaseAutonomousAgent(AutonomousConfig(storage="sqlite:///<tmp>/x.db?synchronous=OFF"))`` runs
    ``steps`` steps of the bench workload (``bench/README.md`` "The workload")::

        agent.record_approval("Bash", True, "once", {"command": f"ls {i}"})
        agent.record_tool_usage("Bash")
        agent.update_workflow_state(current_node=f"node_{i}")
        agent.step_number += 1
        agent.save_checkpoint()

    Timed: the whole loop (all five lines of every step, the save's SQLite transaction included),
    with ``time.process_time`` (CPU of this process) and ``time.perf_counter`` (wall, for reference),
    divided by ``steps``. Not timed: building the agent and opening the store (``storage.setup()``
    runs before the loop). ``synchronous=OFF`` keeps the disk out of it: what is left is our Python
    plus SQLite's own CPU. ``store`` may also be any store URL (e.g. ``"memory://"``).

``cold_load_ms(records=5000)``
    Builds, in a temporary directory, our agent with ``records`` steps of the workload (SQLite) and
    the same history in LangGraph's ``SqliteSaver``, fed the way ``bench/agent_checkpoints.py`` feeds
    it (its ``run_langgraph``: one put per step, full channel values, chained configs). Then, ``runs``
    times each, alternating sides, a NEW Python process imports what it needs and times one load:

    * ours: ``SyncStateManager("sqlite:///<file>")`` (opens the store: connection, pragmas, schema
      check) and ``load_latest(agent_id)`` (the newest intact checkpoint, verified, all approval
      records materialized as the state's ``approval_history``), the read path of
      ``resume_from_latest``;
    * LangGraph: ``sqlite3.connect(file, check_same_thread=False)``, ``SqliteSaver(conn)`` and
      ``get_tuple({"configurable": {"thread_id": ..., "checkpoint_ns": ""}})`` (its lazy ``setup()``
      included, as in any first call), channel values deserialized.

    Imports (``kaizen...sync_manager``, ``sqlite3``, ``langgraph.checkpoint.sqlite``) happen before
    the timer starts on both sides; anything imported lazily during the load counts. Each child
    checks, after the timer, that the state holds all ``records`` approval records. Reported: the
    median wall time over the runs, in ms (``{"ours": x, "langgraph_sqlite": y}``), the median CPU
    time of the same region under ``"cpu_ms"`` (steadier on a shared machine), the per-run wall
    times under ``"all_runs"`` and, under ``"vs_langgraph"``, the median over the runs of each of
    ours' wall time divided by that of the LangGraph load of the same round, run right next to it
    (< 1: ours is faster; a burst of load from another process slows both of a pair, so this moves
    less than the ratio of the medians). The files are in the OS page cache on both sides (they
    were just written): "cold" is the process, not the disk.

Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
for _path in (str(ROOT), str(BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from agent_checkpoints import timed_step  # noqa: E402 - the workload's one definition


def _store_url(store: str, workdir: Path) -> str:
    if store == "sqlite":
        return f"sqlite:///{workdir / 'x.db'}?synchronous=OFF"
    return store


def cpu_us_per_save(steps: int = 5000, store: str = "sqlite") -> dict[str, Any]:
    """CPU (and wall) microseconds per workload step, save included; see the module docstring."""
    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.agents.autonomous.config import AutonomousConfig

    with tempfile.TemporaryDirectory(prefix="kaizen-savecpu-") as tmp:
        url = _store_url(store, Path(tmp))
        agent = BaseAutonomousAgent(AutonomousConfig(storage=url))
        manager = agent.state_manager
        manager.storage.setup()
        try:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            for i in range(steps):
                timed_step(agent, i)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
            saved = manager.load_latest(agent.agent_id)
            if saved is None or len(saved.approval_history) != steps:
                raise RuntimeError("the run did not save every step")
        finally:
            manager.close()
    return {
        "cpu_us_per_save": cpu / steps * 1e6,
        "wall_us_per_save": wall / steps * 1e6,
        "steps": steps,
        "store": url if store != "sqlite" else "sqlite:///<tmp>/x.db?synchronous=OFF",
    }


# --- cold load ----------------------------------------------------------------------------------
def _build_ours(path: Path, records: int) -> str:
    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.agents.autonomous.config import AutonomousConfig

    agent = BaseAutonomousAgent(AutonomousConfig(storage=f"sqlite:///{path}?synchronous=OFF"))
    try:
        for i in range(records):
            timed_step(agent, i)
    finally:
        agent.state_manager.close()
    return agent.agent_id


def _build_langgraph(path: Path, records: int) -> str:
    from agent_checkpoints import run_langgraph  # the one definition of how LangGraph is fed
    from langgraph.checkpoint.sqlite import SqliteSaver

    thread_id = "bench-" + secrets.token_hex(4)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")  # building only; the timed reader does not write
        figures = run_langgraph(SqliteSaver(conn), records, f"LangGraph history {records}", 1e9, thread_id)
        if figures["steps_done"] != records:
            raise RuntimeError("LangGraph's history was not built completely")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return thread_id


def _child(side: str, path: str, key: str, records: int) -> None:
    """One cold load in this (new) process; prints {"ms": ...} as JSON."""
    if side in ("ours", "ours_resume"):
        from kaizen.core.autonomy.state.sync_manager import SyncStateManager

        started, cpu = time.perf_counter(), time.process_time()
        manager = SyncStateManager(f"sqlite:///{path}")
        load = manager.load_latest if side == "ours" else manager.resume_from_latest
        state = load(key)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        count = len(state.approval_history) if state is not None else -1
        manager.close()
    elif side == "langgraph_sqlite":
        from langgraph.checkpoint.sqlite import SqliteSaver

        started, cpu = time.perf_counter(), time.process_time()
        conn = sqlite3.connect(path, check_same_thread=False)
        found = SqliteSaver(conn).get_tuple({"configurable": {"thread_id": key, "checkpoint_ns": ""}})
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        count = len(found.checkpoint["channel_values"]["approval_history"]) if found is not None else -1
        conn.close()
    else:
        raise SystemExit(f"unknown side {side!r}")
    if count != records:
        raise SystemExit(f"{side}: the loaded state holds {count} approval records, expected {records}")
    print(json.dumps({"ms": elapsed * 1000, "cpu_ms": cpu * 1000}))


def _run_child(side: str, path: Path, key: str, records: int) -> dict[str, float]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", side, str(path), key, str(records)],
        capture_output=True, text=True, env=env, check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold load of {side} failed: {done.stderr.strip() or done.stdout.strip()}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def cold_load_ms(records: int = 5000, runs: int = 7, *, resume: bool = False) -> dict[str, Any]:
    """Median ms to open the store and load the latest state in a new process; see the module docstring.

    ``resume`` also times ``resume_from_latest`` (the agent's resume path) as ``"ours_resume"``."""
    sides = ["ours", "langgraph_sqlite"] + (["ours_resume"] if resume else [])
    with tempfile.TemporaryDirectory(prefix="kaizen-coldload-") as tmp:
        ours_path, theirs_path = Path(tmp) / "ours.db", Path(tmp) / "langgraph.db"
        keys = {"ours": _build_ours(ours_path, records), "langgraph_sqlite": _build_langgraph(theirs_path, records)}
        keys["ours_resume"] = keys["ours"]
        paths = {"ours": ours_path, "ours_resume": ours_path, "langgraph_sqlite": theirs_path}
        runs_of: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
        for _ in range(runs):
            for side in sides:
                runs_of[side].append(_run_child(side, paths[side], keys[side], records))
    out: dict[str, Any] = {side: statistics.median(run["ms"] for run in done) for side, done in runs_of.items()}
    out["cpu_ms"] = {side: statistics.median(run["cpu_ms"] for run in done) for side, done in runs_of.items()}
    out["all_runs"] = {side: [run["ms"] for run in done] for side, done in runs_of.items()}
    theirs = runs_of["langgraph_sqlite"]
    out["vs_langgraph"] = {side: statistics.median(a["ms"] / b["ms"] for a, b in zip(done, theirs))
                           for side, done in runs_of.items() if side != "langgraph_sqlite"}
    out["records"] = records
    out["runs"] = runs
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        side, path, key, records = argv[1:5]
        _child(side, path, key, int(records))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5000, help="steps of the CPU run (default 5000)")
    parser.add_argument("--records", type=int, default=5000, help="approval records of the cold-load agent")
    parser.add_argument("--runs", type=int, default=7, help="cold loads per side (median reported)")
    parser.add_argument("--repeat", type=int, default=3, help="CPU runs (median reported)")
    parser.add_argument("--resume", action="store_true", help="also time resume_from_latest cold")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    cpu_runs = [cpu_us_per_save(args.steps) for _ in range(args.repeat)]
    cpu = statistics.median(run["cpu_us_per_save"] for run in cpu_runs)
    wall = statistics.median(run["wall_us_per_save"] for run in cpu_runs)
    print(f"cpu_us_per_save: {cpu:.1f} us CPU per step (wall {wall:.1f} us), {args.steps} steps, "
          f"SQLite synchronous=OFF, median of {args.repeat} runs: "
          + ", ".join(f"{run['cpu_us_per_save']:.1f}" for run in cpu_runs))
    cold = cold_load_ms(args.records, args.runs, resume=args.resume)
    for side in ("ours", "ours_resume", "langgraph_sqlite"):
        if side in cold:
            print(f"cold_load_ms {side:17s} {cold[side]:7.2f} ms wall, {cold['cpu_ms'][side]:6.2f} ms CPU  (runs: "
                  + ", ".join(f"{v:.2f}" for v in cold["all_runs"][side]) + ")")
    if cold["ours"]:
        print(f"cold load LangGraph/ours: {cold['langgraph_sqlite'] / cold['ours']:.2f}x (> 1: ours loads faster); "
              "ours/LangGraph run by run (median): "
              + ", ".join(f"{side} {ratio:.2f}" for side, ratio in cold["vs_langgraph"].items()))
    if args.json:
        document = {
            "cpu_us_per_save": cpu, "wall_us_per_save": wall, "cpu_runs": cpu_runs, "cold_load_ms": cold,
            "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                        "cpus": os.cpu_count(), "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None},
        }
        args.json.write_text(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
