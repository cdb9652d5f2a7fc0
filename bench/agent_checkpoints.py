#!/usr/bin/env python
"""Checkpoint an agent's state every step: kaizen's stores vs LangGraph's savers.

Each step of the workload appends one approval record, increments one tool count,
updates the workflow state and saves one checkpoint:

* ours: ``BaseAutonomousAgent`` (``record_approval``, ``record_tool_usage``,
  ``update_workflow_state``, ``step_number += 1``, ``save_checkpoint()``) on
  ``sqlite:///<tmp>/ours.db?synchronous=FULL`` (WAL) and on
  ``postgresql://...?schema=<fresh>``;
* LangGraph: ``SqliteSaver`` (WAL, ``synchronous=FULL``) and ``PostgresSaver``
  (fresh schema, ``setup()``), fed the way the Pregel loop feeds a checkpointer:
  three channels (``approval_history`` list, ``tool_usage_counts`` dict,
  ``workflow_state`` dict), every updated channel bumped to
  ``get_next_version(max(versions))``, ``versions_seen`` of the node, a new id
  from ``create_checkpoint`` (uuid6), ``put(config, copy_checkpoint(cp),
  metadata, new_versions)`` with ``config`` chained from the previous ``put``.
  Every put carries the full channel values, as LangGraph does.

Run ``python bench/agent_checkpoints.py --steps 1000 5000 --json out.json``.
Progress goes to stderr, the table to stdout. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DSN = os.environ.get("KAIZEN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
LOADS = 20  # timed loads of the latest checkpoint (after one warm-up load)
WINDOW = 100  # saves averaged for first100_ms / last100_ms
CHANNELS = ("approval_history", "tool_usage_counts", "workflow_state")
SIDES = ("ours", "langgraph_sqlite", "ours_postgres", "langgraph_postgres")
perf = time.perf_counter


# --- progress on stderr -------------------------------------------------------------------
class Progress:
    """A rich progress bar when stderr is a terminal, otherwise one line per 10%."""

    def __init__(self, label: str, total: int) -> None:
        self.label = label
        self.total = total
        self.next_tenth = 1
        self.started = perf()
        self._bar: Any = None
        if sys.stderr.isatty():
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
                from rich.progress import TextColumn, TimeElapsedColumn

                self._bar = RichProgress(
                    TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True,
                )
                self._bar.start()
                self._task = self._bar.add_task(label, total=total)
            except ImportError:
                self._bar = None

    def update(self, done: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            return
        reached = done * 10 // self.total
        if reached >= self.next_tenth:
            print(f"  {self.label}: {reached * 10:3d}% ({done}/{self.total}, "
                  f"{perf() - self.started:.1f} s)", file=sys.stderr, flush=True)
            self.next_tenth = reached + 1

    def close(self, note: str = "") -> None:
        if self._bar is not None:
            self._bar.stop()
        print(f"  {self.label}: done in {perf() - self.started:.1f} s{note}", file=sys.stderr, flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- measuring helpers --------------------------------------------------------------------
def summarize(latencies: list[float], total_seconds: float, steps_requested: int) -> dict[str, Any]:
    """Figures of one side from its per-save latencies (seconds)."""
    done = len(latencies)
    save_seconds = sum(latencies)
    ordered = sorted(latencies)
    return {
        "steps_requested": steps_requested,
        "steps_done": done,
        "capped": done < steps_requested,
        "puts_per_s": done / save_seconds if save_seconds else None,
        "steps_per_s": done / total_seconds if total_seconds else None,
        "first100_ms": statistics.fmean(latencies[:WINDOW]) * 1000,
        "last100_ms": statistics.fmean(latencies[-WINDOW:]) * 1000,
        "p50_ms": ordered[done // 2] * 1000,
        "p99_ms": ordered[min(done - 1, int(done * 0.99))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "seconds": total_seconds,
        # mean save latency of each tenth of the run: flat means the save cost does not grow
        "tenths_ms": [statistics.fmean(chunk) * 1000 for chunk in _tenths(latencies)],
    }


def _tenths(values: list[float]) -> list[list[float]]:
    size = max(1, len(values) // 10)
    return [values[start:start + size] for start in range(0, size * 10, size) if values[start:start + size]]


def time_loads(load: Callable[[], int], expected: int) -> dict[str, Any]:
    """One warm-up load (reported as load_cold_ms), then LOADS timed ones (median)."""
    started = perf()
    count = load()
    cold = perf() - started
    if count != expected:
        raise RuntimeError(f"the latest checkpoint holds {count} approval records, expected {expected}")
    times = []
    for _ in range(LOADS):
        started = perf()
        count = load()
        times.append(perf() - started)
        if count != expected:
            raise RuntimeError(f"the latest checkpoint holds {count} approval records, expected {expected}")
    return {"load_latest_ms": statistics.median(times) * 1000, "load_cold_ms": cold * 1000}


def sqlite_bytes(path: Path) -> int:
    """Main file + WAL after ``PRAGMA wal_checkpoint(TRUNCATE)`` (all other connections closed)."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log(f"  warning: wal_checkpoint(TRUNCATE) on {path} was blocked by another connection")
        wal = Path(f"{path}-wal")
        return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    finally:
        conn.close()


