"""``BaseAutonomousAgent``: an agent whose approvals, tool usage and workflow state are
tracked, checkpointed and restored, as ``docs/state-api.md`` describes.

The state-tracking methods are the spec's; checkpointing goes through a
``SyncStateManager`` opened lazily from ``config.storage`` so that creating an agent
never touches the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from kaizen.core.autonomy.state import AgentState, StateTracker
from kaizen.core.autonomy.state.errors import (
    CheckpointNotFoundError, InvalidStateTypeError, LeaseHeldError, StorageError,
)
from kaizen.core.autonomy.state.ids import check_id, new_agent_id
from kaizen.core.autonomy.state.jsonsafe import checked_json_copy
from kaizen.signatures import Signature

from .config import AutonomousConfig as AutonomousConfig  # re-exported: the original's import path
from .loop import AgentLoop
from .result import RunResult
from .runtime import RunState
from .workers import AgentRunningError

if TYPE_CHECKING:
    from kaizen.core.autonomy.hooks import HookManager
    from kaizen.core.autonomy.permissions import ApprovalCallback, ApprovalPolicy, PendingApproval
    from kaizen.core.autonomy.state.lease import Lease
    from kaizen.core.autonomy.state.manager import StateManager
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager
    from kaizen.providers.types import LLMProvider
    from kaizen.tools import Tool, ToolRegistry
    from kaizen.tools.tool import Danger, LegacyDanger

    from .cost import CostEstimate, Prices

log = logging.getLogger("kaizen.agent")


class _HybridMethod:
    """A method that works on the class (builds a new agent) and on an instance."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__doc__ = func.__doc__

    def __get__(self, instance: Any, owner: type) -> Any:
        return self.func.__get__(instance if instance is not None else owner, owner)


def _sync_manager(manager: SyncStateManager | StateManager | None) -> SyncStateManager | None:
    """Our code runs the sync core: the async ``StateManager`` face is unwrapped (``.sync``)."""
    from kaizen.core.autonomy.state.sync_manager import SyncStateManager

    if manager is None or isinstance(manager, SyncStateManager):
        return manager
    inner = getattr(manager, "sync", None)
    if isinstance(inner, SyncStateManager):
        return inner
    raise InvalidStateTypeError(
        f"state_manager must be a SyncStateManager or a StateManager, got {type(manager).__name__}")


V = TypeVar("V")


class _InRunState(Generic[V]):
    """An agent attribute whose value lives in the agent's ``RunState`` (the run state's one home)."""

    def __init__(self, field: str, doc: str | None = None) -> None:
        self.field = field
        self.__doc__ = doc

    @overload
    def __get__(self, agent: None, owner: type) -> _InRunState[V]: ...
    @overload
    def __get__(self, agent: BaseAutonomousAgent, owner: type) -> V: ...
    def __get__(self, agent: BaseAutonomousAgent | None, owner: type) -> V | _InRunState[V]:
        if agent is None:
            return self
        value: V = getattr(agent._runtime, self.field)  # (not through ``runtime``: read on every step)
        return value

    def __set__(self, agent: BaseAutonomousAgent, value: V) -> None:
        setattr(agent._runtime, self.field, value)


