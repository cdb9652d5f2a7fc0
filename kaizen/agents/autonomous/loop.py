"""The autonomous loop: ask the model, run the tools it asks for, feed results back.

Durability rules, so that a run killed at any point resumes exactly:

* every approval decision is saved (write-ahead) before its tool runs, so each
  executed call has a durable audit record;
* every completed call is saved with its id, its result and its usage count before
  the next one starts, so a resumed run never executes it again;
* a call that was approved but whose result was not saved when the process died
  is re-run only if its tool is declared ``read_only`` or ``idempotent``; any other
  tool (``side_effect``, the default) is never repeated silently: the model is told
  it was interrupted.

The loop works on a ``LoopHost`` (the agent's public surface) and its ``RunState``; it
never imports the agent's module.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import orjson
from kaizen.core.autonomy.permissions.pending import AWAITING
from kaizen.core.autonomy.state.errors import CheckpointConflictError
from kaizen.core.autonomy.state.jsonsafe import json_copy
from kaizen.providers.types import LLMResponse, Message

from .config import AutonomousConfig
from .cost import Prices
from .deferred import mark_waiting, request_for, settle, still_waiting, waiting_calls
from .prompts import parse_outputs, system_prompt, user_prompt
from .result import TERMINAL, RunResult
from .runtime import RunState

if TYPE_CHECKING:
    from kaizen.core.autonomy.hooks import HookManager
    from kaizen.core.autonomy.permissions import ApprovalPolicy
    from kaizen.core.autonomy.state.lease import Lease
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager
    from kaizen.providers.types import LLMProvider
    from kaizen.signatures import Signature
    from kaizen.tools import Tool, ToolRegistry

__all__ = ["TERMINAL", "AgentLoop", "LoopHost", "RunResult"]

log = logging.getLogger("kaizen.agent")
_DEFAULT_OUTPUT_TOKENS = 256


class LoopHost(Protocol):
    """What the loop needs from an agent: its public parts and its ``RunState``."""

    @property
    def agent_id(self) -> str: ...
    @property
    def config(self) -> AutonomousConfig: ...
    @property
    def signature(self) -> Signature | None: ...
    @property
    def runtime(self) -> RunState: ...
    @property
    def provider(self) -> LLMProvider: ...
    @property
    def tools(self) -> ToolRegistry: ...
    @property
    def hooks(self) -> HookManager: ...
    @property
    def approvals(self) -> ApprovalPolicy: ...
    @property
    def state_manager(self) -> SyncStateManager: ...
    def save_checkpoint(self) -> str: ...


class _Stop(Exception):
    """Ends the loop early with a status (denied, budget_exceeded)."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class AgentLoop:
    """One run of one agent. All state lives in the agent's ``RunState``, so a checkpoint captures it.

    ``inputs`` given to ``start`` must already be checked (the agent validates them once).
    """

    def __init__(self, agent: LoopHost, lease: Lease | None = None) -> None:
        self.agent = agent
        self.state = agent.runtime
        self.config = agent.config
        self.prices = Prices.parse(self.config.prices)
        self.lease = lease  # when the agent holds one: the loop stops once it is lost
        self.model_cost = 0.0  # spent on model calls by this execute(), reported on post_agent_loop

    # --- run bookkeeping (persisted in metadata["run"]) ------------------------------------
    @property
    def run(self) -> dict[str, Any]:
        return self.state.run

    def _save(self, condition: bool = True) -> None:
        if condition:
            self.agent.save_checkpoint()

    def start(self, inputs: dict[str, Any]) -> None:
        agent, state = self.agent, self.state
        run_id = "run_" + secrets.token_hex(6)
        state.metadata["run"] = {
            "id": run_id, "inputs": inputs, "cycle": 0, "status": "running", "outputs": None, "error": None,
            "started_at": time.time(), "provider_position": getattr(agent.provider, "position", 0), "tool_calls": 0,
        }
        state.status = "running"
        if self.config.prices:
            state.metadata["prices"] = self.config.prices  # so `kaizen usage` can price the run later
        if not state.conversation:  # a later run of the same agent continues its conversation
            prompt = system_prompt(agent.signature, self.config.system_prompt, planning=self.config.planning_enabled)
            state.append_conversation(Message("system", prompt).to_dict())
        state.append_conversation(Message("user", user_prompt(agent.signature, inputs)).to_dict())
        state.tracker.update_workflow_state(status="running", current_node="start", agent_run_id=run_id)
        self._save()  # the inputs are durable before the first model call

    def reopen(self) -> None:
        """Continue a run that ended early (failed, max_cycles, budget_exceeded, denied), e.g. after
        fixing the provider or raising a limit."""
        run = self.run
        run["status"], run["error"] = "running", None
        self.state.status = "running"
        self.state.tracker.update_workflow_state(status="running", error_message=None, error_type=None)

    def reopen_waiting(self) -> bool:
        """Continue a run that waited for approval, saving "running" first (no decision lands under a
        running run); False when a decision was written since the state was loaded: load again."""
        self.reopen()
        try:
            self._save()
        except CheckpointConflictError:
            return False
        return True

    def execute(self) -> RunResult:
        agent, state, hooks = self.agent, self.state, self.agent.hooks
        tracker = state.tracker
        run = self.run
        started = time.monotonic() - float(run.get("elapsed", 0.0))
        opened = {"run_id": run["id"], "inputs": run["inputs"], "model": self.config.model,
                  "provider": _provider_name(agent.provider)}
        if run.get("traceparent"):  # a resumed run: tracing links it to the run it continues
            opened["previous_traceparent"] = run["traceparent"]
        outcome = hooks.trigger_sync("pre_agent_loop", opened, agent_id=agent.agent_id)
        traceparent = outcome.context.data.get("traceparent")
        if isinstance(traceparent, str):  # a tracing hook's id of this run, kept in the checkpoint
            run["traceparent"] = traceparent
        self._seek_provider()
        try:
            self._finish_pending()
            while True:
                if run["cycle"] >= self.config.max_cycles:
                    raise _Stop("max_cycles", f"reached max_cycles={self.config.max_cycles}")
                if self._cycle():
                    break
            status = "completed"
        except _Stop as stop:
            status = stop.status
            run["error"] = None if status == AWAITING else str(stop)
        except KeyboardInterrupt:  # Ctrl-C: leave a clean checkpoint marked "interrupted", then stop
            hooks.trigger_sync("pre_interrupt", {"run_id": run["id"], "cycle": run["cycle"]}, agent_id=agent.agent_id)
            run["status"] = state.status = "interrupted"
            run["elapsed"] = time.monotonic() - started
            tracker.update_workflow_state(status="interrupted")
            self._save()
            hooks.trigger_sync("post_interrupt", {"run_id": run["id"], "cycle": run["cycle"]}, agent_id=agent.agent_id)
            raise
        except Exception as exc:  # the run fails, but its state is saved for debugging and resume
            status = "failed"
            run["error"] = f"{type(exc).__name__}: {exc}"
            log.error("agent %s failed: %s", agent.agent_id, run["error"])
            tracker.update_workflow_state(status="failed", error_message=str(exc), error_type=type(exc).__name__)
            hooks.trigger_sync("error", {"error": run["error"], "error_type": type(exc).__name__},
                               agent_id=agent.agent_id)
        run["status"] = state.status = status
        run["elapsed"] = time.monotonic() - started
        tracker.update_workflow_state(status=status, execution_time=round(run["elapsed"], 6))
        checkpoint_id = agent.save_checkpoint()
        hooks.trigger_sync("post_agent_loop", {"run_id": run["id"], "status": status, "cycles": run["cycle"],
                                               "checkpoint_id": checkpoint_id, "model": self.config.model,
                                               "estimated_cost_usd": self.model_cost, "error": run["error"]},
                           agent_id=agent.agent_id)
        return self.result(checkpoint_id)

    def result(self, checkpoint_id: str | None = None) -> RunResult:
        run = self.run
        status = run.get("status", "running")
        pending = (waiting_calls(self.state, self.agent.agent_id, self.state.tracker.standing_decision)
                   if status == AWAITING else [])
        return RunResult(
            status=status, outputs=run.get("outputs") or {}, cycles=run.get("cycle", 0),
            agent_id=self.agent.agent_id, run_id=run.get("id", ""),
            checkpoint_id=checkpoint_id or self.state.last_checkpoint_id, error=run.get("error"),
            tool_calls=run.get("tool_calls", 0), budget_spent_usd=self.state.budget_spent_usd,
            pending_approvals=pending,
        )

    # --- one cycle ----------------------------------------------------------------------
    def _cycle(self) -> bool:
        """Ask the model once and run its tool calls; True when it gave the final answer."""
        agent, state, run = self.agent, self.state, self.run
        cycle = run["cycle"] + 1
        if self.lease is not None and self.lease.lost is not None:
            raise self.lease.lost  # another worker owns the agent now: stop before doing anything
        agent.hooks.trigger_sync("pre_cycle", {"cycle": cycle}, agent_id=agent.agent_id)
        self._check_budget(self._next_call_estimate(), "the next model call")
        state.tracker.update_workflow_state(status="running", current_node=f"cycle {cycle}: model")
        response = self._ask_model()
        run["cycle"] = cycle
        state.step_number = cycle
        state.append_conversation(response.to_message().to_dict())
        if not response.tool_calls:
            run["outputs"] = parse_outputs(agent.signature, response.content)
            agent.hooks.trigger_sync("post_cycle", {"cycle": cycle, "final": True}, agent_id=agent.agent_id)
            return True
        self._check_budget(0.0, "this model answer")  # a long answer can cross the limit: no tool runs then
        state.pending_actions = [
            {"call_id": c.id, "name": c.name, "arguments": c.arguments, "state": "planned"} for c in response.tool_calls
        ]
        self._save(self.config.checkpoint_tool_calls)
        self._finish_pending()
        agent.hooks.trigger_sync("post_cycle", {"cycle": cycle, "final": False}, agent_id=agent.agent_id)
        # every checkpoint_frequency cycles, or once the state manager's interval has passed
        self._save(cycle % self.config.checkpoint_frequency == 0
                   or agent.state_manager.should_checkpoint(agent.agent_id, cycle))
        return False

    def _ask_model(self) -> LLMResponse:
        agent, state = self.agent, self.state
        messages = [Message.from_dict(entry) for entry in state.conversation]
        call = {"model": self.config.model, "provider": _provider_name(agent.provider), "cycle": self.run["cycle"] + 1}
        agent.hooks.trigger_sync("pre_model_call", {**call, "messages": len(messages)}, agent_id=agent.agent_id)
        try:
            # tool_choice only when set, so providers written before it existed keep working
            choice = {} if self.config.tool_choice is None else {"tool_choice": self.config.tool_choice}
            response = agent.provider.chat(messages, agent.tools.specs(), model=self.config.model,
                                           temperature=self.config.temperature, **choice)
        except Exception as exc:
            agent.hooks.trigger_sync("post_model_call", {**call, "error": f"{type(exc).__name__}: {exc}",
                                                         "error_type": type(exc).__name__}, agent_id=agent.agent_id)
            raise
        position = getattr(agent.provider, "position", None)
        if position is not None:
            self.run["provider_position"] = position
        state.tracker.record_tool_usage("LLM")
        usage = response.usage
        state.tracker.record_token_usage(self.config.model, usage.input_tokens, usage.output_tokens)
        cost = self._call_cost(usage.input_tokens, usage.output_tokens)
        state.budget_spent_usd += cost
        self.model_cost += cost
        agent.hooks.trigger_sync("post_model_call", {
            **call, "response_model": response.model, "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens, "finish_reason": response.finish_reason,
            "tool_calls": len(response.tool_calls), "estimated_cost_usd": cost}, agent_id=agent.agent_id)
        return response

    # --- tool calls ---------------------------------------------------------------------
    def _finish_pending(self) -> None:
        """Run (or, after a crash, settle) every tool call the model asked for and that has no result."""
        state = self.state
        run_id, cycle = self.run.get("id"), self.run.get("cycle", 0)
        done = {entry["call_id"] for entry in state.completed_actions
                if entry.get("run_id") == run_id and entry.get("cycle") == cycle}
        while state.pending_actions:
            call = state.pending_actions[0]
            if call["call_id"] not in done:
                self._run_call(call)
            state.pending_actions = state.pending_actions[1:]
            self._save(self.config.checkpoint_tool_calls)

    def _run_call(self, call: dict[str, Any]) -> None:
        agent, state, run = self.agent, self.state, self.run
        name, arguments, call_id = call["name"], call["arguments"], call["call_id"]
        if name not in agent.tools:
            self._complete(call, False, None, f"unknown tool {name!r}; available: {', '.join(agent.tools.names())}")
            return
        tool = agent.tools.get(name)
        rerun = call["state"] == "approved"  # approved and started before a crash; result never saved
        if rerun and not tool.rerunnable:
            self._complete(call, False, None, "interrupted by a crash before its result was saved; not "
                           "repeated because the tool is not declared read_only or idempotent (it is "
                           f"{tool.danger!r}; it may or may not have taken effect)")
            return
        if not rerun and not self._approve(call, tool):
            return
        price = 0.0 if rerun else self.prices.tools.get(name, 0.0)
        self._check_budget(price, f"the {name} call")
        outcome = agent.hooks.trigger_sync("pre_tool_use", {"tool_name": name, "arguments": json_copy(arguments),
                                                            "call_id": call_id}, agent_id=agent.agent_id)
        if outcome.blocked:
            self._complete(call, False, None, f"blocked by a hook: {outcome.reason}")
            return
        if not rerun:
            state.budget_spent_usd += price  # charged up front: a crash never under-counts the spend
            state.pending_actions = [{**call, "state": "approved"}, *state.pending_actions[1:]]
            # Write-ahead: the approval record is durable before the tool runs.
            self._save(self.config.checkpoint_tool_calls)
        state.tracker.update_workflow_state(status="running", current_node=f"cycle {run['cycle']}: {name}")
        result = agent.tools.execute(name, arguments)
        # Recorded as soon as it ran, before any hook can interrupt, and saved in one checkpoint with
        # its usage count: usage counts count executed calls, and a recorded call is never re-run.
        state.tracker.record_tool_usage(name)
        run["tool_calls"] = run.get("tool_calls", 0) + 1
        self._complete(call, result.ok, result.output, result.error)
        agent.hooks.trigger_sync("post_tool_use", {"tool_name": name, "call_id": call_id, "ok": result.ok,
                                                   "error": result.error, "estimated_cost_usd": price},
                                 agent_id=agent.agent_id)

    def _approve(self, call: dict[str, Any], tool: Tool) -> bool:
        agent, tracker = self.agent, self.state.tracker
        name, arguments = call["name"], call["arguments"]
        agent.hooks.trigger_sync("pre_permission_check", {"tool_name": name, "arguments": json_copy(arguments)},
                                 agent_id=agent.agent_id)
        request = request_for(agent.agent_id, call, tool.danger, self.config)
        settled = settle(self.config, agent.approvals, call, request, tracker.standing_decision(name))
        if settled is None:
            self._wait_for_approval()
        decision = settled.decision
        if not settled.recorded:  # a deferred decision is in the history since it was made
            tracker.record_approval(name, decision.approved, decision.action, arguments, decided_by=decision.decided_by,
                                    **settled.record)
        agent.hooks.trigger_sync("approval_decided", {"tool_name": name, "approved": decision.approved,
                                                      "action": decision.action, "decided_by": decision.decided_by,
                                                      "call_id": call["call_id"], **settled.extra},
                                 agent_id=agent.agent_id)
        agent.hooks.trigger_sync("post_permission_check", {"tool_name": name, "approved": decision.approved},
                                 agent_id=agent.agent_id)
        if decision.approved:
            return True
        reason = f"denied by {decision.decided_by}" + (f": {decision.reason}" if decision.reason else "")
        self._complete(call, False, None, reason)
        if self.config.on_denial == "stop":
            raise _Stop("denied", f"{name}: {reason}")
        return False

    def _wait_for_approval(self) -> NoReturn:
        """Defer: mark the calls that need a person as waiting and end the run (saved by ``execute``)."""
        agent = self.agent
        for call in mark_waiting(self.state, agent.agent_id, self.config, agent.approvals, agent.tools,
                                 self.state.tracker.standing_decision):
            agent.hooks.trigger_sync("approval_requested", {"tool_name": call["name"], "call_id": call["call_id"],
                                                            **call["approval"]}, agent_id=agent.agent_id)
        raise _Stop(AWAITING, "waiting for approval")

    def waiting(self) -> bool:
        """A resumed run whose next call still waits for a person: nothing to run, nothing to save."""
        agent = self.agent
        return still_waiting(self.state, agent.agent_id, self.config, agent.approvals, agent.tools,
                             self.state.tracker.standing_decision)

    def _complete(self, call: dict[str, Any], ok: bool, output: Any, error: str | None) -> None:
        self.state.append_completed_action({
            "call_id": call["call_id"], "tool": call["name"], "ok": ok, "output": output, "error": error,
            "cycle": self.run.get("cycle", 0), "run_id": self.run.get("id"),
        })
        content = _observation(ok, output, error)
        self.state.append_conversation(
            Message("tool", content, tool_call_id=call["call_id"], name=call["name"]).to_dict())

    # --- provider position, budget ------------------------------------------------------
    def _seek_provider(self) -> None:
        seek = getattr(self.agent.provider, "seek", None)
        if seek is not None:
            seek(int(self.run.get("provider_position", 0)))

    def _call_cost(self, input_tokens: int, output_tokens: int) -> float:
        price = self.prices.models.get(self.config.model)
        token_cost = price.cost(input_tokens, output_tokens) if price else 0.0
        return self.prices.tools.get("LLM", 0.0) + token_cost

    def _next_call_estimate(self) -> float:
        tracker = self.state.tracker
        usage = tracker.token_usage().get(self.config.model, {})
        calls = tracker.tool_usage_counts().get("LLM", 0)
        expected_output = usage.get("output_tokens", 0) // calls if calls else _DEFAULT_OUTPUT_TOKENS
        sent = sum(len(orjson.dumps(entry)) for entry in self.state.conversation)
        sent += sum(len(orjson.dumps(spec)) for spec in self.agent.tools.spec_dicts())
        return self._call_cost(-(-sent // 3), expected_output)  # ~3 bytes a token, rounded up: errs high

    def _check_budget(self, next_cost: float, what: str) -> None:
        limit = self.config.budget_limit_usd
        spent = self.state.budget_spent_usd
        if limit is not None and spent + next_cost > limit:
            raise _Stop("budget_exceeded", f"{what} (~${next_cost:.4f}) would take the spend "
                        f"${spent:.4f} past budget_limit_usd=${limit:.4f}")


def _provider_name(provider: Any) -> str:
    name = getattr(provider, "name", None)
    return name if isinstance(name, str) and name else type(provider).__name__


def _observation(ok: bool, output: Any, error: str | None) -> str:
    if not ok:
        return f"ERROR: {error}"
    if isinstance(output, str):
        return output
    return orjson.dumps(output).decode()
