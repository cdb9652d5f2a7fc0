"""Agent runs per second on 1, 2 and 4 Celery workers (RabbitMQ broker, one PostgreSQL store).

Run ``python bench/celery_workers.py --workers 1 2 4 --runs 100 [--json FILE]`` from the
repository root. Each agent run asks the offline scripted model for ``--calls`` tool calls
(each appends to a ledger table and sleeps ``--tool-sleep`` seconds, standing in for real
tool latency) and then answers; every step is checkpointed under the agent's lease, as the
Celery task does in production. For each worker count the workers are started and waited
for first, then all runs are queued at once and the clock runs until the last one has
completed. Timings are printed and written as JSON, never asserted.

The broker URL comes from ``KAIZEN_CELERY_BROKER`` (default the local RabbitMQ), the store
from ``KAIZEN_PG_DSN``; each worker count uses its own queue and schema, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "tests" / "integrations" / "celery"
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(HARNESS)]

from celery_cluster import Cluster, broker_error  # noqa: E402  (the worker harness the tests use)
from celery_ledger_app import connect, create_ledger  # noqa: E402
from pg import drop_schema, new_schema, server_error, store_url  # noqa: E402


def consumers(cluster: Cluster) -> int:
    from kombu import Connection

    with Connection(cluster.broker, connect_timeout=3) as conn:
        channel = conn.default_channel
        return channel.queue_declare(cluster.queue, durable=True, auto_delete=False).consumer_count


def completed(cluster: Cluster) -> int:
    with connect(cluster.store_url) as conn:
        row = conn.execute("SELECT count(DISTINCT agent_id) FROM ledger_runs WHERE status = 'completed'").fetchone()
    return int(row[0]) if row else 0


def measure(workers: int, runs: int, calls: int, tool_sleep: float, log_dir: Path) -> dict[str, Any]:
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    schema = new_schema()
    url = store_url(schema)
    SyncStateManager(url).storage.list_agents()  # tables exist before the workers start
    create_ledger(url)
    cluster = Cluster(store_url=url, log_dir=log_dir, calls=calls, tool_sleep=tool_sleep, ttl=10.0)
    try:
        for _ in range(workers):
            cluster.start()
        deadline = time.monotonic() + 120
        while consumers(cluster) < workers:
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start:\n{cluster.logs()}")
            time.sleep(0.2)
        began = time.perf_counter()
        cluster.enqueue([f"agent-{i:05d}" for i in range(runs)], {"task": "append the steps"})
        while (done := completed(cluster)) < runs:
            if time.perf_counter() - began > 60 + runs * 2:
                raise RuntimeError(f"only {done}/{runs} runs completed:\n{cluster.logs()}")
            time.sleep(0.05)
        elapsed = time.perf_counter() - began
    finally:
        cluster.stop()
        try:
            cluster.delete_queue()
        finally:
            drop_schema(schema)
    return {"workers": workers, "runs": runs, "seconds": round(elapsed, 3), "runs_per_s": round(runs / elapsed, 2),
            "tool_calls_per_s": round(runs * calls / elapsed, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts to measure")
    parser.add_argument("--runs", type=int, default=100, help="agent runs queued per worker count")
    parser.add_argument("--calls", type=int, default=3, help="tool calls per run")
    parser.add_argument("--tool-sleep", type=float, default=0.02, help="seconds each tool call takes")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    for problem in (server_error(), broker_error()):
        if problem:
            print(f"cannot run: {problem}", file=sys.stderr)
            return 2
    results = []
    with tempfile.TemporaryDirectory(prefix="kz_celery_bench_") as tmp:
        for workers in args.workers:
            result = measure(workers, args.runs, args.calls, args.tool_sleep, Path(tmp))
            results.append(result)
            print(f"{workers} worker(s): {args.runs} runs in {result['seconds']:.2f} s = "
                  f"{result['runs_per_s']:.1f} runs/s ({result['tool_calls_per_s']:.0f} tool calls/s)", flush=True)
    if args.json:
        document = {"benchmark": "celery_workers", "calls_per_run": args.calls, "tool_sleep_s": args.tool_sleep,
                    "machine": {"python": platform.python_version(), "cpus": _cpus(),
                                "load_average_at_end": list(os.getloadavg())}, "results": results}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


if __name__ == "__main__":
    sys.exit(main())
