"""``SensitiveDataRedactor`` and ``SecureLoggingHook`` (the original's names and path).

The redactor is the project's secret redaction (``kaizen.core.autonomy.state.redaction``:
passwords, tokens, keys, credentials in URLs, secret-named fields, nested) plus the
original's PII patterns: card numbers and US social security numbers always, e-mail and IP
addresses when asked for.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kaizen.core.autonomy.state.redaction import REDACTED, is_secret_key, redact_text

from ..builtin.logging_hook import LoggingHook
from ..types import HookContext

logger = logging.getLogger(__name__)

_CARD = re.compile(r"\b\d{4}[-\s]?\d{4}[-\s]?\d{4}[-\s]?\d{4}\b")
_SSN = re.compile(r"\b\d{3}-\d{2}-\d{4}\b")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_IP = re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b")


@dataclass
class RedactionConfig:
    """Options of a ``SensitiveDataRedactor``."""

    redaction_marker: str = REDACTED
    additional_fields: set[str] = field(default_factory=set)
    redact_api_keys: bool = True
    redact_passwords: bool = True
    redact_credit_cards: bool = True
    redact_ssn: bool = True
    redact_email: bool = False
    redact_ip_addresses: bool = False


class SensitiveDataRedactor:
    """Replaces secrets and PII in strings, dicts and hook contexts."""

    SENSITIVE_FIELDS = frozenset({"api_key", "apikey", "api-key", "password", "passwd", "pwd", "secret", "token",
                                  "auth", "authorization", "credit_card", "creditcard", "cc", "cvv", "ssn",
                                  "social_security", "private_key", "privatekey"})

    def __init__(self, redaction_marker: str = REDACTED, additional_fields: set[str] | None = None,
                 *, redact_email: bool = False, redact_ip_addresses: bool = False) -> None:
        self.redaction_marker = redaction_marker
        self.sensitive_fields = set(self.SENSITIVE_FIELDS) | {name.lower() for name in additional_fields or ()}
        self.patterns = [_CARD, _SSN] + ([_EMAIL] if redact_email else []) + ([_IP] if redact_ip_addresses else [])

    @classmethod
    def from_config(cls, config: RedactionConfig) -> SensitiveDataRedactor:
        return cls(config.redaction_marker, config.additional_fields,
                   redact_email=config.redact_email, redact_ip_addresses=config.redact_ip_addresses)

    def redact_string(self, text: str) -> str:
        text = redact_text(text)
        for pattern in self.patterns:
            text = pattern.sub(REDACTED, text)
        return text if self.redaction_marker == REDACTED else text.replace(REDACTED, self.redaction_marker)

    def redact_dict(self, data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self._redact_item(key, value) for key, value in data.items()}

    def _redact_item(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and value is not None and not isinstance(value, bool) and (
                key.lower() in self.sensitive_fields or is_secret_key(key)) and not isinstance(value, (int, float)):
            return self.redaction_marker
        return self._redact_value(value)

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact_string(value)
        if isinstance(value, Mapping):
            return {key: self._redact_item(key, item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._redact_value(item) for item in value]
        return value

    def redact_hook_context(self, context: HookContext) -> HookContext:
        """A copy of ``context`` with redacted ``data`` and ``metadata`` (the same trace id)."""
        return HookContext(event_type=context.event_type, agent_id=context.agent_id, timestamp=context.timestamp,
                           data=self.redact_dict(context.data), metadata=self.redact_dict(context.metadata),
                           trace_id=context.trace_id)


class SecureLoggingHook(LoggingHook):
    """``LoggingHook`` with the redactor always on, logging on this module's logger."""

    def __init__(self, log_level: str = "INFO", include_data: bool = True, format: str = "text",
                 redact_sensitive: bool = True, log_full_payloads: bool = False) -> None:
        super().__init__(log_level, include_data, format, redact_sensitive, log_full_payloads,
                         name="secure_logging_hook")

    def _logger_name(self) -> str:
        return __name__

    def _base_logger(self) -> Any:
        return logger


DataRedactor = SensitiveDataRedactor

__all__ = ["DataRedactor", "RedactionConfig", "SecureLoggingHook", "SensitiveDataRedactor"]
