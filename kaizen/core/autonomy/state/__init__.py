"""The state core (approval records, ``AgentState``, the tracker: pure, no I/O) and, on top of
it, the checkpoint system (``StateManager``, stores, ``migrate``)."""

from __future__ import annotations

from .errors import (
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
from .types import STATUSES, STREAM_FIELDS, AgentState, CheckpointMetadata

# The checkpoint system on top of the core (imported last: it builds on the names above).
from .manager import StateManager  # noqa: E402
from .transfer import migrate  # noqa: E402

__all__ = [
    "APPROVAL_ACTIONS",
    "REDACTED",
    "STATUSES",
    "STREAM_FIELDS",
    "AgentState",
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
    "StateManager",
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
