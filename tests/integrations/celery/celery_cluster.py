"""Real Celery worker processes on a real broker, for the tests and bench/celery_workers.py.

``Cluster`` starts workers of ``celery_ledger_app`` on its own queue, kills and restarts
them, and removes the queue afterwards so runs never see each other's messages.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
BROKER = os.environ.get("KAIZEN_CELERY_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def broker_error(broker: str = BROKER) -> str | None:
    try:
        from kombu import Connection
    except ImportError:
        return "celery is not installed (pip install -e '.[dev]')"
    try:
        with Connection(broker, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"the Celery broker at {broker} is unreachable: {exc}"
    return None


@dataclass
class Worker:
    """One launch of a worker process (a restart is a new launch with a new name)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)
    killed_at: float | None = None  # time.time() once it was killed and reaped


@dataclass
class Cluster:
    store_url: str
    log_dir: Path
    pool: str = "solo"
    calls: int = 3
    tool_sleep: float = 0.02
    ttl: float = 3.0
    broker: str = BROKER
    queue: str = field(default_factory=lambda: "kaizen-test-" + secrets.token_hex(6))
    launches: list[Worker] = field(default_factory=list)
    _count: int = 0

    def env(self, name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(KZC_BROKER=self.broker, KZC_QUEUE=self.queue, KZC_STORE=self.store_url, KZC_WORKER_NAME=name,
                   KZC_CALLS=str(self.calls), KZC_TOOL_SLEEP=str(self.tool_sleep), KZC_TTL=str(self.ttl))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), str(HERE), env.get("PYTHONPATH", "")) if p)
        return env

    def start(self, pool: str | None = None) -> Worker:
        self._count += 1
        name = f"w{self._count}-{self.queue[-12:]}"
        log = self.log_dir / f"{name}.log"
        command = [sys.executable, "-m", "celery", "-A", "celery_ledger_app", "worker", "--pool", pool or self.pool,
                   "--concurrency", "1", "-Q", self.queue, "-n", f"{name}@%h", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=HERE, env=self.env(name), stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)  # its own group: a kill takes the pool children too
        worker = Worker(name, process, log)
        self.launches.append(worker)
        return worker

    def alive(self) -> list[Worker]:
        return [w for w in self.launches if w.killed_at is None and w.process.poll() is None]

    def kill(self, worker: Worker) -> None:
        """SIGKILL the worker and every process of its group, and wait until they are gone."""
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.process.wait(timeout=30)
        _wait_group_gone(worker.process.pid)
        worker.killed_at = time.time()

    def stop(self) -> None:
        for worker in self.launches:
            if worker.process.poll() is None:
                self.kill(worker)

    def enqueue(self, agent_ids: list[str], inputs: dict[str, Any]) -> None:
        app = self.producer()
        task = app.tasks["kaizen.run_agent"]
        with app.connection_for_write() as conn:
            for agent_id in agent_ids:
                task.apply_async(args=(agent_id, inputs), connection=conn)

    def producer(self) -> Any:
        from celery import Celery

        from kaizen.integrations.celery import register_agent_task

        app = Celery("kaizen_ledger_producer", broker=self.broker)
        app.conf.update(task_default_queue=self.queue, task_ignore_result=True)
        register_agent_task(app, "celery_ledger_app:build_agent")  # never built here: producers need no agents
        return app

    def delete_queue(self) -> None:
        from kombu import Connection

        with Connection(self.broker, connect_timeout=3) as conn:
            channel = conn.default_channel
            channel.queue_delete(self.queue)
            channel.exchange_delete(self.queue)

    def logs(self) -> str:
        return "\n".join(f"--- {w.name} ---\n{w.log.read_text(errors='replace')[-3000:]}" for w in self.launches)


def _wait_group_gone(pgid: int, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)
