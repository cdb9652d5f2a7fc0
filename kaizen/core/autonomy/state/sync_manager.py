"""``SyncStateManager``: checkpoint policy on top of a store (the sync core; ``manager.py`` is its async face).

It saves states as O(delta) plans (``storage/rows.py``), loads any checkpoint
(time travel) by following a checkpoint's lineage back through forks, resumes
from the newest intact checkpoint, forks, lists, and applies retention without
ever deleting a lineage's head or a checkpoint a fork starts from.
"""

from __future__ import annotations

import logging
import time
import warnings
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kaizen.core.values import is_int

from .continuation import Continuation, require_readable
from .errors import (
    CheckpointConflictError, CheckpointCorruptError, CheckpointNotFoundError, DamagedCheckpointError,
    InvalidStateValueError, StateFormatError, StorageError,
)
from .history_reader import HistoryReader
from .ids import check_id, new_checkpoint_id, new_lineage_id
from .retention import RetentionSchedule, expired, forked_from, protected_checkpoints
from .row_cache import RowCache, row_metadata, timestamp_text
from .storage import CheckpointStore, open_store
from .storage.base import CheckpointRow
from .storage.rows import plan_fork, plan_save
from .types import AgentState, CheckpointMetadata

if TYPE_CHECKING:
    from ..permissions.pending import PendingApproval
    from .audit import AuditReport

log = logging.getLogger("kaizen.state")


