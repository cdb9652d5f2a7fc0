"""Identifiers and timestamps shared by states, records and stores."""

from __future__ import annotations

import os
import re
import secrets
import threading
import time
from datetime import datetime, timezone

from .errors import InvalidStateTypeError, InvalidStateValueError

# Ids become file names and SQL values: keep them short and free of path syntax.
_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,127}$")


class _RandomBytes:
    """The operating system's random bytes, fetched a few KB at a time: an id is made on every
    save, and one system call per id was most of its cost. Thread-safe; a forked child drops
    what its parent fetched, so two processes never hand out the same bytes."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0

    def hex(self, count: int) -> str:
        with self._lock:
            if self._at + count > len(self._pool):
                self._pool, self._at = secrets.token_bytes(self._size), 0
            start = self._at
            self._at += count
            return self._pool[start:self._at].hex()

    def forget(self) -> None:
        self._lock = threading.Lock()
        self._pool, self._at = b"", 0


_RANDOM = _RandomBytes()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RANDOM.forget)


def new_checkpoint_id() -> str:
    """``ckpt_`` + 12 hex digits, the original's format (48 random bits)."""
    return "ckpt_" + _RANDOM.hex(6)


def new_agent_id() -> str:
    return "agent_" + _RANDOM.hex(6)


def new_lineage_id() -> str:
    return "lin_" + _RANDOM.hex(8)


# The current second, kept as text and as ``datetime`` fields: a record, a workflow update and a
# save each take the time, and formatting (or adding up) a whole datetime every time cost more
# than reading the clock. One tuple, replaced whole: safe against another thread reading it.
_Fields = tuple[int, int, int, int, int, int]  # year, month, day, hour, minute, second
_SECOND: tuple[int, str, _Fields] = (-1, "", (1970, 1, 1, 0, 0, 0))


def _second(seconds: int) -> tuple[int, str, _Fields]:
    global _SECOND
    moment = datetime.fromtimestamp(seconds, timezone.utc)
    fields = (moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)
    _SECOND = second = (seconds, moment.isoformat()[:19], fields)
    return second


def utc_now() -> str:
    """Now as ISO 8601 in UTC with microseconds and an explicit offset (what
    ``datetime.now(timezone.utc).isoformat(timespec="microseconds")`` gives)."""
    return utc_text(time.time_ns())


def utc_moment() -> tuple[datetime, str]:
    """Now as a UTC ``datetime`` and as ``utc_now`` text of the same microsecond (a save stores
    the text: made here from the clock, it costs less than formatting the ``datetime``)."""
    seconds, micros = divmod(time.time_ns() // 1000, 1_000_000)
    second = _SECOND
    if second[0] != seconds:
        second = _second(seconds)
    return datetime(*second[2], micros, timezone.utc), f"{second[1]}.{micros:06d}+00:00"


def utc_text(epoch_ns: int) -> str:
    """``epoch_ns`` (nanoseconds since the epoch, >= 0) as ``utc_now`` writes it."""
    seconds, micros = divmod(epoch_ns // 1000, 1_000_000)
    second = _SECOND
    if second[0] != seconds:
        second = _second(seconds)
    return f"{second[1]}.{micros:06d}+00:00"


# Ids already found valid (an id's validity depends on its text alone, and a str never changes):
# the agent's id and the parent's come back on every save. Bounded: emptied when full.
_VALID_IDS: set[str] = set()
_VALID_IDS_MAX = 4096
# The same set, for hot paths that skip the call when an exact str is in it (read only: only
# ``check_id`` adds to it or empties it).
KNOWN_IDS = _VALID_IDS


def check_id(value: object, name: str) -> str:
    """Return ``value`` if it is a safe id, else raise naming ``name``.

    Ids may not contain ``/``, ``..``, NUL or white space, so an id can never
    escape a directory or smuggle SQL; they are at most 128 characters.
    """
    if type(value) is str and value in _VALID_IDS:  # an exact str: no subclass's own __eq__/__hash__
        return value
    if not isinstance(value, str):
        raise InvalidStateTypeError(f"{name} must be a str, got {type(value).__name__}")
    if not _ID_PATTERN.match(value) or ".." in value:
        raise InvalidStateValueError(
            f"{name} {value[:140]!r} is not a valid id: use 1-128 letters, digits and _ . : @ -, "
            "starting with a letter or digit, without '..'"
        )
    if type(value) is str:
        if len(_VALID_IDS) >= _VALID_IDS_MAX:
            _VALID_IDS.clear()
        _VALID_IDS.add(value)
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
