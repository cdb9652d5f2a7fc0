"""Explicit upgrades of older checkpoint documents to the current schema.

Version 0 is the original Kailash Kaizen layout (no ``schema_version``), so
states exported from it load here. Every upgrade is a pure function from one
version's dict to the next one's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from kaizen.core.values import is_int

from .errors import StateFormatError

CURRENT_VERSION = 1


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    doc.setdefault("token_usage", {})
    for key in ("approval_history", "tool_usage_counts", "workflow_state", "metadata"):
        if doc.get(key) is None:
            doc.pop(key, None)
    return doc


_UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def upgrade(data: object) -> dict[str, Any]:
    """Return ``data`` as a current-version document, or raise ``StateFormatError`` saying why not."""
    if not isinstance(data, Mapping):
        raise StateFormatError(f"an agent state must be a JSON object, got {type(data).__name__}")
    doc = dict(data)
    version = doc.pop("schema_version", None)
    if version is None:
        if "agent_id" not in doc or "checkpoint_id" not in doc:
            raise StateFormatError("not an agent state: no schema_version, agent_id or checkpoint_id")
        version = 0  # the original's layout
    if not is_int(version):
        raise StateFormatError(f"schema_version must be an int, got {type(version).__name__}")
    if version > CURRENT_VERSION:
        raise StateFormatError(
            f"schema_version {version} was written by a newer kaizen-state; this one reads up to "
            f"{CURRENT_VERSION}: upgrade kaizen-state"
        )
    if version < 0:
        raise StateFormatError(f"schema_version {version} is not a valid version")
    while version < CURRENT_VERSION:
        doc = _UPGRADES[version](doc)
        version += 1
    return doc