class SyncStateManager:
    """Saves, loads, lists, forks and prunes checkpoints in one store.

    ``storage`` is a store object or URL (default: the embedded SQLite file).
    ``checkpoint_frequency``/``checkpoint_interval`` drive ``should_checkpoint``;
    Retention (``keep_last``, alias ``retention_count``, and ``max_age``) is applied every
    few saves; None keeps every checkpoint: rows are small, and time travel needs them. ``verify``: every load checks
    the row's SHA-256 checksum and each history's count and CRC-32 ("crc", one C
    call, catches damage); "chain" also recomputes the SHA-256 hash chain of every
    entry, which catches deliberate edits too (``verify_audit`` always does).
    """

    def __new__(cls, storage: Any = None, *args: Any, **kwargs: Any) -> SyncStateManager:
        """A user's own backend written to the original's ``StorageBackend`` protocol gets the
        full-state manager (``plugin.py``); our stores get this one."""
        if cls is SyncStateManager and storage is not None:
            from .plugin import PluginStateManager, is_plugin_backend

            if is_plugin_backend(storage):
                return super().__new__(PluginStateManager)
        return super().__new__(cls)

    def __init__(
        self,
        storage: Any = None,
        checkpoint_frequency: int = 10,
        checkpoint_interval: float = 60.0,
        retention_count: int | None = None,
        hook_manager: Any = None,
        verify: str = "crc",
        *,
        keep_last: int | None = None,
        max_age: timedelta | float | None = None,
    ) -> None:
        if not is_int(checkpoint_frequency) or checkpoint_frequency < 1:
            raise InvalidStateValueError(f"checkpoint_frequency must be an int >= 1, got {checkpoint_frequency!r}")
        if retention_count is not None and (not isinstance(retention_count, int) or retention_count < 1):
            raise InvalidStateValueError(f"retention_count must be an int >= 1 or None, got {retention_count!r}")
        if verify not in ("crc", "chain"):
            raise InvalidStateValueError(f"verify must be 'crc' or 'chain', got {verify!r}")
        self.verify = verify
        self.storage: CheckpointStore = open_store(storage)
        self.checkpoint_frequency = checkpoint_frequency
        self.checkpoint_interval = checkpoint_interval
        if keep_last is not None and retention_count is not None and keep_last != retention_count:
            raise InvalidStateValueError("give keep_last or retention_count (the original's name), not both")
        self.retention_count = keep_last if keep_last is not None else retention_count
        self.max_age = max_age
        self.hook_manager = hook_manager
        self.rows = RowCache(self.storage)
        self.history = HistoryReader(self.storage, verify)
        self.continuation = Continuation(self.storage, self.rows, self.history)
        self.retention = RetentionSchedule()
        self._last_save: dict[str, tuple[int, float]] = {}

    @classmethod
    def from_config(cls, config: Any) -> SyncStateManager:
        return cls(
            storage=open_store(config.storage, encryption_key=getattr(config, "encryption_key", None)),
            checkpoint_frequency=config.checkpoint_frequency,
            retention_count=config.retention_count,
        )

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> SyncStateManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- saving ---------------------------------------------------------------------------
    def should_checkpoint(self, agent_id: str, current_step: int, current_time: float | None = None) -> bool:
        """True when ``checkpoint_frequency`` steps or ``checkpoint_interval`` seconds have passed."""
        last = self._last_save.get(agent_id)
        if last is None:
            return True
        last_step, last_time = last
        now = time.time() if current_time is None else current_time
        return current_step - last_step >= self.checkpoint_frequency or now - last_time >= self.checkpoint_interval

    def save_checkpoint(self, state: AgentState, force: bool = False) -> str:
        """Save ``state`` on top of the checkpoint its histories continue and return its id.

        Writes only the history entries added since that checkpoint, in one transaction. The
        parent is found by content, not only by ``parent_checkpoint_id``: a state whose
        histories extend the agent's latest checkpoint (captured by the agent, built by hand,
        restored; with a stale or missing parent pointer) is saved on top of it. Raises
        ``CheckpointConflictError`` if another writer continued differently from the same
        checkpoint; nothing stored is ever overwritten. (``force`` is accepted for
        compatibility: every call saves.)
        """
        parent = self.continuation.parent_of(state)
        lineage_id = parent.lineage_id if parent is not None else new_lineage_id()
        plan = plan_save(state, parent, lineage_id)
        if self._hooked("pre_checkpoint_save"):
            self._trigger("pre_checkpoint_save", state, checkpoint_id=state.checkpoint_id,
                          step_number=state.step_number)
        for _ in range(20):
            try:
                self.storage.write(plan)
                break
            except CheckpointConflictError as conflict:
                newer = self.continuation.continued_head(state, parent, conflict)
                if newer is None:
                    raise
                parent = newer
                plan = plan_save(state, parent, parent.lineage_id)
        else:
            raise StorageError(f"agent {state.agent_id!r} keeps changing while saving: another worker is running it")
        self.rows.remember(plan.row)
        self.history.remember_saved(parent, plan.row, plan.records, state)
        self._last_save[state.agent_id] = (state.step_number, time.time())
        if self._hooked("post_checkpoint_save"):
            self._trigger("post_checkpoint_save", state, checkpoint_id=state.checkpoint_id,
                          step_number=state.step_number, size_bytes=plan.row.size_bytes,
                          new_records=len(plan.records))
        self._maybe_apply_retention(state.agent_id)
        return state.checkpoint_id

    # --- loading --------------------------------------------------------------------------
    def load_checkpoint(self, checkpoint_id: str) -> AgentState:
        """Load any checkpoint (time travel), verified against its checksum and hash chains."""
        check_id(checkpoint_id, "checkpoint_id")
        row = self._row(checkpoint_id)
        require_readable(row)
        return self.history.read_state(row)

    def load_latest(self, agent_id: str) -> AgentState | None:
        """The newest intact checkpoint of ``agent_id`` (None if it has none), for reading.

        A damaged newest checkpoint is skipped with a warning naming it (continuing the agent
        is another matter: ``resume_from_latest`` refuses).
        """
        found = self._latest_intact(agent_id)
        if found is None:
            return None
        state, damaged = found
        for problem in damaged:
            self._warn_corrupt(problem)
        return state

    def _latest_intact(self, agent_id: str) -> tuple[AgentState, list[CheckpointCorruptError]] | None:
        """(the newest intact state, the damaged checkpoints newer than it, newest first)."""
        check_id(agent_id, "agent_id")
        latest = self.storage.latest_checkpoint(agent_id)
        if latest is None:
            return None
        self.rows.remember(latest)  # loading it next reads no row twice
        damaged: list[CheckpointCorruptError] = []
        try:
            return self.load_checkpoint(latest.checkpoint_id), damaged
        except CheckpointCorruptError as exc:
            damaged.append(exc)
        for row in self.storage.list_rows(agent_id):
            if row.checkpoint_id == latest.checkpoint_id:
                continue
            try:
                return self.load_checkpoint(row.checkpoint_id), damaged
            except CheckpointCorruptError as exc:
                damaged.append(exc)
        for problem in damaged:
            self._warn_corrupt(problem)
        raise DamagedCheckpointError(agent_id, damaged, None)

    def _warn_corrupt(self, exc: CheckpointCorruptError) -> None:
        message = f"{exc}; falling back to an older checkpoint"
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def find_damage(self, agent_id: str) -> list[CheckpointCorruptError]:
        """Every damaged checkpoint of ``agent_id`` (empty list: intact), for read commands to warn.

        Checks every checkpoint's checksum and every stream it covers, reading each stored
        entry once; a lineage head that cannot be read at all is reported too.
        """
        from .audit import find_damage

        return find_damage(self.storage, check_id(agent_id, "agent_id"), require_readable)

    def load_for_resume(self, checkpoint_id: str) -> AgentState:
        """Load ``checkpoint_id`` to continue from it: a checkpoint that is not its lineage's
        head is forked first, so continuing never conflicts with (or rewrites) later history.

        This is how to continue deliberately from a chosen checkpoint, e.g. the newest intact
        one that ``DamagedCheckpointError`` names."""
        row = self._row(checkpoint_id)
        lineage = self.storage.read_lineage(row.lineage_id)
        if lineage.head_checkpoint_id == checkpoint_id:
            return self.load_checkpoint(checkpoint_id)
        log.info("checkpoint %s is not the head of its lineage; resuming on a fork", checkpoint_id)
        return self.fork(checkpoint_id)

    def resume_from_latest(self, agent_id: str) -> AgentState | None:
        """The state to continue ``agent_id`` from (None: it has no checkpoint).

        If another writer saves while we load, the newer checkpoint is loaded instead (never a
        fork of a stale one). A damaged newest checkpoint (or lineage head that cannot be read)
        raises ``DamagedCheckpointError`` naming it and the newest intact checkpoint: continuing
        behind damage would repeat what already happened, so the user picks where to continue
        (``load_for_resume(checkpoint_id)`` or ``fork``).
        """
        for _ in range(20):
            found = self._latest_intact(agent_id)
            if found is None:
                return None
            state, damaged = found
            if damaged:
                raise DamagedCheckpointError(agent_id, damaged, state.checkpoint_id)
            head_id = self.storage.read_lineage(self._row(state.checkpoint_id).lineage_id).head_checkpoint_id
            if head_id == state.checkpoint_id:
                return state
            if head_id is not None and (problem := self._unreadable(head_id)) is not None:
                raise DamagedCheckpointError(agent_id, [problem], state.checkpoint_id)
        raise StorageError(f"agent {agent_id!r} keeps changing while resuming: another worker is running it")

    def _unreadable(self, checkpoint_id: str) -> CheckpointCorruptError | None:
        """Why ``checkpoint_id`` (a lineage head the listing did not return) cannot be loaded, if it cannot."""
        try:
            self.load_checkpoint(checkpoint_id)
        except CheckpointCorruptError as exc:
            return exc
        except (CheckpointNotFoundError, StateFormatError) as exc:
            return CheckpointCorruptError(checkpoint_id, f"its lineage's head cannot be read ({exc})")
        return None

    def fork(self, checkpoint_id: str, new_agent_id: str | None = None) -> AgentState:
        """Start a new lineage at ``checkpoint_id`` (optionally as a new agent) and load it.

        The fork shares the history before the fork point; saving on it never touches
        the original lineage.
        """
        source = self._row(checkpoint_id)
        require_readable(source)
        agent_id = check_id(new_agent_id, "new_agent_id") if new_agent_id is not None else source.agent_id
        if new_agent_id is not None and self.storage.latest_checkpoint(agent_id) is not None:
            raise InvalidStateValueError(f"agent {agent_id!r} already exists; pick a new agent id for the fork")
        plan = plan_fork(source, new_checkpoint_id(), new_lineage_id(), agent_id)
        self.storage.write(plan)
        self.rows.remember(plan.row)
        return self.load_checkpoint(plan.row.checkpoint_id)

    fork_from_checkpoint = fork

    # --- listing and deleting -------------------------------------------------------------
    def list_checkpoints(
        self, agent_id: str | None = None, limit: int | None = None, before: str | datetime | None = None
    ) -> list[CheckpointMetadata]:
        """Checkpoints newest first (of one agent, or of every agent when ``agent_id`` is None)."""
        if limit is not None and (not is_int(limit) or limit < 0):
            raise InvalidStateValueError(f"limit must be an int >= 0, got {limit!r}")
        before_text = timestamp_text(before)
        agents = [check_id(agent_id, "agent_id")] if agent_id is not None else self.storage.list_agents()
        out: list[CheckpointMetadata] = []
        for agent in agents:
            out.extend(row_metadata(row) for row in self.storage.list_rows(agent, limit, before_text))
        if agent_id is None:
            out.sort(key=lambda meta: timestamp_text(meta.timestamp) or "", reverse=True)
        return out if limit is None else out[:limit]

    def list_agents(self) -> list[str]:
        return self.storage.list_agents()

    def get_checkpoint_tree(self, agent_id: str) -> dict[str | None, list[str]]:
        """Parent checkpoint id -> ids of its children (None: the roots)."""
        tree: dict[str | None, list[str]] = {}
        for meta in reversed(self.list_checkpoints(agent_id)):
            tree.setdefault(meta.parent_checkpoint_id, []).append(meta.checkpoint_id)
        return tree

    def delete(self, agent_id: str) -> int:
        """Delete every checkpoint and record of ``agent_id``; returns checkpoints deleted.

        Refused while another agent forked from it (that agent shares its records).
        """
        check_id(agent_id, "agent_id")
        dependants = forked_from(self.storage, agent_id)
        if dependants:
            raise StorageError(
                f"agent {agent_id!r} cannot be deleted: agent(s) {', '.join(dependants)} were forked from it "
                "and share its history; delete them first"
            )
        self._forget(agent_id)
        return self.storage.delete_agent(agent_id)

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        """Delete one checkpoint; refused for a lineage head or a fork's starting point."""
        row = self._row(checkpoint_id)
        if checkpoint_id in protected_checkpoints(self.storage, row.agent_id):
            raise StorageError(
                f"checkpoint {checkpoint_id!r} is the newest of its lineage or a fork starts from it; "
                "it cannot be deleted on its own (delete the agent instead)"
            )
        self.storage.delete_checkpoints(row.agent_id, [checkpoint_id])
        self.rows.drop([checkpoint_id])

    def apply_retention(
        self, agent_id: str, keep_last: int | None = None, max_age: timedelta | float | None = None
    ) -> list[str]:
        """Delete checkpoints beyond the newest ``keep_last`` or older than ``max_age``.

        Never deletes the newest checkpoint, any lineage's head, or a checkpoint a
        fork starts from. History records are kept: later checkpoints share them.
        Returns the ids deleted.
        """
        if keep_last is not None and (not is_int(keep_last) or keep_last < 1):
            raise InvalidStateValueError(f"keep_last must be an int >= 1, got {keep_last!r}")
        rows = self.storage.list_rows(check_id(agent_id, "agent_id"))
        doomed = expired(rows, protected_checkpoints(self.storage, agent_id), keep_last, max_age)
        if doomed:
            self.storage.delete_checkpoints(agent_id, doomed)
            self.rows.drop(doomed)
        return doomed

    def cleanup_old_checkpoints(self, agent_id: str) -> int:
        """Apply ``keep_last`` (``retention_count``) and ``max_age``; returns how many were deleted."""
        if self.retention_count is None and self.max_age is None:
            return 0
        return len(self.apply_retention(agent_id, keep_last=self.retention_count, max_age=self.max_age))

    def _maybe_apply_retention(self, agent_id: str) -> None:
        if self.retention_count is None and self.max_age is None:
            return
        if self.retention.due(agent_id, self.retention_count):
            self.cleanup_old_checkpoints(agent_id)
            self.retention.ran(agent_id)

    def claim(self, agent_id: str, worker_id: str | None = None, ttl: float = 30.0, keepalive: bool = True) -> Any:
        """Give this worker an expiring lease on ``agent_id`` (renewed in the background while
        held); ``LeaseHeldError`` says who holds it and until when."""
        from .lease import claim

        return claim(self.storage, agent_id, worker_id, ttl, keepalive)

    # --- deferred approvals (decisions.py) ------------------------------------------------
    def pending_approvals(self, agent_id: str | None = None) -> list[PendingApproval]:
        """Tool calls waiting for a person's decision (of one agent, or of all), oldest first."""
        from .decisions import pending_approvals

        return pending_approvals(self, agent_id)

    def approve(self, agent_id: str, call_id: str, action: str = "once", by: str | None = None,
                reason: str | None = None, via: str = "api") -> dict[str, Any]:
        """Approve a waiting call ("once", or "all" for every later call of its tool); returns the
        decision record. ``ApprovalNotPendingError`` if it is not waiting (nothing is written)."""
        from .decisions import decide

        return decide(self, agent_id, call_id, True, action, by, reason, via)

    def deny(self, agent_id: str, call_id: str, action: str = "once", by: str | None = None,
             reason: str | None = None, via: str = "api") -> dict[str, Any]:
        """Deny a waiting call ("once", or "deny_all"/"all" for every later call of its tool)."""
        from .decisions import decide

        return decide(self, agent_id, call_id, False, "deny_all" if action == "all" else action, by, reason, via)

    def verify_audit(self, agent_id: str) -> AuditReport:
        """Check ``agent_id``'s approval history against its hash chain and checkpoints."""
        from .audit import verify_audit

        return verify_audit(self.storage, check_id(agent_id, "agent_id"))

    # --- export, import, migrate -------------------------------------------------------
    def export_agent(self, agent_id: str, allow_damaged: bool = False) -> dict[str, Any]:
        """The agent's whole history as a JSON-ready document (with a digest and its lineage heads).

        A damaged agent raises ``CheckpointCorruptError`` unless ``allow_damaged``; the document
        then lists the damaged checkpoints under ``"damaged"``."""
        from .transfer import export_agent

        return export_agent(self.storage, agent_id, allow_damaged, require_readable)

    def import_agent(self, document: Any, allow_damaged: bool = False) -> str:
        """Write an export into this store after checking all of it; ``StateFormatError`` names what
        does not match (nothing is written then). A document listing damaged checkpoints needs
        ``allow_damaged``."""
        from .transfer import import_agent

        return import_agent(self.storage, document, allow_damaged)

    # --- internals ------------------------------------------------------------------------
    def _row(self, checkpoint_id: str) -> CheckpointRow:
        return self.rows.get(checkpoint_id)

    def _forget(self, agent_id: str) -> None:
        self.rows.forget_agent(agent_id)
        self.history.forget_agent(agent_id, {lin.lineage_id for lin in self.storage.list_lineages(agent_id)})

    def _hooked(self, event: str) -> bool:
        """Whether anyone listens to ``event``: payloads are built only then."""
        hooks = self.hook_manager
        if hooks is None:
            return False
        registered = getattr(hooks, "registered", None)
        if registered is None:
            return True
        try:
            return bool(registered(event))
        except Exception:  # a hook manager of another shape: let trigger decide
            return True

    def _trigger(self, event: str, state: AgentState, **data: Any) -> None:
        """Checkpoint hooks get the original's payload fields (agent_id, status, ISO timestamp) too."""
        if self.hook_manager is not None:
            payload = {"agent_id": state.agent_id, "status": state.status,
                       "timestamp": timestamp_text(state.timestamp), **data}
            self.hook_manager.trigger_sync(event, payload, agent_id=state.agent_id)

