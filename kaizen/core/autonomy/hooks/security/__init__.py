"""Security helpers of the hooks system: redaction of what hooks write (the original's path)."""

from __future__ import annotations

from .redaction import DataRedactor, RedactionConfig, SecureLoggingHook, SensitiveDataRedactor

__all__ = ["DataRedactor", "RedactionConfig", "SecureLoggingHook", "SensitiveDataRedactor"]
