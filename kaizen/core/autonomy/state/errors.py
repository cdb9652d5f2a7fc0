"""Errors of the state core and its stores.

Each error names what failed (argument, field, agent id or checkpoint id) so a
user can fix the call without reading our source. Input errors subclass the
built-in ``ValueError``/``TypeError`` so generic handlers keep working.
"""

from __future__ import annotations


class StateError(Exception):
    """Base class of every error raised by the state core and its stores."""


class InvalidStateValueError(StateError, ValueError):
    """An argument or field has the right type but a value we cannot accept."""


class CheckpointAlreadySavedError(InvalidStateValueError):
    """A state was saved again under the id of a checkpoint already stored: storing it would
    overwrite that checkpoint. The async ``StateManager`` answers by saving it as a new checkpoint."""

    def __init__(self, checkpoint_id: str, agent_id: str) -> None:
        self.checkpoint_id = checkpoint_id
        self.agent_id = agent_id
        super().__init__(
            f"checkpoint {checkpoint_id!r} of agent {agent_id!r} is already saved; a new checkpoint needs "
            "a new checkpoint_id (capture the state again, or dataclasses.replace(state, "
            "checkpoint_id=new_checkpoint_id()))"
        )


class InvalidStateTypeError(StateError, TypeError):
    """An argument or field has the wrong type."""


class StateFormatError(StateError, ValueError):
    """A serialized state is foreign, damaged or from an unknown schema version."""


class StorageError(StateError):
    """A store could not do what was asked (I/O, configuration, schema)."""


class CheckpointNotFoundError(StorageError, KeyError, FileNotFoundError):
    """No checkpoint (or agent) with the given id exists in the store.

    Also a ``FileNotFoundError``, which is what the original Kailash Kaizen raised and what
    its callers catch.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "checkpoint not found"


class CheckpointCorruptError(StorageError):
    """A stored checkpoint failed its checksum or its record chain."""

    def __init__(self, checkpoint_id: str, detail: str) -> None:
        super().__init__(f"checkpoint {checkpoint_id!r} is damaged: {detail}")
        self.checkpoint_id = checkpoint_id
        self.detail = detail


class DamagedCheckpointError(CheckpointCorruptError):
    """An agent's newest checkpoint is damaged, so continuing it is refused.

    Reading falls back to the newest intact checkpoint; continuing from there would run
    again whatever happened after it (tool calls with side effects), so the choice of
    where to continue is left to the user.
    """

    def __init__(self, agent_id: str, damaged: list[CheckpointCorruptError], intact_checkpoint_id: str | None) -> None:
        first = damaged[0] if damaged else None
        super().__init__(first.checkpoint_id if first else "?", first.detail if first else "damaged")
        self.agent_id = agent_id
        self.damaged = list(damaged)
        self.damaged_checkpoint_ids = [exc.checkpoint_id for exc in damaged]
        self.intact_checkpoint_id = intact_checkpoint_id
        named = "; ".join(f"{exc.checkpoint_id} ({exc.detail})" for exc in damaged[:5])
        more = f" and {len(damaged) - 5} more" if len(damaged) > 5 else ""
        if intact_checkpoint_id is None:
            how = ("no intact checkpoint is left: restore the store (or an export of the agent) from a backup, "
                   "or start the agent again")
        else:
            how = (f"the newest intact checkpoint is {intact_checkpoint_id}. Continuing from it would repeat "
                   "what happened after it (tool calls included), so it is not done automatically. To continue "
                   f"from it deliberately: `kaizen resume {agent_id} --from {intact_checkpoint_id}`, or "
                   f"SyncStateManager.load_for_resume({intact_checkpoint_id!r}), or fork({intact_checkpoint_id!r}, "
                   "new_agent_id=...) to continue as a new agent")
        self.args = (f"agent {agent_id!r} cannot be resumed: its newest checkpoint is damaged: {named}{more}; {how}",)

    def __str__(self) -> str:
        return str(self.args[0])


class CheckpointConflictError(StorageError):
    """Another writer already continued from the same parent checkpoint."""

    def __init__(self, agent_id: str, expected_parent: str | None, actual_head: str | None) -> None:
        super().__init__(
            f"agent {agent_id!r}: cannot save on top of {expected_parent or 'an empty history'}; "
            f"the agent's latest checkpoint is now {actual_head or 'none'} (another writer saved first). "
            "Resume from the latest checkpoint, or fork to keep both histories."
        )
        self.agent_id = agent_id
        self.expected_parent = expected_parent
        self.actual_head = actual_head


class StateDivergedError(StorageError):
    """A state's append-only history no longer extends its parent checkpoint's."""


class LeaseHeldError(StorageError):
    """Another worker holds the agent's lease; it expires unless that worker renews it."""

    def __init__(self, agent_id: str, holder: str, expires_at: float) -> None:
        from datetime import datetime, timezone

        until = datetime.fromtimestamp(expires_at, timezone.utc).isoformat(timespec="seconds")
        super().__init__(f"agent {agent_id!r} is held by {holder} until {until}; "
                         "wait for the lease to expire or stop that worker")
        self.agent_id = agent_id
        self.holder = holder
        self.expires_at = expires_at


class EncryptionKeyError(StorageError):
    """The store's contents need another key (or none): configuration, not damage, so loading
    stops here instead of falling back to older checkpoints."""


class StoreNotFoundError(StorageError):
    """The store named (file, directory, database or schema) does not exist; opening it read-only
    never creates it."""


class NotAKaizenStoreError(StorageError):
    """The file, directory or schema exists but holds no kaizen store; it was left untouched."""


class ReadOnlyStoreError(StorageError):
    """A write was attempted on a store opened read-only."""


class DamagedEntryWarning(RuntimeWarning):
    """A stored entry could not be read and was skipped; the intact entries beside it are still served."""
