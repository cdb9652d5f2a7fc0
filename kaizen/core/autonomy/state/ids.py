"""Identifiers and timestamps shared by states, records and stores."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from .errors import InvalidStateTypeError, InvalidStateValueError

# Ids become file names and SQL values: keep them short and free of path syntax.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")


def new_checkpoint_id() -> str:
    """``ckpt_`` + 12 hex digits, the original's format (48 random bits)."""
    return "ckpt_" + secrets.token_hex(6)


def new_agent_id() -> str:
    return "agent_" + secrets.token_hex(6)


def new_lineage_id() -> str:
    return "lin_" + secrets.token_hex(8)


def utc_now() -> str:
    """Now as ISO 8601 in UTC with microseconds and an explicit offset."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def check_id(value: object, name: str) -> str:
    """Return ``value`` if it is a safe id, else raise naming ``name``.

    Ids may not contain ``/``, ``..``, NUL or white space, so an id can never
    escape a directory or smuggle SQL; they are at most 128 characters.
    """
    if not isinstance(value, str):
        raise InvalidStateTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not _ID_PATTERN.match(value) or ".." in value:
        raise InvalidStateValueError(
            f"{name} {value[:140]!r} is not a valid id: use 1-128 letters, digits and _ . : @ -, "
            "starting with a letter or digit, without '..'"
        )
    return value


def check_timestamp(value: object, name: str) -> str:
    """Return ``value`` if it is an ISO 8601 timestamp, else raise naming ``name``."""
    if not isinstance(value, str):
        raise InvalidStateTypeError(f"{name} must be an ISO 8601 str, got {type(value).__name__}")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidStateValueError(f"{name} {value[:60]!r} is not an ISO 8601 timestamp") from None
    return value
