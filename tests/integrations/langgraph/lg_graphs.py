"""Real LangGraph graphs for the saver tests, and a transcript of what a user observes of a run
(values, next nodes, interrupts, history) without the ids and times that differ between runs."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Interrupt, interrupt
from typing_extensions import TypedDict


class ChatState(TypedDict, total=False):
    messages: Annotated[list[BaseMessage], add_messages]
    turns: int
    approved: bool


def agent(state: ChatState) -> dict[str, Any]:
    turns = state.get("turns", 0) + 1
    last = state["messages"][-1].content
    return {"messages": [AIMessage(content=f"reply {turns} to {last}", id=f"ai-{turns}")], "turns": turns}


def line(*nodes: tuple[str, Any], checkpointer: Any = None) -> Any:
    """START -> each node in turn -> END."""
    builder = StateGraph(ChatState)
    previous = START
    for name, node in nodes:
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=checkpointer)


def chat_graph(checkpointer: Any) -> Any:
    """One agent node that answers each human message: the messages channel grows every turn."""
    return line(("agent", agent), checkpointer=checkpointer)


def review(state: ChatState) -> dict[str, Any]:
    answer = interrupt({"tool_name": "send_email", "draft": state["messages"][-1].content})
    approved = answer is True or (isinstance(answer, dict) and answer.get("approved") is True)
    return {"approved": approved, "messages": [AIMessage(content=f"review: {answer!r}", id=f"review-{state.get('turns', 0)}")]}


def approval_graph(checkpointer: Any) -> Any:
    """agent -> review (asks a human through interrupt()) -> end."""
    return line(("agent", agent), ("review", review), checkpointer=checkpointer)


def nested_graph(checkpointer: Any) -> Any:
    """A parent whose middle node is a compiled subgraph with its own review interrupt."""
    team = line(("draft", agent), ("review", review))
    return line(("agent", agent), ("team", team), checkpointer=checkpointer)


def human(text: str, n: int) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text, id=f"human-{n}")]}


def plain(value: Any) -> Any:
    """Values as comparable data: messages by type, id and content; interrupts by value (their
    ids are derived from checkpoint ids, which differ from run to run)."""
    if isinstance(value, Interrupt):
        return ("interrupt", plain(value.value))
    if isinstance(value, BaseMessage):
        return (value.type, value.id, value.content)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def snapshot(state: Any) -> dict[str, Any]:
    return {
        "values": plain(state.values),
        "next": tuple(state.next),
        "step": state.metadata.get("step") if state.metadata else None,
        "source": state.metadata.get("source") if state.metadata else None,
        "interrupts": [plain(i.value) for i in state.interrupts],
        "tasks": [(t.name, plain([i.value for i in t.interrupts])) for t in state.tasks],
    }


def history(graph: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    return [snapshot(state) for state in graph.get_state_history(config)]


# --- scenarios: each returns the transcript of one run ------------------------------------
def run_chat(checkpointer: Any, turns: int = 5, thread: str = "chat-1") -> list[Any]:
    graph = chat_graph(checkpointer)
    config = {"configurable": {"thread_id": thread}}
    out = [plain(graph.invoke(human(f"question {n}", n), config)) for n in range(turns)]
    return out + [snapshot(graph.get_state(config)), history(graph, config)]


def run_approval(checkpointer: Any, thread: str = "review-1") -> list[Any]:
    graph = approval_graph(checkpointer)
    config = {"configurable": {"thread_id": thread}}
    out = [plain(graph.invoke(human("send the report", 0), config)), snapshot(graph.get_state(config))]
    out.append(plain(graph.invoke(Command(resume={"approved": True, "decided_by": "alice"}), config)))
    out.append(plain(graph.invoke(human("send it again", 1), config)))
    out.append(plain(graph.invoke(Command(resume="no"), config)))
    return out + [snapshot(graph.get_state(config)), history(graph, config)]


def run_time_travel(checkpointer: Any, thread: str = "travel-1") -> list[Any]:
    graph = chat_graph(checkpointer)
    config = {"configurable": {"thread_id": thread}}
    for n in range(3):
        graph.invoke(human(f"question {n}", n), config)
    states = list(graph.get_state_history(config))
    # back to the state after the first answer, change it, and continue from there (a fork)
    earlier = next(s for s in states if s.metadata["step"] == 1)
    forked = graph.update_state(earlier.config, human("a different question", 9))
    replay = plain(graph.invoke(None, forked))
    again = plain(graph.invoke(human("and then", 10), config))
    older = snapshot(graph.get_state(earlier.config))
    return [replay, again, older, snapshot(graph.get_state(config)), history(graph, config)]


def run_subgraph(checkpointer: Any, thread: str = "nested-1") -> list[Any]:
    graph = nested_graph(checkpointer)
    config = {"configurable": {"thread_id": thread}}
    out = [plain(graph.invoke(human("plan the launch", 0), config))]
    state = graph.get_state(config, subgraphs=True)
    out.append(snapshot(state))
    out.append([snapshot(task.state) for task in state.tasks if task.state is not None])
    out.append(plain(graph.invoke(Command(resume=True), config)))
    return out + [snapshot(graph.get_state(config)), history(graph, config)]
