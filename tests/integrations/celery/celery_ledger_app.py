"""A Celery app whose agents append every executed tool call to a ledger in PostgreSQL.

Workers load it with ``celery -A celery_ledger_app worker``; the test and the benchmark
configure it through the environment:

  KZC_BROKER       broker URL (default amqp://guest:guest@127.0.0.1:5672//)
  KZC_QUEUE        the queue this run uses (its own per test run)
  KZC_STORE        the agents' PostgreSQL store URL (``...?schema=S``); the ledger tables live
                   in the same schema
  KZC_WORKER_NAME  the name of this worker launch, written beside each ledger row
  KZC_CALLS        tool calls per run (default 3); KZC_TOOL_SLEEP seconds each call takes
  KZC_TTL          the agents' lease time to live in seconds (default 3)

Each agent's script asks for KZC_CALLS calls of ``append`` (call ids ``call_1``...) and then
answers. ``append`` has a side effect (it changes the world), so a call interrupted by a crash is
never repeated. The hooks ``pre_agent_loop``/``post_agent_loop`` record the interval in
which a worker ran an agent.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from celery import Celery

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.agents.autonomous.config import AutonomousConfig
from kaizen.integrations.celery import register_agent_task
from kaizen.providers.scripted import ScriptedProvider
from kaizen.signatures import InputField, OutputField, Signature
from kaizen.tools import ToolRegistry

BROKER = os.environ.get("KZC_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
QUEUE = os.environ.get("KZC_QUEUE", "kaizen-agents")
STORE = os.environ.get("KZC_STORE", "")
WORKER_NAME = os.environ.get("KZC_WORKER_NAME", f"local-{os.getpid()}")
CALLS = int(os.environ.get("KZC_CALLS", "3"))
TOOL_SLEEP = float(os.environ.get("KZC_TOOL_SLEEP", "0.02"))
TTL = float(os.environ.get("KZC_TTL", "3"))

LEDGER_TABLES = (
    "CREATE TABLE IF NOT EXISTS ledger_calls (agent_id text NOT NULL, call_id text NOT NULL, "
    "worker text NOT NULL, started timestamptz NOT NULL, ended timestamptz)",
    "CREATE TABLE IF NOT EXISTS ledger_runs (id bigserial PRIMARY KEY, agent_id text NOT NULL, "
    "worker text NOT NULL, started timestamptz NOT NULL, ended timestamptz, status text)",
)


class LedgerTask(Signature):
    """Append the steps to the ledger."""

    task: str = InputField(description="the task")
    result: str = OutputField(description="the outcome")


def ledger_dsn(store_url: str) -> tuple[str, str]:
    """The plain DSN and the schema of a ``postgresql://...?schema=S`` store URL."""
    parts = urlsplit(store_url)
    schema = parse_qs(parts.query).get("schema", ["public"])[0]
    return parts._replace(query="").geturl(), schema


def connect(store_url: str) -> psycopg.Connection[Any]:
    dsn, schema = ledger_dsn(store_url)
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute(f'SET search_path TO "{schema}"')
    return conn


def create_ledger(store_url: str) -> None:
    with connect(store_url) as conn:
        for statement in LEDGER_TABLES:
            conn.execute(statement)


_local = threading.local()


def _ledger() -> psycopg.Connection[Any]:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = connect(STORE)
    return conn


def script(calls: int = CALLS) -> list[Any]:
    turns: list[Any] = [
        {"content": "", "tool_calls": [{"id": f"call_{i}", "name": "append", "arguments": {"step": i}}]}
        for i in range(1, calls + 1)
    ]
    return [*turns, "finished"]


def build_agent(agent_id: str) -> BaseAutonomousAgent:
    """The user's factory: tools, provider and hooks are built here, on the worker."""
    registry = ToolRegistry()

    @registry.tool(danger="side_effect")
    def append(step: int) -> str:
        """Append this step to the ledger."""
        conn = _ledger()
        row = conn.execute(
            "INSERT INTO ledger_calls (agent_id, call_id, worker, started) VALUES (%s, %s, %s, clock_timestamp()) "
            "RETURNING ctid", (agent_id, f"call_{step}", WORKER_NAME)).fetchone()
        if TOOL_SLEEP:
            time.sleep(TOOL_SLEEP)
        conn.execute("UPDATE ledger_calls SET ended = clock_timestamp() WHERE ctid = %s", (row[0],))
        return f"appended step {step}"

    config = AutonomousConfig(llm_provider="scripted", model="m", storage=STORE, approval_policy="allow_all",
                              max_cycles=CALLS + 5, lease_ttl=TTL)
    agent = BaseAutonomousAgent(config, LedgerTask(), agent_id, provider=ScriptedProvider(script()), tools=registry)
    run_row: dict[str, int] = {}

    def started(context: Any) -> None:
        run_row["id"] = _ledger().execute(
            "INSERT INTO ledger_runs (agent_id, worker, started) VALUES (%s, %s, clock_timestamp()) RETURNING id",
            (agent_id, WORKER_NAME)).fetchone()[0]

    def ended(context: Any) -> None:
        _ledger().execute("UPDATE ledger_runs SET ended = clock_timestamp(), status = %s WHERE id = %s",
                          (context.data.get("status"), run_row["id"]))

    agent.hooks.register("pre_agent_loop", started, timeout=120.0)  # a slow insert under load is no failure
    agent.hooks.register("post_agent_loop", ended, timeout=120.0)
    return agent


app = Celery("kaizen_ledger", broker=BROKER)
app.conf.update(task_default_queue=QUEUE, broker_connection_retry_on_startup=True, task_ignore_result=True,
                worker_hijack_root_logger=False)
run_agent = register_agent_task(app, build_agent)
