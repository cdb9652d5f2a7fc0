"""Real graphs on the saver give exactly what they give on LangGraph's InMemorySaver, on every
store: a messages channel, interrupt() + Command(resume=...), time travel and a subgraph."""

from __future__ import annotations

import asyncio

import lg_graphs as graphs
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from kaizen.integrations.langgraph import AsyncKaizenSaver, KaizenSaver

SCENARIOS = [graphs.run_chat, graphs.run_approval, graphs.run_time_travel, graphs.run_subgraph]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda f: f.__name__)
def test_graph_runs_as_on_in_memory_saver(saver_url, scenario):
    expected = scenario(InMemorySaver())
    with KaizenSaver.from_conn_string(saver_url) as saver:
        assert scenario(saver) == expected


@pytest.mark.parametrize("store_kind", ["sqlite", "postgres"], indirect=True)
def test_state_survives_reopening_the_store(saver_url):
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.chat_graph(saver)
        config = {"configurable": {"thread_id": "reopen"}}
        for n in range(4):
            graph.invoke(graphs.human(f"q{n}", n), config)
        before = graphs.history(graph, config)
    with KaizenSaver.from_conn_string(saver_url) as saver:
        graph = graphs.chat_graph(saver)
        assert graphs.history(graph, config) == before
        graph.invoke(graphs.human("q4", 4), config)
        assert len(graph.get_state(config).values["messages"]) == 10


def test_async_graph_runs_as_on_in_memory_saver(saver_url):
    async def run(checkpointer):
        graph = graphs.approval_graph(checkpointer)
        config = {"configurable": {"thread_id": "async-1"}}
        first = graphs.plain(await graph.ainvoke(graphs.human("ship it", 0), config))
        second = graphs.plain(await graph.ainvoke(graphs.Command(resume=True), config))
        states = [graphs.snapshot(s) async for s in graph.aget_state_history(config)]
        return [first, second, states]

    async def ours():
        async with AsyncKaizenSaver.from_conn_string(saver_url) as saver:
            return await run(saver)

    assert asyncio.run(ours()) == asyncio.run(run(InMemorySaver()))
