"""The state core: approval records, ``AgentState`` and the tracker. Pure, no I/O."""

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
    "StateTracker",
    "StorageError",
    "freeze",
    "new_agent_id",
    "new_checkpoint_id",
    "redact_text",
    "summarize_input",
    "thaw",
    "utc_now",
]