def shown_dsn() -> str:
    """The DSN with any password hidden, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(DSN)
    if parts.password is None:
        return DSN
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def pg_connect(**kwargs: Any) -> Any:
    import psycopg

    return psycopg.connect(DSN, connect_timeout=5, **kwargs)


def pg_bytes(schema: str) -> int:
    """``pg_total_relation_size`` (heap + TOAST + indexes) summed over the schema's tables."""
    with pg_connect(autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'm')",
            (schema,),
        ).fetchone()
    return int(row[0])


def drop_schema(schema: str) -> None:
    with pg_connect(autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def pg_unavailable() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        with pg_connect() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
        return f"PostgreSQL at {shown_dsn()} is unreachable: {str(exc).strip().splitlines()[0]}"
    return None


def ours_pg_unavailable() -> str | None:
    try:
        importlib.import_module("kaizen.core.autonomy.state.storage.postgres")
    except Exception as exc:  # noqa: BLE001
        return f"kaizen.core.autonomy.state.storage.postgres does not import ({type(exc).__name__}: {exc})"
    return pg_unavailable()


def langgraph_pg_unavailable() -> str | None:
    try:
        importlib.import_module("langgraph.checkpoint.postgres")
    except Exception as exc:  # noqa: BLE001
        return f"langgraph.checkpoint.postgres does not import ({type(exc).__name__}: {exc})"
    return pg_unavailable()


def pg_url(schema: str) -> str:
    return f"{DSN}{'&' if '?' in DSN else '?'}schema={schema}"


# --- ours ---------------------------------------------------------------------------------
def timed_step(agent: Any, i: int) -> float:
    """Step ``i`` of the workload (README "The workload"): the one definition every benchmark of
    ours runs. Returns the seconds its ``save_checkpoint()`` took."""
    agent.record_approval("Bash", True, "once", {"command": f"ls {i}"})
    agent.record_tool_usage("Bash")
    agent.update_workflow_state(current_node=f"node_{i}")
    agent.step_number += 1
    t0 = perf()
    agent.save_checkpoint()
    return perf() - t0


def run_ours(url: str, steps: int, label: str, budget: float) -> tuple[dict[str, Any], str]:
    """The agent workload on ``url``; returns the figures and the agent id (its store closed)."""
    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.agents.autonomous.config import AutonomousConfig

    agent = BaseAutonomousAgent(AutonomousConfig(storage=url))
    manager = agent.state_manager
    latencies: list[float] = []
    progress = Progress(label, steps)
    started = perf()
    try:
        for i in range(steps):
            latencies.append(timed_step(agent, i))
            progress.update(i + 1)
            if perf() - started > budget:
                break
        total = perf() - started
    finally:
        note = "" if len(latencies) == steps else f" (CAPPED at {len(latencies)} steps: over {budget:.0f} s)"
        progress.close(note)
    figures = summarize(latencies, total, steps)
    figures["durability"] = ours_durability(manager.storage)
    manager.close()
    return figures, agent.agent_id


def ours_durability(store: Any) -> str:
    connect = getattr(store, "_connect", None)
    if type(store).__name__ == "SQLiteStorage" and connect is not None:
        conn = connect()
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return f"SQLite journal_mode={journal.upper()}, synchronous={sync}, one transaction per save"
    return "unknown store"


def load_ours(url: str, agent_id: str, expected: int) -> dict[str, Any]:
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    # A fresh reader: its own store (SyncStateManager(url) opens it with open_store(url)) and no
    # cache shared with the writer.
    reader = SyncStateManager(url)
    try:
        return time_loads(lambda: len(reader.load_latest(agent_id).approval_history), expected)
    finally:
        reader.close()


def run_ours_sqlite(workdir: Path, steps: int, budget: float) -> dict[str, Any]:
    path = workdir / "ours.db"
    url = f"sqlite:///{path}?synchronous=FULL"
    figures, agent_id = run_ours(url, steps, f"ours/SQLite {steps}", budget)
    figures.update(load_ours(url, agent_id, figures["steps_done"]))
    figures["bytes"] = sqlite_bytes(path)
    figures["store"] = url
    return figures


def run_ours_postgres(steps: int, budget: float) -> dict[str, Any]:
    schema = "kz_bench_" + secrets.token_hex(5)
    url = pg_url(schema)
    try:
        figures, agent_id = run_ours(url, steps, f"ours/PostgreSQL {steps}", budget)
        figures["durability"] = pg_durability_ours()
        figures.update(load_ours(url, agent_id, figures["steps_done"]))
        figures["bytes"] = pg_bytes(schema)
        figures["store"] = f"{shown_dsn()} schema {schema} (dropped afterwards)"
        return figures
    finally:
        drop_schema(schema)


def pg_durability_ours() -> str:
    """The server default, and whether our store's source overrides it per session."""
    import inspect

    module = importlib.import_module("kaizen.core.autonomy.state.storage.postgres")
    try:
        overrides = "synchronous_commit" in inspect.getsource(module)
    except (OSError, TypeError):
        overrides = False
    with pg_connect() as conn:
        server = conn.execute("SHOW synchronous_commit").fetchone()[0]
    if overrides:
        return f"PostgreSQL server synchronous_commit={server}; NOTE: storage/postgres.py mentions synchronous_commit"
    return f"PostgreSQL synchronous_commit={server} (server default, not overridden), one transaction per save"


# --- LangGraph ------------------------------------------------------------------------------
def run_langgraph(saver: Any, steps: int, label: str, budget: float, thread_id: str) -> dict[str, Any]:
    """The same workload through ``saver.put`` the way LangGraph's Pregel loop checkpoints."""
    from langgraph.checkpoint.base import copy_checkpoint, create_checkpoint, empty_checkpoint

    saver.setup()
    checkpoint = empty_checkpoint()
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    approvals: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    workflow: dict[str, Any] = {}
    latencies: list[float] = []
    progress = Progress(label, steps)
    started = perf()
    try:
        for i in range(steps):
            now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
            # The node's writes, applied as LangGraph's channels apply them: a list channel
            # with an operator.add reducer makes a new list, LastValue dicts are replaced.
            record = {"tool_name": "Bash", "approved": True, "action": "once", "timestamp": now,
                      "input_summary": str({"command": f"ls {i}"})}
            approvals = approvals + [record]
            counts = {**counts, "Bash": counts.get("Bash", 0) + 1}
            workflow = {**workflow, "current_node": f"node_{i}", "last_updated": now}
            t0 = perf()
            previous_versions = dict(checkpoint["channel_versions"])
            next_version = saver.get_next_version(max(previous_versions.values(), default=None), None)
            checkpoint["channel_values"].update(
                {"approval_history": approvals, "tool_usage_counts": counts, "workflow_state": workflow}
            )
            for channel in CHANNELS:
                checkpoint["channel_versions"][channel] = next_version
            checkpoint["versions_seen"]["agent"] = previous_versions
            checkpoint = create_checkpoint(checkpoint, None, i)
            checkpoint["updated_channels"] = list(CHANNELS)
            new_versions = {channel: checkpoint["channel_versions"][channel] for channel in CHANNELS}
            metadata = {"source": "loop", "step": i, "parents": {}}
            config = saver.put(config, copy_checkpoint(checkpoint), metadata, new_versions)
            latencies.append(perf() - t0)
            progress.update(i + 1)
            if perf() - started > budget:
                break
        total = perf() - started
    finally:
        note = "" if len(latencies) == steps else f" (CAPPED at {len(latencies)} steps: over {budget:.0f} s)"
        progress.close(note)
    return summarize(latencies, total, steps)


def load_langgraph(saver: Any, thread_id: str, expected: int) -> dict[str, Any]:
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}

    def load() -> int:
        found = saver.get_tuple(config)
        return len(found.checkpoint["channel_values"]["approval_history"])

    return time_loads(load, expected)


