#!/usr/bin/env python
"""Many agents saving durable checkpoints into one store: saves per second and save latency.

Each agent is its own ``BaseAutonomousAgent(AutonomousConfig(storage=url))`` (so its own store
object, as in a deployment where every agent opens the store by URL) and repeats the step

    record_approval, record_tool_usage, update_workflow_state, step_number += 1, save_checkpoint()

``--agents 1 8 32`` run as threads of this process; ``--processes 8`` runs one agent per process.
Stores: SQLite (WAL, ``synchronous=FULL``) in a temporary directory and PostgreSQL
(``synchronous_commit=on``, a fresh schema dropped afterwards). Every save is durable when it returns.

The floor: bare SQLite WAL commits with ``synchronous=FULL``, one small insert each, on the same disk
(the same temporary directory) in the same run: sampled at the start, just before each configuration
and at the end; the median of the samples is the floor (a shared disk's fsync rate drifts), each
sample is in the JSON. Each result is printed beside its ratio to the floor.

Saves per commit: for threads, the shared committer's saves over its transactions. For processes on
SQLite, where the file's host process commits the saves the others hand it, the saves over the
transactions every process committed itself (a host's include other processes' saves).

Run ``python bench/many_agents.py --agents 1 8 32 --json FILE``. Progress goes to stderr, the table
to stdout. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (str(ROOT), str(ROOT / "bench")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from agent_checkpoints import timed_step as step  # noqa: E402 - the workload's one definition

DSN = os.environ.get("KAIZEN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
perf = time.perf_counter


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the floor ----------------------------------------------------------------------------
def sqlite_floor(workdir: Path, seconds: float = 1.5) -> float:
    """Bare WAL commits with FULL sync, one small insert each, for ``seconds``: commits per second."""
    path = workdir / "floor.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
    payload = b"x" * 100
    done = 0
    started = perf()
    while perf() - started < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (payload) VALUES (?)", (payload,))
        conn.execute("COMMIT")
        done += 1
    rate = done / (perf() - started)
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return rate


def postgres_floor(seconds: float = 1.5) -> float | None:
    """The same on PostgreSQL (autocommit inserts, synchronous_commit on): for reference only."""
    try:
        import psycopg

        with psycopg.connect(DSN, autocommit=True, connect_timeout=3) as conn:
            conn.execute("SET synchronous_commit = on")
            done = 0
            schema = "kz_floor_" + secrets.token_hex(4)
            conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                conn.execute(f'CREATE TABLE "{schema}".t (id serial PRIMARY KEY, payload bytea NOT NULL)')
                payload = b"x" * 100
                started = perf()
                while perf() - started < seconds:
                    conn.execute(f'INSERT INTO "{schema}".t (payload) VALUES (%s)', (payload,))
                    done += 1
                return done / (perf() - started)
            finally:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    except Exception as exc:  # noqa: BLE001 - reference figure only
        log(f"PostgreSQL floor not measured: {exc}")
        return None


def pg_unavailable() -> str | None:
    try:
        import psycopg

        import kaizen.core.autonomy.state.storage.postgres  # noqa: F401

        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: skip, and say why
        return f"PostgreSQL at {DSN} is unreachable: {str(exc).strip().splitlines()[0]}"
    return None


def pg_setting(name: str) -> str:
    import psycopg

    with psycopg.connect(DSN, connect_timeout=3) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
        return str(row[0]) if row else "?"


# --- one agent ----------------------------------------------------------------------------
def make_agent(url: str) -> Any:
    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.agents.autonomous.config import AutonomousConfig

    agent = BaseAutonomousAgent(AutonomousConfig(storage=url))
    step(agent, 0)  # the first save creates the agent's lineage: not timed
    return agent


def run_agent(agent: Any, steps: int, start: Any, latencies: list[float]) -> None:
    start.wait()
    for i in range(1, steps + 1):
        latencies.append(step(agent, i))


# --- threads ------------------------------------------------------------------------------
def run_threads(url: str, agents: int, steps: int) -> dict[str, Any]:
    made = [make_agent(url) for _ in range(agents)]
    committer = getattr(made[0].state_manager.storage, "committer", None)
    batches, saves = (committer.batches, committer.saves) if committer is not None else (0, 0)
    start = threading.Barrier(agents + 1)
    per_agent: list[list[float]] = [[] for _ in range(agents)]
    threads = [threading.Thread(target=run_agent, args=(made[n], steps, start, per_agent[n]), daemon=True)
               for n in range(agents)]
    for thread in threads:
        thread.start()
    start.wait()
    began = perf()
    for thread in threads:
        thread.join()
    elapsed = perf() - began
    result = figures([x for lat in per_agent for x in lat], elapsed)
    if committer is not None and committer.batches > batches:
        result["saves_per_commit"] = round((committer.saves - saves) / (committer.batches - batches), 1)
    for agent in made:
        agent.state_manager.close()
    return result


# --- processes ----------------------------------------------------------------------------
def process_main(url: str, steps: int, ready: Any, go: Any, results: Any) -> None:
    agent = make_agent(url)
    latencies: list[float] = []
    ready.put(os.getpid())
    go.wait()
    for i in range(1, steps + 1):
        latencies.append(step(agent, i))
    committed = None
    committer = getattr(agent.state_manager.storage, "committer", None)
    if committer is not None and hasattr(committer.writer, "forwarded"):  # SQLite: the batches this process
        committed = committer.batches - committer.writer.forwarded  # committed itself, others' saves included
    agent.state_manager.close()
    results.put((perf(), latencies, committed))


def run_processes(url: str, processes: int, steps: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = [ctx.Process(target=process_main, args=(url, steps, ready, go, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    for _ in workers:
        while True:
            try:
                ready.get(timeout=1)
                break
            except Exception:  # noqa: BLE001 - queue.Empty: is everyone still alive?
                dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"an agent process failed (exit codes {dead}); see its error above") from None
    began = perf()  # perf_counter is CLOCK_MONOTONIC: comparable across processes on Linux
    go.set()
    ends: list[float] = []
    latencies: list[float] = []
    commits: list[int | None] = []
    for _ in workers:
        end, lat, committed = results.get(timeout=600)
        ends.append(end)
        latencies.extend(lat)
        commits.append(committed)
    for worker in workers:
        worker.join()
    result = figures(latencies, max(ends) - began)
    if None not in commits and sum(commits):  # type: ignore[arg-type]
        result["saves_per_commit"] = round(len(latencies) / sum(commits), 1)  # type: ignore[arg-type]
    return result


def figures(latencies: list[float], elapsed: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"saves": len(ordered), "seconds": round(elapsed, 3), "saves_per_s": round(len(ordered) / elapsed, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 3), "p99_ms": round(pick(0.99), 3)}


# --- stores -------------------------------------------------------------------------------
class Sqlite:
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def fresh(self) -> str:
        path = self.workdir / f"agents_{secrets.token_hex(4)}.db"
        return f"sqlite:///{path}?synchronous=FULL"

    def done(self, url: str) -> None:
        path = url[len("sqlite:///"):].split("?", 1)[0]
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class Postgres:
    name = "postgres"

    def fresh(self) -> str:
        self.schema = "kz_bench_" + secrets.token_hex(5)
        return f"{DSN}{'&' if '?' in DSN else '?'}schema={self.schema}"

    def done(self, url: str) -> None:
        import psycopg

        schema = url.rsplit("schema=", 1)[1]
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def steps_for(agents: int, saves: int, steps: int | None) -> int:
    return steps if steps is not None else max(20, saves // agents)


def cpu_figures(store: str) -> tuple[Any, Any]:
    """``cpu_us_per_save`` and ``cold_load_ms`` from ``bench/save_cpu.py`` when it exists."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import save_cpu  # type: ignore[import-not-found]
    except ImportError:
        return "not measured", "not measured"
    cpu: Any
    cold: Any
    try:  # the median of three runs: a shared machine's speed drifts from one second to the next
        runs = [save_cpu.cpu_us_per_save(steps=5000, store=store)["cpu_us_per_save"] for _ in range(3)]
        cpu = round(statistics.median(runs), 1)
    except Exception as exc:  # noqa: BLE001
        cpu = f"not measured ({exc})"
    try:
        cold = save_cpu.cold_load_ms(records=5000, runs=11)
    except Exception as exc:  # noqa: BLE001
        cold = f"not measured ({exc})"
    return cpu, cold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, nargs="*", default=[1, 8, 32], help="agents as threads (default 1 8 32)")
    parser.add_argument("--processes", type=int, nargs="*", default=[8], help="agents as processes (default 8; none: skip)")
    parser.add_argument("--stores", nargs="+", choices=("sqlite", "postgres"), default=["sqlite", "postgres"])
    parser.add_argument("--saves", type=int, default=4000, help="timed saves per configuration (default 4000)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per agent (overrides --saves)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="kz_many_agents_", dir=os.environ.get("KAIZEN_BENCH_DIR")))
    try:
        log(f"measuring the floor in {workdir} ...")
        floors = [sqlite_floor(workdir)]
        log(f"floor: {floors[0]:,.0f} bare WAL commits/s (synchronous=FULL)")
        stores: list[Any] = []
        notes: dict[str, str] = {}
        for name in args.stores:
            if name == "sqlite":
                stores.append(Sqlite(workdir))
            else:
                problem = pg_unavailable()
                if problem:
                    notes["postgres"] = f"skipped: {problem}"
                    log(notes["postgres"])
                else:
                    stores.append(Postgres())
        pg_floor = postgres_floor() if any(s.name == "postgres" for s in stores) else None
        configs = [("threads", n) for n in args.agents or []] + [("processes", n) for n in args.processes or []]
        results: list[dict[str, Any]] = []
        for store in stores:
            for mode, count in configs:
                steps = steps_for(count, args.saves, args.steps)
                floors.append(sqlite_floor(workdir, 0.75))  # the disk just before this configuration
                url = store.fresh()
                log(f"{store.name}: {count} agents ({mode}), {steps} steps each ...")
                try:
                    run = run_threads if mode == "threads" else run_processes
                    measured = run(url, count, steps)
                finally:
                    store.done(url)
                measured.update({"store": store.name, "agents": count, "mode": mode,
                                 "floor_just_before": round(floors[-1], 1)})
                log(f"  {measured['saves_per_s']:,.0f} saves/s, p50 {measured['p50_ms']:.2f} ms, "
                    f"p99 {measured['p99_ms']:.2f} ms")
                results.append(measured)
                os.sync()
                time.sleep(0.5)
        floors.append(sqlite_floor(workdir))
        floor = statistics.median(floors)
        for measured in results:
            measured["ratio_to_floor"] = round(measured["saves_per_s"] / floor, 2)
        log("CPU per save and cold load (bench/save_cpu.py) ...")
        cpu, cold = cpu_figures("sqlite")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    doc: dict[str, Any] = {
        "floor_commits_per_s": round(floor, 1),
        "floor_samples": [round(f, 1) for f in floors],
        "cpu_us_per_save": cpu,
        "cold_load_ms": cold,
        "results": [{key: r[key] for key in ("store", "agents", "mode", "saves_per_s", "p50_ms", "p99_ms")}
                    | {k: v for k, v in r.items() if k not in ("store", "agents", "mode", "saves_per_s",
                                                               "p50_ms", "p99_ms")} for r in results],
        "postgres_floor_commits_per_s": None if pg_floor is None else round(pg_floor, 1),
        "notes": notes,
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "sqlite": sqlite3.sqlite_version,
                    "postgres_synchronous_commit": pg_setting("synchronous_commit") if pg_floor is not None else None},
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    print_table(doc)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def print_table(doc: dict[str, Any]) -> None:
    floor = doc["floor_commits_per_s"]
    print(f"floor: {floor:,.0f} bare SQLite WAL commits/s (synchronous=FULL, one small insert each, same disk; "
          f"median of {len(doc['floor_samples'])} samples: {', '.join(f'{f:,.0f}' for f in doc['floor_samples'])})")
    if doc.get("postgres_floor_commits_per_s"):
        print(f"PostgreSQL single-insert commits/s (synchronous_commit=on, one connection): "
              f"{doc['postgres_floor_commits_per_s']:,.0f}")
    cold = doc["cold_load_ms"]
    if isinstance(cold, dict):
        cold = f"ours {cold.get('ours', 0):.1f} ms, LangGraph SqliteSaver {cold.get('langgraph_sqlite', 0):.1f} ms"
    print(f"CPU per save: {doc['cpu_us_per_save']} us; cold load of a 5,000-record agent: {cold}")
    print(f"{'store':<9} {'mode':<10} {'agents':>6} {'saves/s':>10} {'x floor':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'saves/commit':>12}")
    for r in doc["results"]:
        print(f"{r['store']:<9} {r['mode']:<10} {r['agents']:>6} {r['saves_per_s']:>10,.0f} "
              f"{r['saves_per_s'] / floor:>8.2f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
              f"{r.get('saves_per_commit', '-'):>12}")
    for store, note in doc["notes"].items():
        print(f"{store}: {note}")


if __name__ == "__main__":
    sys.exit(main())
