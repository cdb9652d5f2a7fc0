"""What a running agent prints: each cycle, approval and tool call, then a summary."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

from .errors import console
from .options import store_suffix
from .tables import approvals_table, plural


class Progress:
    """Hooks that print a run as it happens and count its checkpoint saves."""

    def __init__(self, agent: Any) -> None:
        self.saves = 0
        agent.hooks.register("pre_cycle", self.on_cycle)
        agent.hooks.register("approval_decided", self.on_decision)
        agent.hooks.register("post_tool_use", self.on_tool)
        agent.hooks.register("post_checkpoint_save", self.on_save)

    def on_tool(self, context: Any) -> None:
        data = context.data
        mark = "[green]ok[/green]" if data.get("ok") else f"[red]error[/red] {escape(str(data.get('error')))}"
        console.print(f"    {escape(str(data.get('tool_name')))} {mark}", highlight=False)

    def on_decision(self, context: Any) -> None:
        data = context.data
        verdict = "[green]approved[/green]" if data["approved"] else "[red]denied[/red]"
        console.print(f"  {escape(data['tool_name'])}: {verdict} ({data['action']}, by {data['decided_by']})",
                      highlight=False)

    def on_cycle(self, context: Any) -> None:
        console.print(f"[bold]cycle {context.data['cycle']}[/bold]")

    def on_save(self, context: Any) -> None:
        self.saves += 1


def print_summary(agent: Any, result: Any, saves: int, store_url: str) -> None:
    console.print()
    color = "green" if result.status == "completed" else "yellow"
    outcome = next(iter(result.outputs.values()), "") if result.outputs else result.error
    console.print(f"[bold {color}]{result.status}[/bold {color}] after {plural(result.cycles, 'cycle')}: "
                  f"{escape(str(outcome))}")
    console.print(approvals_table(list(agent.approval_history), "Approvals"))
    counts = agent.tool_usage_counts
    console.print("Tool usage: " + ", ".join(f"{tool} x{count}" for tool, count in counts.items()))
    cost = agent.estimate_cost()
    console.print(f"Estimated cost: ${cost.total:.4f} (demo prices)")
    console.print(f"Checkpoints written: {saves} (latest {result.checkpoint_id})")
    if store_url.startswith(("memory:", "mem:")):  # nothing outside this process can read it
        console.print("\nThe memory:// store ended with this run; to inspect or resume a run afterwards, "
                      "give a store that lasts, e.g. --store sqlite:///.kaizen/state.db")
        return
    console.print("\nInspect it:")
    for line in (f"kaizen checkpoints list {agent.agent_id}", f"kaizen audit {agent.agent_id}",
                 f"kaizen usage {agent.agent_id}"):
        console.print(f"  [cyan]{escape(line + store_suffix(store_url))}[/cyan]")
