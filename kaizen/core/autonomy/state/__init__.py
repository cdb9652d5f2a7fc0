"""The state core (approval records, ``AgentState``, the tracker: pure, no I/O) and, on top of
it, the checkpoint system (``SyncStateManager`` and its async face ``StateManager``, stores, ``migrate``)."""

from __future__ import annotations

from .errors import (
    CheckpointAlreadySavedError,
    CheckpointConflictError,
    CheckpointCorruptError,
    CheckpointNotFoundError,
    EncryptionKeyError,
    InvalidStateTypeError,
    InvalidStateValueError,
    StateDivergedError,
    StateError,
    StateFormatError,
    StorageError,
)
from .frozen import FrozenDict, FrozenList, freeze, thaw
from .ids import new_agent_id, new_checkpoint_id, utc_now
from .records import APPROVAL_ACTIONS
from .redaction import REDACTED, redact_text, summarize_input
from .tracker import StateTracker
from .types import STATUSES, STREAM_FIELDS, AgentState, CheckpointMetadata, StateSnapshot

# The checkpoint system on top of the core (imported last: it builds on the names above).
from .sync_manager import SyncStateManager  # noqa: E402
from .manager import AsyncStateManager, StateManager  # noqa: E402
from .storage import FilesystemStorage, StorageBackend  # noqa: E402
from .transfer import migrate  # noqa: E402

__all__ = [
    "APPROVAL_ACTIONS",
    "AsyncStateManager",
    "REDACTED",
    "STATUSES",
    "STREAM_FIELDS",
    "AgentState",
    "CheckpointAlreadySavedError",
    "CheckpointConflictError",
    "CheckpointCorruptError",
    "CheckpointMetadata",
    "CheckpointNotFoundError",
    "EncryptionKeyError",
    "FrozenDict",
    "FrozenList",
    "InvalidStateTypeError",
    "InvalidStateValueError",
    "StateDivergedError",
    "StateError",
    "StateFormatError",
    "FilesystemStorage",
    "StateManager",
    "StateSnapshot",
    "StorageBackend",
    "SyncStateManager",
    "StateTracker",
    "StorageError",
    "freeze",
    "migrate",
    "new_agent_id",
    "new_checkpoint_id",
    "redact_text",
    "summarize_input",
    "thaw",
    "utc_now",
]