class BaseAutonomousAgent:
    """An autonomous agent with durable, auditable state.

    Its public surface (``docs/agent-loop.md``): the parts it composes (``state_manager``,
    ``provider``, ``tools``, ``hooks``, ``approvals``), read-only copies of what it tracks
    (``approval_history``, ``tool_usage_counts``, ``token_usage``, ``workflow_state``,
    ``conversation_history``), its position (``current_step``, ``status``,
    ``last_checkpoint_id``), and ``run``/``arun``, ``save_checkpoint``, ``resume_from_checkpoint``,
    ``estimate_cost``. Everything a checkpoint holds lives in one ``RunState`` (``runtime``).
    """

    def __init__(
        self,
        config: AutonomousConfig | None = None,
        signature: Signature | None = None,
        agent_id: str | None = None,
        *,
        state_manager: SyncStateManager | StateManager | None = None,
        provider: LLMProvider | None = None,
        tools: ToolRegistry | Sequence[Tool] | None = None,
        hook_manager: HookManager | None = None,
        approval_callback: ApprovalCallback | None = None,
    ) -> None:
        if config is not None and not isinstance(config, AutonomousConfig):
            raise InvalidStateTypeError(f"config must be an AutonomousConfig, got {type(config).__name__}")
        if signature is not None and not isinstance(signature, Signature):
            raise InvalidStateTypeError(f"signature must be a Signature instance, got {type(signature).__name__}")
        self.config: AutonomousConfig = config if config is not None else AutonomousConfig()
        self.signature: Signature | None = signature
        if agent_id is None and self.config.name:
            agent_id = self.config.name  # the original's way to name an agent
        self.agent_id: str = check_id(agent_id, "agent_id") if agent_id is not None else new_agent_id()
        self._state_manager = _sync_manager(state_manager)
        self._provider = provider
        self._tools: ToolRegistry | Sequence[Tool] | None = tools
        self._hooks = hook_manager
        self._approval_callback = approval_callback
        self._approvals: ApprovalPolicy | None = None
        self._runtime = RunState(StateTracker(summary_limit=self.config.summary_limit))

    # --- the run state (one home: ``RunState``) ------------------------------------------
    @property
    def runtime(self) -> RunState:
        """Everything a checkpoint of this agent holds (the loop works on it)."""
        return self._runtime

    current_step = _InRunState[int]("step_number", "The number of model cycles run so far (the original's name).")
    step_number = current_step
    status = _InRunState[str]("status", '"running", "completed", "interrupted", "failed", "denied", "max_cycles", '
                                        '"budget_exceeded" or "awaiting_approval".')
    pending_actions = _InRunState[list[Any]]("pending_actions")
    memory_contents = _InRunState[dict[str, Any]]("memory_contents")
    tool_results_cache = _InRunState[dict[str, Any]]("tool_results_cache")
    budget_spent_usd = _InRunState[float]("budget_spent_usd")
    metadata = _InRunState[dict[str, Any]](
        "metadata", 'Free-form JSON data saved with every checkpoint (``metadata["run"]`` is the loop\'s).')

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
        self._runtime.tracker.record_approval(tool_name, approved, action, tool_input, decided_by=decided_by)

    def record_tool_usage(self, tool_name: str, increment: int = 1) -> None:
        """Add ``increment`` (a positive int) to the usage count of ``tool_name``."""
        self._runtime.tracker.record_tool_usage(tool_name, increment)

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
        self._runtime.tracker.update_workflow_state(run_id, status, current_node, node_results, execution_time,
                                                    **kwargs)

    # The spec's (and the original's) getter names; the properties below are the same copies.
    def _get_approval_history(self) -> list[dict[str, Any]]:
        """A copy of the approval records, safe to change."""
        return self._runtime.tracker.approval_history()

    def _get_tool_usage_counts(self) -> dict[str, int]:
        """A copy of the tool usage counts, safe to change."""
        return self._runtime.tracker.tool_usage_counts()

    def _get_workflow_state(self) -> dict[str, Any]:
        """A deep copy of the workflow state, safe to change."""
        return self._runtime.tracker.workflow_state()

    def _get_token_usage(self) -> dict[str, dict[str, int]]:
        return self._runtime.tracker.token_usage()

    @property
    def approval_history(self) -> list[dict[str, Any]]:
        """A copy of the approval records (oldest first), safe to change."""
        return self._runtime.tracker.approval_history()

    @property
    def tool_usage_counts(self) -> dict[str, int]:
        """Executed calls per tool ("LLM" counts model calls), a copy."""
        return self._runtime.tracker.tool_usage_counts()

    @property
    def token_usage(self) -> dict[str, dict[str, int]]:
        """``{model: {"input_tokens": n, "output_tokens": m}}``, a copy."""
        return self._runtime.tracker.token_usage()

    @property
    def workflow_state(self) -> dict[str, Any]:
        """A deep copy of the workflow state."""
        return self._runtime.tracker.workflow_state()

    @property
    def conversation_history(self) -> list[dict[str, Any]]:
        """A copy of the messages of every run so far."""
        return [dict(entry) for entry in self._runtime.conversation]

    @property
    def last_checkpoint_id(self) -> str | None:
        """The checkpoint this agent's next save continues from (None before the first)."""
        return self._runtime.last_checkpoint_id

    def _append_conversation(self, entry: Mapping[str, Any]) -> None:
        self._runtime.append_conversation(entry)

    def _append_completed_action(self, entry: Mapping[str, Any]) -> None:
        self._runtime.append_completed_action(entry)

    # --- capture and restore (the original's names) -------------------------------------
    def _capture_state(self, *, _for_save: bool = False) -> AgentState:
        """A snapshot of everything needed to resume; later tracking does not change it."""
        return self._runtime.capture(self.agent_id, self.config.model, for_save=_for_save)

    def _restore_state(self, state: AgentState | Mapping[str, Any]) -> None:
        """Restore everything from a checkpoint state (an ``AgentState`` or its dict form).

        The state is validated first; an invalid one raises and changes nothing.
        """
        self.agent_id = self._runtime.restore(state).agent_id

    # --- parts the loop composes (built on first use) ---------------------------------
    @property
    def provider(self) -> LLMProvider:
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
    def tools(self) -> ToolRegistry:
        """The ``ToolRegistry``: the tools given, or the built-ins confined to ``config.workdir``."""
        from kaizen.tools import ToolRegistry, builtin_tools

        if not isinstance(self._tools, ToolRegistry):
            given = list(self._tools or [])
            if self._tools is None and self.config.workdir:
                given = builtin_tools(self.config.workdir, bash_timeout=self.config.bash_timeout)
            self._tools = ToolRegistry(given)
        return self._tools

    @property
    def hooks(self) -> HookManager:
        """The ``HookManager`` the loop triggers (``hook_manager`` alias for the original's name)."""
        if self._hooks is None:
            from kaizen.core.autonomy.hooks import HookManager

            self._hooks = HookManager()
        return self._hooks

    hook_manager = hooks

    @property
    def approvals(self) -> ApprovalPolicy:
        """The ``ApprovalPolicy`` from ``config.approval_policy`` and the approval callback."""
        if self._approvals is None:
            from kaizen.core.autonomy.permissions import ApprovalPolicy

            self._approvals = ApprovalPolicy(self.config.approval_policy, self._approval_callback)
        return self._approvals

    # --- running -------------------------------------------------------------------------
    def run(self, resume: bool = False, **inputs: Any) -> RunResult:
        """Run the agent until the model answers (or a limit stops it).

        With ``resume=True`` (or ``config.resume_from_checkpoint``) an interrupted run of this
        agent continues from its latest checkpoint: completed tool calls are not executed
        again, and a completed run is returned as it is (its inputs are ignored). Without a
        checkpoint, or with checkpoints saved outside a run, a new run starts with ``inputs``.
        """
        resume = resume or self.config.resume_from_checkpoint
        checked = None if resume else self._checked_inputs(inputs)  # bad inputs fail before any I/O
        with self._lease() as lease:
            loop = AgentLoop(self, lease)
            for _ in range(20) if resume else ():  # again when a decision was written while loading
                restored = self.state_manager.resume_from_latest(self.agent_id)
                if restored is not None:
                    self._restore_state(restored)
                    status = loop.run.get("status")
                    if status == "completed":
                        # Idempotent for workers that always call run(resume=True, ...): a finished run
                        # is never run again. Start the agent's next run with run(**inputs).
                        if inputs:
                            log.info("agent %s: run already completed; inputs ignored", self.agent_id)
                        return loop.result()
                    if status == "awaiting_approval":
                        if loop.waiting():
                            return loop.result()  # still waiting for a person: nothing to run or save
                        if not loop.reopen_waiting():
                            continue
                    if status is not None:
                        if status not in ("running", "awaiting_approval"):
                            loop.reopen()
                        return loop.execute()
                checked = self._checked_inputs(inputs)  # nothing to continue: this starts a run
                break
            if checked is None:
                raise StorageError(f"agent {self.agent_id!r} keeps changing while resuming; try again")
            loop.start(checked)
            return loop.execute()

    # --- deferred approvals (any process may decide; see docs/approvals-and-hooks.md) -------
    def pending_approvals(self) -> list[PendingApproval]:
        """The calls of this agent waiting for a decision, as stored (another process may decide them)."""
        return self.state_manager.pending_approvals(self.agent_id)

    def approve(self, call_id: str, action: str = "once", by: str | None = None,
                reason: str | None = None) -> dict[str, Any]:
        """Approve a waiting call ("once", or "all" for every later call of its tool); then
        ``run(resume=True)`` continues the run. Returns the decision record."""
        return self.state_manager.approve(self.agent_id, call_id, action, by, reason)

    def deny(self, call_id: str, action: str = "once", by: str | None = None,
             reason: str | None = None) -> dict[str, Any]:
        """Deny a waiting call ("once", or "deny_all" for every later call of its tool)."""
        return self.state_manager.deny(self.agent_id, call_id, action, by, reason)

    def _checked_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        checked = self.signature.validate_inputs(inputs) if self.signature is not None else dict(inputs)
        copied: dict[str, Any] = checked_json_copy(checked, "inputs")
        return copied

    @contextmanager
    def _lease(self) -> Iterator[Lease | None]:
        """Hold the agent's lease for the run when ``config.worker_id`` is set."""
        worker = self.config.worker_id
        if not worker:
            yield None
            return
        try:
            lease = self.state_manager.claim(self.agent_id, worker, self.config.lease_ttl)
        except AgentRunningError:
            raise
        except LeaseHeldError as exc:
            raise AgentRunningError.from_held(exc) from exc
        with lease:
            yield lease

    async def arun(self, resume: bool = False, **inputs: Any) -> RunResult:
        """``run`` on a worker thread, for async callers."""
        from kaizen.core.bridge import in_thread

        return await in_thread(lambda: self.run(resume=resume, **inputs))

    def estimate_cost(self, prices: Mapping[str, Any] | Prices | None = None) -> CostEstimate:
        """A ``CostEstimate`` from usage counts and token usage (prices: see ``cost.py``)."""
        from .cost import estimate_cost

        return estimate_cost(self._get_tool_usage_counts(), self._get_token_usage(),
                             prices if prices is not None else self.config.prices)

    def execute_workflow(self, workflow: Any, parameters: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run a Kailash workflow with its ``LocalRuntime``, mirrored into the workflow state."""
        from kaizen.integrations.kailash import execute_workflow

        return execute_workflow(workflow, parameters, update=self.update_workflow_state, **kwargs)

    def add_workflow_tool(self, name: str, description: str, workflow: Any,
                          parameters_schema: dict[str, Any] | None = None,
                          danger: Danger | LegacyDanger = "side_effect") -> Tool:
        """Offer a Kailash workflow to the model as a tool; its runs are mirrored into the workflow state.

        A workflow may do anything, so it is a "side_effect" tool unless declared otherwise.
        """
        from kaizen.integrations.kailash import workflow_tool_spec
        from kaizen.tools import Tool
        from kaizen.tools.tool import check_danger

        spec = workflow_tool_spec(name, description, workflow, parameters_schema, update=self.update_workflow_state)
        tool = Tool(spec.name, spec.description, spec.parameters_schema, check_danger(danger, name), spec.run)
        return self.tools.register(tool)

    # --- checkpoints ---------------------------------------------------------------------
    @property
    def state_manager(self) -> SyncStateManager:
        """The ``SyncStateManager`` given, or one for ``config.storage`` (opened on first use)."""
        if self._state_manager is None:
            from kaizen.core.autonomy.state.storage import open_store
            from kaizen.core.autonomy.state.sync_manager import SyncStateManager

            config = self.config
            self._state_manager = SyncStateManager(
                storage=open_store(config.storage, encryption_key=config.encryption_key),
                checkpoint_frequency=config.checkpoint_frequency,
                checkpoint_interval=config.checkpoint_interval_seconds,
                retention_count=config.retention_count,
                hook_manager=self.hooks,
            )
        return self._state_manager

    def save_checkpoint(self) -> str:
        """Save a checkpoint now; returns its id. Only what changed since the last one is written."""
        state = self._capture_state(_for_save=True)
        checkpoint_id: str = self.state_manager.save_checkpoint(state, force=True)
        self._runtime.last_checkpoint_id = checkpoint_id
        return checkpoint_id

    def resume_from_checkpoint(self, checkpoint_id: str) -> AgentState:
        """Restore this agent from ``checkpoint_id``.

        Continuing from an older checkpoint than the latest one forks a new lineage,
        so the later history stays intact.
        """
        state: AgentState = self.state_manager.load_for_resume(checkpoint_id)
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
            raise CheckpointNotFoundError(f"agent {agent_id!r} has no checkpoint to resume from; "
                                          "start it with run(**inputs)")
        self._restore_state(state)
