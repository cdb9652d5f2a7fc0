"""Errors of the approval policy."""

from __future__ import annotations


class PermissionError_(Exception):
    """Base class of approval errors (named so it does not shadow the built-in)."""


class ApprovalCallbackError(PermissionError_, ValueError):
    """An approval callback returned something that is not a decision."""
