"""Errors of the LangGraph saver, each naming the thread, namespace and checkpoint or channel."""

from __future__ import annotations

from ..errors import IntegrationError, MissingExtraError


class LangGraphNotInstalledError(MissingExtraError):
    """The optional ``langgraph`` packages are needed but not installed."""

    needs = 'the LangGraph saver needs "langgraph" and "langgraph-checkpoint"'
    extra = name_of_module = "langgraph"


class SaverError(IntegrationError):
    """Base class of the saver's own errors."""


class UnsafeSerializerError(SaverError):
    """The serializer would write or read pickle, which this saver never stores or loads."""


class StoreNotSupportedError(SaverError):
    """The store cannot hold the saver's tables (for example a filesystem store)."""


class SavedDataCorruptError(SaverError):
    """Bytes the saver wrote no longer match their digest: damage on disk or an edit."""

    def __init__(self, what: str, thread_id: str, checkpoint_ns: str, detail: str) -> None:
        where = f"thread {thread_id!r}" + (f", namespace {checkpoint_ns!r}" if checkpoint_ns else "")
        super().__init__(
            f"{what} of {where} is damaged ({detail}); restore the store from a backup, or go back to an "
            f"earlier checkpoint with graph.get_state_history(...) and continue from there"
        )
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns


class AuditRecordError(SaverError):
    """A human decision could not be written to the thread's approval history."""
