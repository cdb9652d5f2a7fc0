"""What a hook may write about an event's payload: its shape always, its values only redacted.

Every built-in hook that writes a payload anywhere (a log line, a metric label, a span
attribute, an audit record) goes through these functions, so there is one place where
secrets are taken out. Redaction runs before truncation, on nested values too
(``kaizen.core.autonomy.state.redaction``): a cut never leaves half a key behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from kaizen.core.autonomy.state.redaction import redact_text, redact_value, summarize_input

MAX_PAYLOAD_CHARS = 2000
MAX_LABEL_CHARS = 80
_LABEL_JUNK = re.compile(r"[\x00-\x1f]")


def payload_shape(payload: Any) -> dict[str, Any]:
    """Key names and their count, never values (key names are redacted too)."""
    if isinstance(payload, Mapping):
        return {"count": len(payload), "keys": sorted(redact_text(str(key), MAX_LABEL_CHARS) for key in payload)}
    return {"count": 0 if payload is None else 1, "keys": []}


def render_payload(payload: Any, limit: int = MAX_PAYLOAD_CHARS) -> str:
    """The payload's values as bounded text, secrets replaced before the cut."""
    return summarize_input(payload, limit)


def redacted_copy(payload: Any) -> Any:
    """A JSON-shaped copy with secrets replaced (for audit records); odd objects become their text."""
    return redact_value(_jsonable(payload, 0))


def safe_label(value: Any, limit: int = MAX_LABEL_CHARS) -> str:
    """A metric label or span attribute value: redacted, one line, bounded."""
    text = redact_text(str(value), limit)
    text = _LABEL_JUNK.sub(" ", text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def wants_full_payload(enabled: bool, logger: logging.Logger) -> bool:
    """Values are written only when asked for *and* the logger is at DEBUG."""
    return bool(enabled) and logger.isEnabledFor(logging.DEBUG)


def _jsonable(value: Any, depth: int) -> Any:
    if depth > 12:
        return "..."
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(item, depth + 1) for item in value]
    return render_payload(value, MAX_LABEL_CHARS * 4)
