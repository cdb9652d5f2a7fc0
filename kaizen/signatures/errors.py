"""Errors of declarative signatures."""

from __future__ import annotations


class SignatureError(ValueError):
    """A signature is declared wrongly, or inputs/outputs do not match it."""
