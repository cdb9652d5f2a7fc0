"""Commands that run an agent (``demo``, ``resume``) or set one up to continue (``fork``).

A running agent holds a lease (worker id ``HOST:PID@START_TIME`` unless ``--worker-id``), so a
second process cannot run it at the same time; Ctrl-C ends with one line naming the
saved checkpoint and the command that continues from it.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from kaizen.agents.autonomous.workers import default_worker_id
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

from .app import INTERRUPT_LINE, main
from .errors import EXIT_TAMPERED, CliError, console, friendly
from .interrupts import SaveSafeInterrupts
from .options import STORE_OPTION, WORKER_OPTION, YES_OPTION, shown, store_suffix
from .progress import Progress, print_summary
from .stores import (
    CheckpointCorruptError, StateError, open_manager, require_agent, resolve_checkpoint,
)

ENDED = ("completed", "denied")  # a run in one of these states has nothing left to resume
KEEP_WORKDIR_OPTION = click.option("--keep-workdir", is_flag=True,
                                   help="Keep a temporary workspace after the run completes.")


@main.command()
@YES_OPTION
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path),
              help="Workspace (default: a new temporary directory, removed when the demo completes).")
@KEEP_WORKDIR_OPTION
@click.option("--agent-id", help="Agent id (default: demo-<random>); must be new (continue one with `kaizen resume`).")
@click.option("--no-workflow", is_flag=True, help="Skip the Kailash workflow step.")
@click.option("--model", "model_url", metavar="URL",
              help="Play the demo with a real model on the OpenAI-compatible server at URL (llama.cpp, vLLM, "
                   "LM Studio, Ollama's /v1), e.g. http://127.0.0.1:8000/v1 (/v1 is added to a bare host:port).")
@click.option("--model-name", help="The model to ask on --model's server (default: the first one it lists).")
@click.option("--tool-choice", metavar="auto|none|required|TOOL",
              help="With --model: whether the model may, must or must not call a tool, or which one "
                   "(small models often call a tool only when it is named).")
@click.option("--defer", is_flag=True, help="Do not ask at the terminal: a call that needs approval ends the run "
              "(awaiting_approval) until `kaizen approve`/`kaizen deny` decide it; `kaizen resume` continues.")
@WORKER_OPTION
@STORE_OPTION
@friendly
def demo(yes: bool, workdir: Path | None, keep_workdir: bool, agent_id: str | None, no_workflow: bool,
         model_url: str | None, model_name: str | None, tool_choice: str | None, defer: bool,
         worker_id: str | None, store_url: str) -> None:
    """Run a small autonomous agent offline (scripted model) on the embedded store.

    With --model URL a real model on that server plays it instead of the script.
    """
    from kaizen.demo import build_demo_agent, has_kailash
    from kaizen.providers import ProviderError
    from kaizen.providers.toolchoice import TOOL_CHOICE_MODES, NamedTool

    if yes and defer:
        raise CliError("--yes approves every call at once and --defer leaves them to `kaizen approve`: give one")
    if model_url is None and (model_name or tool_choice):
        raise CliError("--model-name and --tool-choice need --model URL (the scripted demo has no model to tell)")
    choice = None if tool_choice is None else (
        tool_choice if tool_choice in TOOL_CHOICE_MODES else NamedTool(tool_choice))

    agent_id = agent_id or f"demo-{secrets.token_hex(4)}"
    worker_id = worker_id or default_worker_id()
    on_interrupt(agent_id, store_url, worker_id)
    if workdir is not None:  # before the store is opened: a demo that cannot start leaves nothing behind
        try:
            workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"--workdir {workdir}: cannot make the workspace ({exc.strerror or exc})") from None
    manager = open_manager(store_url, read_only=False, must_exist=False)
    if manager.list_checkpoints(agent_id, limit=1):
        raise CliError(f"agent {agent_id!r} already exists in {shown(store_url)}; continue it with "
                       f"`kaizen resume {agent_id}{store_suffix(store_url)}` or pick a new --agent-id")
    try:
        agent = build_demo_agent(store_url, workdir and workdir.absolute(), agent_id, approver(yes),
                                 with_workflow=has_kailash() and not no_workflow, worker_id=worker_id,
                                 model_url=model_url, model_name=model_name, tool_choice=choice,
                                 approval_mode="defer" if defer else "inline")
    except ProviderError as exc:
        raise CliError(f"--model {model_url}: cannot ask the server for its model ({exc}); "
                       "check the URL, or name the model with --model-name") from None
    close_with_command(agent)
    where = str(workdir) if workdir is not None else agent.metadata["cli"]["workdir"]  # stored absolute: resume
    temporary = " (temporary)" if agent.metadata["cli"]["temporary_workdir"] else ""
    console.print(f"[bold]kaizen demo[/bold] agent [cyan]{agent.agent_id}[/cyan]  store {escape(shown(store_url))}  "
                  f"workspace {escape(where)}{temporary}")
    if model_url is not None:
        console.print(f"model [cyan]{escape(agent.config.model)}[/cyan] at {escape(str(agent.config.base_url))}")
    if not has_kailash():
        console.print("[dim](Kailash is not installed, so the workflow step is skipped: "
                      + escape("pip install 'kaizen-state[kailash]'") + ")[/dim]")
    saved: list[bool] = []
    agent.hooks.register("post_checkpoint_save", lambda context: saved.append(True))
    try:
        run_agent(agent, lambda: agent.run(task="checkpoints and approvals"), store_url, keep_workdir)
    except BaseException:  # refused (another worker has the agent) or stopped before its first save:
        if agent.metadata["cli"]["temporary_workdir"] and not saved:  # no checkpoint names the workspace
            shutil.rmtree(where, ignore_errors=True)
        raise


@main.command()
@click.argument("agent_id")
@click.option("--from", "from_checkpoint", metavar="CHECKPOINT",
              help="Continue from this checkpoint (id, unique prefix) instead of the newest; "
                   "an older one is forked, so the later history stays.")
@YES_OPTION
@KEEP_WORKDIR_OPTION
@WORKER_OPTION
@STORE_OPTION
@friendly
def resume(agent_id: str, from_checkpoint: str | None, yes: bool, keep_workdir: bool, worker_id: str | None,
           store_url: str) -> None:
    """Continue an interrupted run of AGENT from its newest checkpoint.

    A run waiting for approval (`kaizen demo --defer`) runs the calls decided with `kaizen
    approve`/`kaizen deny` and says what still waits.

    A damaged newest checkpoint is never skipped silently (the run would repeat tool calls
    it records as done): resume refuses and says how to continue deliberately, with
    `--from CHECKPOINT` or `kaizen fork CHECKPOINT`.
    """
    from kaizen.demo import build_demo_agent

    worker_id = worker_id or default_worker_id()
    on_interrupt(agent_id, store_url, worker_id)
    manager = open_manager(store_url, read_only=False)
    require_agent(manager, agent_id)
    start = starting_checkpoint(manager, agent_id, from_checkpoint)
    state = manager.load_checkpoint(start)
    cli = state.metadata.get("cli", {})
    if cli.get("kind") != "demo":
        raise CliError(f"agent {agent_id!r} was not started by `kaizen demo`; resume it from Python with "
                       "BaseAutonomousAgent.resume(agent_id, config=..., signature=...) and run(resume=True)")
    status = state.metadata.get("run", {}).get("status")
    if status in ENDED and from_checkpoint is None:  # interrupted, failed, ... continue
        console.print(f"agent {agent_id} already ended with status [bold]{status}[/bold]; nothing to resume")
        return
    agent = build_demo_agent(store_url, Path(cli["workdir"]), agent_id, approver(yes), cli.get("with_workflow", False),
                             worker_id=worker_id, temporary_workdir=cli.get("temporary_workdir", False),
                             model_url=cli.get("model_url"), model_name=cli.get("model_name"),
                             tool_choice=cli.get("tool_choice"), approval_mode=cli.get("approval_mode", "inline"))
    close_with_command(agent)
    if from_checkpoint is not None:
        state = agent.resume_from_checkpoint(start)  # forks when it is not its lineage's newest
    said = f"resuming [cyan]{agent_id}[/cyan] from checkpoint {state.checkpoint_id} (step {state.step_number})"
    agent.hooks.register("pre_agent_loop", lambda context: console.print(said))  # once the agent is ours
    run_agent(agent, lambda: agent.run(resume=True), store_url, keep_workdir)


@main.command()
@click.argument("checkpoint")
@click.option("--as", "new_agent_id", metavar="NEW_AGENT", help="Make the fork a new agent (default: a new "
              "branch of the same agent, which `kaizen resume` then continues).")
@STORE_OPTION
@friendly
def fork(checkpoint: str, new_agent_id: str | None, store_url: str) -> None:
    """Start a new branch of history at CHECKPOINT (id, unique prefix, agent id or `latest`)."""
    manager = open_manager(store_url, read_only=False)
    source = resolve_checkpoint(manager, checkpoint)
    state = manager.fork(source.checkpoint_id, new_agent_id)
    console.print(f"forked {source.checkpoint_id} of {source.agent_id} into {state.agent_id} "
                  f"(checkpoint {state.checkpoint_id}, step {state.step_number}); continue with: "
                  f"[cyan]kaizen resume {state.agent_id}{escape(store_suffix(store_url))}[/cyan]", soft_wrap=True)


def approver(yes: bool) -> Any:
    from kaizen.core.autonomy.permissions import console_approver
    from kaizen.demo import auto_approver

    return auto_approver() if yes else console_approver()


def starting_checkpoint(manager: SyncStateManager, agent_id: str, reference: str | None) -> str:
    """The checkpoint a resume starts from: ``--from``'s, or the newest one if it is intact."""
    if reference is not None:
        chosen = resolve_checkpoint(manager, reference)
        if chosen.agent_id != agent_id:
            raise CliError(f"checkpoint {chosen.checkpoint_id} belongs to agent {chosen.agent_id}, not {agent_id}; "
                           f"continue it with `kaizen resume {chosen.agent_id} --from {chosen.checkpoint_id}` "
                           f"or `kaizen fork {chosen.checkpoint_id} --as NEW_AGENT`")
        return chosen.checkpoint_id
    newest = manager.list_checkpoints(agent_id, limit=1)[0].checkpoint_id
    try:
        manager.load_checkpoint(newest)
    except CheckpointCorruptError as exc:
        raise CliError(refusal(manager, agent_id, exc), EXIT_TAMPERED) from None
    return newest