def langgraph_sqlite_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def run_langgraph_sqlite(workdir: Path, steps: int, budget: float) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = workdir / "langgraph.db"
    thread_id = "bench-" + secrets.token_hex(4)
    conn = langgraph_sqlite_connect(path)
    try:
        saver = SqliteSaver(conn)
        figures = run_langgraph(saver, steps, f"LangGraph/SQLite {steps}", budget, thread_id)
        sync = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}[conn.execute("PRAGMA synchronous").fetchone()[0]]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
        figures["durability"] = f"SQLite journal_mode={journal.upper()}, synchronous={sync}, one transaction per put"
    finally:
        conn.close()
    reader_conn = langgraph_sqlite_connect(path)
    try:
        figures.update(load_langgraph(SqliteSaver(reader_conn), thread_id, figures["steps_done"]))
    finally:
        reader_conn.close()
    figures["bytes"] = sqlite_bytes(path)
    figures["store"] = str(path)
    return figures


@contextlib.contextmanager
def langgraph_pg_saver(schema: str) -> Iterator[Any]:
    """A ``PostgresSaver`` on its own connection (as ``from_conn_string`` makes it), in ``schema``."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    conn = pg_connect(autocommit=True, prepare_threshold=0, row_factory=dict_row)
    try:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        yield PostgresSaver(conn)
    finally:
        conn.close()


def run_langgraph_postgres(steps: int, budget: float) -> dict[str, Any]:
    schema = "lg_bench_" + secrets.token_hex(5)
    thread_id = "bench-" + secrets.token_hex(4)
    try:
        with langgraph_pg_saver(schema) as saver:
            figures = run_langgraph(saver, steps, f"LangGraph/PostgreSQL {steps}", budget, thread_id)
            setting = saver.conn.execute("SHOW synchronous_commit").fetchone()["synchronous_commit"]
            figures["durability"] = (f"PostgreSQL synchronous_commit={setting} (server default), "
                                     "autocommit connection, pipelined put")
        with langgraph_pg_saver(schema) as reader:
            figures.update(load_langgraph(reader, thread_id, figures["steps_done"]))
        figures["bytes"] = pg_bytes(schema)
        figures["store"] = f"{shown_dsn()} schema {schema} (dropped afterwards)"
        return figures
    finally:
        drop_schema(schema)


def settle() -> None:
    """Flush dirty pages before the next side, so it does not pay for the previous one's writeback
    (LangGraph's SQLite file reaches ~1.5 GB at 5000 steps)."""
    if hasattr(os, "sync"):
        os.sync()
    time.sleep(0.5)


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure as its median over the runs (the machine is shared: one run can be unlucky);
    the figures of each run are kept as ``all_runs_<name>``."""
    if len(runs) == 1:
        return runs[0]
    chosen = dict(runs[0])
    for key in ("puts_per_s", "steps_per_s", "first100_ms", "last100_ms", "p50_ms", "p99_ms", "max_ms",
                "seconds", "load_latest_ms", "load_cold_ms", "bytes"):
        values = [figures[key] for figures in runs]
        chosen[key] = statistics.median(values)
        chosen[f"all_runs_{key}"] = values
    chosen["steps_done"] = min(figures["steps_done"] for figures in runs)
    chosen["capped"] = any(figures["capped"] for figures in runs)
    width = min(len(figures["tenths_ms"]) for figures in runs)
    chosen["tenths_ms"] = [statistics.median(figures["tenths_ms"][i] for figures in runs) for i in range(width)]
    chosen.pop("store", None)
    return chosen


# --- report -------------------------------------------------------------------------------
def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ours, theirs, name in (("ours", "langgraph_sqlite", "sqlite"), ("ours_postgres", "langgraph_postgres", "postgres")):
        a, b = result.get(ours, {}), result.get(theirs, {})
        if "puts_per_s" in a:
            out[f"{name}_our_last100_over_first100"] = ratio(a["last100_ms"], a["first100_ms"])
        if "puts_per_s" in a and "puts_per_s" in b:
            out[f"{name}_puts_per_s_ours_over_langgraph"] = ratio(a["puts_per_s"], b["puts_per_s"])
            out[f"{name}_bytes_langgraph_over_ours"] = ratio(b["bytes"], a["bytes"])
            out[f"{name}_load_ms_langgraph_over_ours"] = ratio(b["load_latest_ms"], a["load_latest_ms"])
            if a["capped"] or b["capped"]:
                out[f"{name}_note"] = "a side was capped: puts/s compare different step counts"
    return out


def fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def print_report(results: list[dict[str, Any]], durability: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(175, Console().width))
    table = Table(title="Checkpoint every step: kaizen vs LangGraph (save = one durable checkpoint)")
    for column in ("steps", "side", "puts/s", "first100 ms", "last100 ms", "last/first", "p99 ms",
                   "load ms", "cold load ms", "store MB", "note"):
        table.add_column(column, justify="left" if column in ("side", "note") else "right")
    for result in results:
        for side in SIDES:
            figures = result.get(side)
            if figures is None:
                continue
            if "skipped" in figures:
                table.add_row(str(result["steps"]), side, *["-"] * 8, f"skipped: {figures['skipped']}"[:90])
                continue
            note = f"CAPPED at {figures['steps_done']} steps" if figures["capped"] else ""
            if "all_runs_puts_per_s" in figures:
                spread = "/".join(format(value, ".0f") for value in sorted(figures["all_runs_puts_per_s"]))
                note = f"{note}; " if note else ""
                note += f"runs: {spread}"
            table.add_row(
                str(result["steps"]), side, fmt(figures["puts_per_s"], ",.0f"), fmt(figures["first100_ms"], ".3f"),
                fmt(figures["last100_ms"], ".3f"), fmt(ratio(figures["last100_ms"], figures["first100_ms"])),
                fmt(figures["p99_ms"], ".3f"), fmt(figures["load_latest_ms"], ".2f"),
                fmt(figures["load_cold_ms"], ".2f"), fmt(figures["bytes"] / 1e6, ",.2f"), note,
            )
        table.add_section()
    console.print(table)
    for result in results:
        r = result["ratios"]
        for name, label in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
            parts = []
            if f"{name}_puts_per_s_ours_over_langgraph" in r:
                parts.append(f"puts/s ours/LangGraph = {fmt(r[f'{name}_puts_per_s_ours_over_langgraph'])}x")
                parts.append(f"bytes LangGraph/ours = {fmt(r[f'{name}_bytes_langgraph_over_ours'], '.1f')}x")
                parts.append(f"load LangGraph/ours = {fmt(r[f'{name}_load_ms_langgraph_over_ours'])}x")
            if f"{name}_our_last100_over_first100" in r:
                parts.append(f"our last100/first100 = {fmt(r[f'{name}_our_last100_over_first100'])}")
            if parts:
                console.print(f"{result['steps']:>6} steps, {label}: " + "; ".join(parts))
    console.print("Mean save latency (ms) per tenth of the run, first to last (median over the runs):")
    for result in results:
        for side in SIDES:
            figures = result.get(side, {})
            if "tenths_ms" in figures:
                tenths = " ".join(format(value, "6.2f") for value in figures["tenths_ms"])
                console.print(f"{result['steps']:>6} {side:<19} {tenths}")
    console.print("Durability:")
    for side, text in durability.items():
        console.print(f"  {side:<19} {text}")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    for package in ("langgraph-checkpoint", "langgraph-checkpoint-sqlite", "langgraph-checkpoint-postgres",
                    "psycopg", "orjson", "ormsgpack"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            info[package] = importlib.metadata.version(package)
    with contextlib.suppress(Exception):
        info["kaizen_commit"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    if pg_unavailable() is None:
        with contextlib.suppress(Exception), pg_connect() as conn:
            info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            info["postgresql_fsync"] = conn.execute("SHOW fsync").fetchone()[0]
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000], help="agent steps per run (default 1000)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--no-postgres", action="store_true", help="skip both PostgreSQL sides")
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs of every side per step count; each figure reported is its median over the runs")
    parser.add_argument("--budget", type=float, default=300.0,
                        help="seconds one side may take per run before it is capped (default 300)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.steps):
        parser.error("--steps must be >= 1")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    if args.no_postgres:
        ours_pg_skip = langgraph_pg_skip = "--no-postgres"
    else:
        ours_pg_skip, langgraph_pg_skip = ours_pg_unavailable(), langgraph_pg_unavailable()
    for side, reason in (("ours_postgres", ours_pg_skip), ("langgraph_postgres", langgraph_pg_skip)):
        if reason:
            log(f"{side}: skipped: {reason}")

    results: list[dict[str, Any]] = []
    durability: dict[str, str] = {}
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    with tempfile.TemporaryDirectory(prefix="kaizen-bench-") as tmp:
        for steps in args.steps:
            log(f"== {steps} steps ==")
            result: dict[str, Any] = {"steps": steps, "repeat": args.repeat}
            runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
            for attempt in range(args.repeat):
                if args.repeat > 1:
                    log(f"-- run {attempt + 1}/{args.repeat}")
                workdir = Path(tmp) / f"run-{steps}-{attempt}"
                workdir.mkdir()
                settle()
                runs["ours"].append(run_ours_sqlite(workdir, steps, args.budget))
                settle()
                runs["langgraph_sqlite"].append(run_langgraph_sqlite(workdir, steps, args.budget))
                shutil.rmtree(workdir)  # LangGraph's file reaches ~1.5 GB at 5000 steps
                if not ours_pg_skip:
                    settle()
                    runs["ours_postgres"].append(run_ours_postgres(steps, args.budget))
                if not langgraph_pg_skip:
                    settle()
                    runs["langgraph_postgres"].append(run_langgraph_postgres(steps, args.budget))
            result["ours"] = median_run(runs["ours"])
            result["langgraph_sqlite"] = median_run(runs["langgraph_sqlite"])
            result["ours_postgres"] = {"skipped": ours_pg_skip} if ours_pg_skip else median_run(runs["ours_postgres"])
            result["langgraph_postgres"] = (
                {"skipped": langgraph_pg_skip} if langgraph_pg_skip else median_run(runs["langgraph_postgres"])
            )
            for side in SIDES:
                figures = result[side]
                durability[side] = figures.get("durability") or f"skipped: {figures.get('skipped')}"
            result["ratios"] = ratios(result)
            results.append(result)

    print_report(results, durability)
    if args.json:
        machine = machine_info()
        if load_before is not None:  # other work on the machine makes fsync-bound figures noisy
            machine["loadavg_1_5_15_before"] = [round(x, 2) for x in load_before]
            machine["loadavg_1_5_15_after"] = [round(x, 2) for x in os.getloadavg()]
        document = {"results": results, "durability": durability, "machine": machine}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
