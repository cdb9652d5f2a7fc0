#!/usr/bin/env python
"""A real LangGraph graph checkpointed by our saver and by LangGraph's own savers.

The graph: a ``StateGraph`` whose ``messages`` channel uses ``add_messages``; one
``agent`` node appends one AI message per step and loops until ``--steps`` steps
are done (one ``invoke``, ``durability="sync"``: every step's checkpoint is
written before the next step runs). Sides, each on a fresh store:

* ``ours``: ``KaizenSaver`` on ``sqlite:///<tmp>/ours.db`` (WAL, synchronous=FULL);
* ``sqlite_saver``: ``SqliteSaver`` on ``<tmp>/langgraph.db`` (WAL, synchronous=FULL);
* ``ours_postgres``: ``KaizenSaver`` on ``postgresql://...?schema=<fresh>``;
* ``postgres_saver``: ``PostgresSaver`` in another fresh schema.

Figures per side: ``puts_per_s`` (puts / time spent inside ``put``), ``bytes`` (store
size: SQLite file + WAL, or ``pg_total_relation_size`` over the schema),
``get_state_ms`` (median of 5 ``graph.get_state`` by a fresh saver, after one warm-up),
``first100_ms`` / ``last100_ms`` (mean ``put`` latency of the first / last 100 puts).

Run ``python bench/langgraph_saver.py --steps 1000 5000 --json out.json``.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from agent_checkpoints import (
    ROOT,
    drop_schema,
    langgraph_pg_saver,
    langgraph_sqlite_connect,
    log,
    pg_bytes,
    pg_unavailable,
    pg_url,
    settle,
    sqlite_bytes,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from kaizen.integrations.langgraph import KaizenSaver  # noqa: E402

WINDOW = 100
GET_STATE_RUNS = 5
SIDES = ("ours", "sqlite_saver", "ours_postgres", "postgres_saver")
WORDS = ("build release tag version notes test check deploy branch merge review fix bug error log metric "
         "user request reply tool call result plan step next done retry cache query table index schema").split()
perf = time.perf_counter


class ChatState(TypedDict, total=False):
    messages: Annotated[list[BaseMessage], add_messages]
    turns: int


def reply(turn: int) -> str:
    """~200 characters of varied words, like a model's reply (repetitive text would flatter
    PostgreSQL's TOAST compression of LangGraph's whole-list blobs)."""
    rng = random.Random(turn)
    return f"step {turn}: " + " ".join(rng.choice(WORDS) + str(rng.randrange(100)) for _ in range(28))


def build_graph(checkpointer: Any, steps: int) -> Any:
    def agent(state: ChatState) -> dict[str, Any]:
        turn = state.get("turns", 0) + 1
        return {"messages": [AIMessage(content=reply(turn), id=f"ai-{turn}")], "turns": turn}

    def route(state: ChatState) -> str:
        return END if state["turns"] >= steps else "agent"

    builder = StateGraph(ChatState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route)
    return builder.compile(checkpointer=checkpointer)


def timed_puts(saver: Any) -> list[float]:
    """Time every ``put`` LangGraph makes on ``saver`` (it calls the instance's attribute)."""
    latencies: list[float] = []
    put = saver.put

    def timed(*args: Any, **kwargs: Any) -> Any:
        started = perf()
        try:
            return put(*args, **kwargs)
        finally:
            latencies.append(perf() - started)

    saver.put = timed
    return latencies


def run_graph(saver: Any, steps: int, thread_id: str) -> dict[str, Any]:
    latencies = timed_puts(saver)
    graph = build_graph(saver, steps)
    config = {"configurable": {"thread_id": thread_id}, "recursion_limit": steps + 10}
    started = perf()
    graph.invoke({"messages": [HumanMessage(content="Ship the release.", id="human-0")]}, config,
                 durability="sync")
    seconds = perf() - started
    done = graph.get_state(config).values["turns"]
    if done != steps:
        raise RuntimeError(f"the graph ran {done} steps, expected {steps}")
    return {
        "puts_per_s": len(latencies) / sum(latencies),
        "first100_ms": statistics.fmean(latencies[:WINDOW]) * 1000,
        "last100_ms": statistics.fmean(latencies[-WINDOW:]) * 1000,
        "graph_seconds": seconds,
        "puts": len(latencies),
    }


def time_get_state(open_saver: Callable[[], Any], steps: int, thread_id: str) -> float:
    """Median ``get_state`` of a fresh saver, after one warm-up call; checks every message came back."""
    with open_saver() as saver:
        graph = build_graph(saver, steps)
        config = {"configurable": {"thread_id": thread_id}}
        times = []
        for _ in range(GET_STATE_RUNS + 1):
            started = perf()
            state = graph.get_state(config)
            times.append(perf() - started)
            if len(state.values["messages"]) != steps + 1:
                raise RuntimeError(f"get_state returned {len(state.values['messages'])} messages, expected {steps + 1}")
    return statistics.median(times[1:]) * 1000


# --- the four sides -------------------------------------------------------------------------
def side_ours(url: str, steps: int) -> dict[str, Any]:
    thread_id = "bench-" + secrets.token_hex(4)
    with KaizenSaver.from_conn_string(url) as saver:
        figures = run_graph(saver, steps, thread_id)
    figures["get_state_ms"] = time_get_state(lambda: KaizenSaver.from_conn_string(url), steps, thread_id)
    return figures


def side_ours_sqlite(workdir: Path, steps: int) -> dict[str, Any]:
    path = workdir / f"ours-{steps}.db"
    figures = side_ours(f"sqlite:///{path}?synchronous=FULL", steps)
    figures["bytes"] = sqlite_bytes(path)
    return figures


def side_ours_postgres(steps: int) -> dict[str, Any]:
    schema = "kz_bench_" + secrets.token_hex(5)
    try:
        figures = side_ours(pg_url(schema), steps)
        figures["bytes"] = pg_bytes(schema)
        return figures
    finally:
        drop_schema(schema)


@contextmanager
def sqlite_saver(path: Path) -> Iterator[Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    conn = langgraph_sqlite_connect(path)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


def side_sqlite_saver(workdir: Path, steps: int) -> dict[str, Any]:
    path = workdir / f"langgraph-{steps}.db"
    thread_id = "bench-" + secrets.token_hex(4)
    with sqlite_saver(path) as saver:
        figures = run_graph(saver, steps, thread_id)
    figures["get_state_ms"] = time_get_state(lambda: sqlite_saver(path), steps, thread_id)
    figures["bytes"] = sqlite_bytes(path)
    path.unlink()
    return figures


def side_postgres_saver(steps: int) -> dict[str, Any]:
    schema = "lg_bench_" + secrets.token_hex(5)
    thread_id = "bench-" + secrets.token_hex(4)
    try:
        with langgraph_pg_saver(schema) as saver:
            saver.setup()
            figures = run_graph(saver, steps, thread_id)
        figures["get_state_ms"] = time_get_state(lambda: langgraph_pg_saver(schema), steps, thread_id)
        figures["bytes"] = pg_bytes(schema)
        return figures
    finally:
        drop_schema(schema)


# --- report ---------------------------------------------------------------------------------
KEYS = ("puts_per_s", "bytes", "get_state_ms", "first100_ms", "last100_ms")


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"{'steps':>6} {'side':<15} {'puts/s':>9} {'bytes':>15} {'get_state ms':>13} {'first100 ms':>12} "
          f"{'last100 ms':>11} {'graph s':>8}")
    for result in results:
        for side in SIDES:
            f = result.get(side)
            if not f:
                continue
            print(f"{result['steps']:>6} {side:<15} {f['puts_per_s']:>9.1f} {f['bytes']:>15,} {f['get_state_ms']:>13.2f} "
                  f"{f['first100_ms']:>12.3f} {f['last100_ms']:>11.3f} {f['graph_seconds']:>8.1f}")
        for ours, theirs in (("ours", "sqlite_saver"), ("ours_postgres", "postgres_saver")):
            a, b = result.get(ours), result.get(theirs)
            if a and b:
                print(f"{'':>6} {ours} vs {theirs}: puts/s {a['puts_per_s'] / b['puts_per_s']:.2f}x, "
                      f"bytes 1/{b['bytes'] / a['bytes']:.0f}, get_state {b['get_state_ms'] / a['get_state_ms']:.2f}x "
                      f"faster, our last100/first100 {a['last100_ms'] / a['first100_ms']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000])
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite sides only")
    args = parser.parse_args(argv)
    pg_missing = "--no-postgres" if args.no_postgres else pg_unavailable()
    if pg_missing:
        log(f"PostgreSQL sides skipped: {pg_missing}")
    results = []
    with tempfile.TemporaryDirectory(prefix="kaizen-lg-bench-") as tmp:
        workdir = Path(tmp)
        for steps in args.steps:
            result: dict[str, Any] = {"steps": steps}
            runs: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                ("ours", lambda: side_ours_sqlite(workdir, steps)),
                ("sqlite_saver", lambda: side_sqlite_saver(workdir, steps)),
            ]
            if not pg_missing:
                runs += [("ours_postgres", lambda: side_ours_postgres(steps)),
                         ("postgres_saver", lambda: side_postgres_saver(steps))]
            for side, run in runs:
                log(f"{steps} steps: {side} ...")
                result[side] = run()
                settle()
            results.append(result)
    print_table(results)
    if args.json:
        shaped = {"results": [{"steps": r["steps"], **{side: {key: r[side][key] for key in KEYS}
                                                           for side in SIDES if side in r}} for r in results]}
        args.json.write_text(json.dumps(shaped, indent=2) + "\n")
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
