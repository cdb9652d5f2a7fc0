"""``BaseAutonomousAgent``: an agent whose approvals, tool usage and workflow state are
tracked, checkpointed and restored, as ``docs/state-api.md`` describes.

The state-tracking methods are the spec's; checkpointing goes through a
``SyncStateManager`` opened lazily from ``config.storage`` so that creating an agent
never touches the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kaizen.core.autonomy.state import AgentState, StateTracker
from kaizen.core.autonomy.state.errors import InvalidStateTypeError
from kaizen.core.autonomy.state.frozen import AppendOnlyView, FrozenDict, freeze
from kaizen.core.autonomy.state.ids import check_id, new_agent_id
from kaizen.core.autonomy.state.jsonsafe import checked_json_copy, json_copy
from kaizen.signatures import Signature

log = logging.getLogger("kaizen.agent")

from .config import AutonomousConfig


class _HybridMethod:
    """A method that works on the class (builds a new agent) and on an instance."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: type) -> Any:
        return self.func.__get__(instance if instance is not None else owner, owner)


class BaseAutonomousAgent:
    """An autonomous agent with durable, auditable state."""

    def __init__(
        self,
        config: AutonomousConfig | None = None,
        signature: Signature | None = None,
        agent_id: str | None = None,
        *,
        state_manager: Any = None,
        provider: Any = None,
        tools: Any = None,
        hook_manager: Any = None,
        approval_callback: Any = None,
    ) -> None:
        if config is not None and not isinstance(config, AutonomousConfig):
            raise InvalidStateTypeError(f"config must be an AutonomousConfig, got {type(config).__name__}")
        if signature is not None and not isinstance(signature, Signature):
            raise InvalidStateTypeError(f"signature must be a Signature instance, got {type(signature).__name__}")
        self.config = config if config is not None else AutonomousConfig()
        self.signature = signature
        if agent_id is None and self.config.name:
            agent_id = self.config.name  # the original's way to name an agent
        self.agent_id = check_id(agent_id, "agent_id") if agent_id is not None else new_agent_id()
        self._state_manager = state_manager
        self._provider = provider
        self._tools = tools
        self._hooks = hook_manager
        self._approval_callback = approval_callback
        self._approvals: Any = None
        self._checkpointing = True
        self._tracker = StateTracker(summary_limit=self.config.summary_limit)
        self.step_number = 0
        self.status = "running"
        self._conversation: list[FrozenDict] = []
        self._completed_actions: list[FrozenDict] = []
        self.pending_actions: list[Any] = []
        self.memory_contents: dict[str, Any] = {}
        self.tool_results_cache: dict[str, Any] = {}
        self.budget_spent_usd = 0.0
        self.metadata: dict[str, Any] = {}
        self._last_checkpoint_id: str | None = None

    # --- the spec's tracking API ----------------------------------------------------------
    def record_approval(
        self,
        tool_name: str,
        approved: bool,
        action: str = "once",
        tool_input: dict[str, Any] | None = None,
        *,
        decided_by: str | None = None,
    ) -> None:
        """Record an approval decision for the audit trail (secrets in ``tool_input`` are redacted)."""
        self._tracker.record_approval(tool_name, approved, action, tool_input, decided_by=decided_by)

    def record_tool_usage(self, tool_name: str, increment: int = 1) -> None:
        """Add ``increment`` (a positive int) to the usage count of ``tool_name``."""
        self._tracker.record_tool_usage(tool_name, increment)

    def update_workflow_state(
        self,
        run_id: str | None = None,
        status: str | None = None,
        current_node: str | None = None,
        node_results: dict[str, Any] | None = None,
        execution_time: float | None = None,
        **kwargs: Any,
    ) -> None:
        """Partially update the workflow state; values must be JSON-serializable."""
        self._tracker.update_workflow_state(run_id, status, current_node, node_results, execution_time, **kwargs)

    def _get_approval_history(self) -> list[dict[str, Any]]:
        """A copy of the approval records, safe to change."""
        return self._tracker.approval_history()

    def _get_tool_usage_counts(self) -> dict[str, int]:
        """A copy of the tool usage counts, safe to change."""
        return self._tracker.tool_usage_counts()

    def _get_workflow_state(self) -> dict[str, Any]:
        """A deep copy of the workflow state, safe to change."""
        return self._tracker.workflow_state()

    def _get_token_usage(self) -> dict[str, dict[str, int]]:
        return self._tracker.token_usage()

    @property
    def approval_history(self) -> list[dict[str, Any]]:
        return self._tracker.approval_history()

    @property
    def tool_usage_counts(self) -> dict[str, int]:
        return self._tracker.tool_usage_counts()

    @property
    def workflow_state(self) -> dict[str, Any]:
        return self._tracker.workflow_state()

    @property
    def conversation_history(self) -> list[dict[str, Any]]:
        return [dict(entry) for entry in self._conversation]

    @property
    def last_checkpoint_id(self) -> str | None:
        return self._last_checkpoint_id

    def _append_conversation(self, entry: Mapping[str, Any]) -> None:
        self._conversation.append(freeze(checked_json_copy(dict(entry), "conversation entry")))

    def _append_completed_action(self, entry: Mapping[str, Any]) -> None:
        self._completed_actions.append(freeze(checked_json_copy(dict(entry), "completed action")))

    # --- capture and restore -----------------------------------------------------------
    def _capture_state(self, *, _for_save: bool = False) -> AgentState:
        """A snapshot of everything needed to resume; later tracking does not change it."""
        streams = AppendOnlyView if _for_save else list  # a save reads only the new entries
        return AgentState(
            agent_id=self.agent_id,
            model=self.config.model,
            step_number=self.step_number,
            status=self.status,
            parent_checkpoint_id=self._last_checkpoint_id,
            conversation_history=streams(self._conversation),
            memory_contents=json_copy(self.memory_contents),
            pending_actions=json_copy(self.pending_actions),
            completed_actions=streams(self._completed_actions),
            budget_spent_usd=self.budget_spent_usd,
            tool_results_cache=json_copy(self.tool_results_cache),
            metadata=json_copy(self.metadata),
            **self._tracker.snapshot(view=_for_save),
        )

    def _restore_state(self, state: AgentState | Mapping[str, Any]) -> None:
        """Restore everything from a checkpoint state (an ``AgentState`` or its dict form).

        The state is validated first; an invalid one raises and changes nothing.
        """
        if isinstance(state, AgentState):
            checked = state.validated()
        elif isinstance(state, Mapping):
            checked = AgentState.from_dict(state)
        else:
            raise InvalidStateTypeError(f"state must be an AgentState or a dict, got {type(state).__name__}")
        self._tracker.restore(
            checked.approval_history,
            checked.tool_usage_counts,
            checked.token_usage,
            checked.workflow_state,
            checked.workflow_run_id,
        )
        self.agent_id = checked.agent_id
        self.step_number = checked.step_number
        self.status = checked.status
        self._conversation = list(checked.conversation_history)
        self._completed_actions = list(checked.completed_actions)
        self.pending_actions = checked.pending_actions
        self.memory_contents = checked.memory_contents
        self.tool_results_cache = checked.tool_results_cache
        self.budget_spent_usd = checked.budget_spent_usd
        self.metadata = checked.metadata
        self._last_checkpoint_id = checked.checkpoint_id

    # --- parts the loop composes (built on first use) ---------------------------------
    @property
    def provider(self) -> Any:
        """The LLM provider named by ``config.llm_provider`` (or the one given)."""
        if self._provider is None:
            from kaizen.providers import get_provider

            options = dict(self.config.provider_options)
            if self.config.llm_provider != "scripted":
                options.setdefault("base_url", self.config.base_url)
                options.setdefault("api_key", self.config.api_key)
            self._provider = get_provider(self.config.llm_provider, **options)
        return self._provider

    @property
    def tools(self) -> Any:
        """The ``ToolRegistry``: the built-ins confined to ``config.workdir`` when it is set."""
        if self._tools is None or isinstance(self._tools, (list, tuple)):
            from kaizen.tools import ToolRegistry, builtin_tools

            given = list(self._tools or [])
            if self._tools is None and self.config.workdir:
                given = builtin_tools(self.config.workdir, bash_timeout=self.config.bash_timeout)
            self._tools = ToolRegistry(given)
        return self._tools

    @property
    def hooks(self) -> Any:
        """The ``HookManager`` the loop triggers (``hook_manager`` alias for the original's name)."""
        if self._hooks is None:
            from kaizen.core.autonomy.hooks import HookManager

            self._hooks = HookManager()
        return self._hooks

    hook_manager = hooks

    @property
    def approvals(self) -> Any:
        """The ``ApprovalPolicy`` from ``config.approval_policy`` and the approval callback."""
        if self._approvals is None:
            from kaizen.core.autonomy.permissions import ApprovalPolicy

            self._approvals = ApprovalPolicy(self.config.approval_policy, self._approval_callback)
        return self._approvals

    # --- running -------------------------------------------------------------------------
    def run(self, resume: bool = False, **inputs: Any) -> Any:
        """Run the agent until the model answers (or a limit stops it); returns a ``RunResult``.

        With ``resume=True`` an interrupted run of this agent continues from its latest
        checkpoint: completed tool calls are not executed again.
        """
        from contextlib import nullcontext

        from .loop import AgentLoop

        loop = AgentLoop(self)
        resuming = resume and self.state_manager.load_latest(self.agent_id) is not None
        checked = None
        if not resuming:
            checked = self.signature.validate_inputs(inputs) if self.signature is not None else dict(inputs)
            checked = checked_json_copy(checked, "inputs")
        worker = self.config.worker_id
        lease = self.state_manager.claim(self.agent_id, worker, self.config.lease_ttl) if worker else nullcontext()
        with lease as held:
            loop.lease = held
            if checked is not None:
                loop.start(checked)
                return loop.execute()
            self._resume_latest(self.agent_id)
            status = loop.run.get("status")
            if status == "completed":
                # Idempotent for workers that always call run(resume=True, ...): a finished run is
                # never run again. Start the agent's next run with run(**inputs), without resume.
                if inputs:
                    log.info("agent %s: run already completed; inputs ignored", self.agent_id)
                return loop.result()
            if status is None:  # checkpoints saved outside a run: this starts the first one
                checked = self.signature.validate_inputs(inputs) if self.signature is not None else dict(inputs)
                loop.start(checked_json_copy(checked, "inputs"))
            elif status != "running":
                loop.reopen()
            return loop.execute()

    async def arun(self, resume: bool = False, **inputs: Any) -> Any:
        """``run`` on a worker thread, for async callers."""
        import asyncio

        return await asyncio.to_thread(lambda: self.run(resume=resume, **inputs))

    def estimate_cost(self, prices: Any = None) -> Any:
        """A ``CostEstimate`` from usage counts and token usage (prices: see ``cost.py``)."""
        from .cost import estimate_cost

        return estimate_cost(self._get_tool_usage_counts(), self._get_token_usage(),
                             prices if prices is not None else self.config.prices)

    def execute_workflow(self, workflow: Any, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run a Kailash workflow with its ``LocalRuntime``, mirrored into the workflow state."""
        from kaizen.integrations.kailash import execute_workflow

        return execute_workflow(workflow, parameters, update=self.update_workflow_state, **kwargs)

    def add_workflow_tool(self, name: str, description: str, workflow: Any,
                          parameters_schema: dict[str, Any] | None = None, danger: str = "safe") -> Any:
        """Offer a Kailash workflow to the model as a tool; its runs are mirrored into the workflow state."""
        from kaizen.integrations.kailash import workflow_tool_spec
        from kaizen.tools import Tool

        spec = workflow_tool_spec(name, description, workflow, parameters_schema, update=self.update_workflow_state)
        return self.tools.register(Tool(spec.name, spec.description, spec.parameters_schema, danger, spec.run))

    # --- checkpoints ---------------------------------------------------------------------
    @property
    def state_manager(self) -> Any:
        """The ``SyncStateManager`` for ``config.storage`` (opened on first use)."""
        if self._state_manager is None:
            from kaizen.core.autonomy.state.sync_manager import SyncStateManager

            self._state_manager = SyncStateManager.from_config(self.config)
            self._state_manager.hook_manager = self.hooks
        return self._state_manager

    def save_checkpoint(self) -> str:
        """Save a checkpoint now; returns its id. Only what changed since the last one is written."""
        state = self._capture_state(_for_save=True)
        checkpoint_id = self.state_manager.save_checkpoint(state, force=True)
        self._last_checkpoint_id = checkpoint_id
        return checkpoint_id

    def _save_now(self) -> str:
        return self.save_checkpoint()

    def _save_if(self, condition: bool) -> None:
        if condition and self._checkpointing:
            self.save_checkpoint()

    def resume_from_checkpoint(self, checkpoint_id: str) -> AgentState:
        """Restore this agent from ``checkpoint_id``.

        Continuing from an older checkpoint than the latest one forks a new lineage,
        so the later history stays intact.
        """
        state = self.state_manager.load_for_resume(checkpoint_id)
        self._restore_state(state)
        return state

    @_HybridMethod
    def resume(self_or_cls: Any, agent_id: str | None = None, **kwargs: Any) -> Any:
        """Continue ``agent_id`` from its latest checkpoint.

        On the class: ``BaseAutonomousAgent.resume(agent_id, config=..., signature=...)`` builds
        the agent. On an instance: ``agent.resume()`` or ``agent.resume(agent_id)`` restores it.
        """
        if isinstance(self_or_cls, type):
            if agent_id is None:
                raise InvalidStateTypeError("resume needs the agent_id to continue")
            agent = self_or_cls(agent_id=agent_id, **kwargs)
            agent._resume_latest(agent_id)
            return agent
        self_or_cls._resume_latest(agent_id or self_or_cls.agent_id)
        return self_or_cls

    def _resume_latest(self, agent_id: str) -> None:
        state = self.state_manager.resume_from_latest(agent_id)
        if state is None:
            from kaizen.core.autonomy.state.errors import CheckpointNotFoundError

            raise CheckpointNotFoundError(f"agent {agent_id!r} has no checkpoint to resume from")
        self._restore_state(state)
