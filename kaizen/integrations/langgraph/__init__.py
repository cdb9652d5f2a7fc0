"""A LangGraph checkpointer on kaizen's stores: linear storage and an audit trail.

``KaizenSaver.from_conn_string("sqlite:///state.db")`` (or ``postgresql://...?schema=...``,
``memory://``) stores each channel version once, only the appended part of a list
that grows, and records answers to ``interrupt()`` in the thread's approval history.
"""

from __future__ import annotations

from .errors import (
    AuditRecordError,
    LangGraphNotInstalledError,
    SavedDataCorruptError,
    SaverError,
    StoreNotSupportedError,
    UnsafeSerializerError,
)
from .saver import AsyncKaizenSaver, KaizenSaver

__all__ = [
    "AsyncKaizenSaver",
    "AuditRecordError",
    "KaizenSaver",
    "LangGraphNotInstalledError",
    "SavedDataCorruptError",
    "SaverError",
    "StoreNotSupportedError",
    "UnsafeSerializerError",
]