def refusal(manager: SyncStateManager, agent_id: str, damage: CheckpointCorruptError) -> str:
    """Why a damaged agent is not resumed, and the deliberate ways on."""
    damaged = {exc.checkpoint_id for exc in manager.find_damage(agent_id)} | {damage.checkpoint_id}
    intact = [meta for meta in manager.list_checkpoints(agent_id) if meta.checkpoint_id not in damaged]
    text = (f"agent {agent_id!r} is not resumed: its newest checkpoint {damage.checkpoint_id} is damaged "
            f"({damage.detail}); continuing from an older one could repeat tool calls already done. ")
    if not intact:
        return text + "No intact checkpoint is left; restore the store from a backup"
    best = intact[0]
    return text + (f"The newest intact checkpoint is {best.checkpoint_id} (step {best.step_number}). To continue "
                   f"deliberately: `kaizen resume {agent_id} --from {best.checkpoint_id}` or "
                   f"`kaizen fork {best.checkpoint_id} --as NEW_AGENT`")


def close_with_command(agent: Any) -> None:
    click.get_current_context().call_on_close(agent.state_manager.close)


def run_agent(agent: Any, start: Callable[[], Any], store_url: str, keep_workdir: bool) -> None:
    """Run with progress output, Ctrl-C held back during saves, then the summary."""
    progress = Progress(agent)
    with SaveSafeInterrupts():
        result = start()
    if result.status == "awaiting_approval":
        from .approvals import print_waiting

        print_waiting(result, store_url)
        return
    print_summary(agent, result, progress.saves, store_url)
    cli = agent.metadata.get("cli", {})
    if result.status == "completed" and cli.get("temporary_workdir") and not keep_workdir:
        shutil.rmtree(cli["workdir"], ignore_errors=True)
        console.print(f"Removed the temporary workspace {escape(cli['workdir'])} (--keep-workdir keeps it)")


def on_interrupt(agent_id: str, store_url: str, worker_id: str) -> None:
    """What Ctrl-C prints for this command: the saved checkpoint and how to continue."""

    def line() -> str:
        try:
            manager = SyncStateManager(store_url)
            try:
                manager.storage.release_lease(agent_id, worker_id)  # if Ctrl-C came between claim and use
                newest = manager.list_checkpoints(agent_id, limit=1)
            finally:
                manager.close()
        except (StateError, OSError) as exc:
            return f"interrupted: {agent_id} was not saved ({exc})"
        if not newest:
            return f"interrupted: {agent_id} saved no checkpoint yet; nothing to resume (start it again)"
        if newest[0].status in ENDED:
            return (f"interrupted: the run of {agent_id} had already ended ({newest[0].status}, checkpoint "
                    f"{newest[0].checkpoint_id}); nothing to resume")
        return (f"interrupted: saved checkpoint {newest[0].checkpoint_id} of {agent_id} (step "
                f"{newest[0].step_number}); continue with: kaizen resume {agent_id}{store_suffix(store_url)}")

    click.get_current_context().meta[INTERRUPT_LINE] = line
