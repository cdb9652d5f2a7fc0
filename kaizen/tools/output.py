"""Make tool outputs JSON-safe and bounded in size.

Tool results go to a model and into checkpoints, both JSON and both costly
when huge, so whatever a tool returns is converted (or ``str()``-ed) to JSON
types and long text is cut with a note saying how much was cut.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from kaizen.core.values import fits_json_int, map_strings

MAX_DEPTH = 50


def to_jsonable(value: Any, _depth: int = 0) -> Any:
    """Return ``value`` made only of dict/list/str/int/float/bool/None; never raises.

    Containers are converted recursively, well-known types (dataclasses, enums,
    dates, paths, bytes) get a faithful form, anything else becomes ``str()``.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value) if fits_json_int(value) else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if _depth >= MAX_DEPTH:
        return safe_str(value)
    if isinstance(value, enum.Enum):
        return to_jsonable(value.value, _depth + 1)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {_key(k): to_jsonable(v, _depth + 1) for k, v in list(value.items())}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(item, _depth + 1) for item in list(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name, None), _depth + 1) for f in dataclasses.fields(value)}
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (PurePath, uuid.UUID, Decimal)):
        return str(value)
    return safe_str(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)  # True -> "true", like json.dumps would for a key
    return safe_str(key.value if isinstance(key, enum.Enum) else key)


def safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not break the tool result
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def truncate_head(text: str, limit: int) -> str:
    """Keep the first ``limit`` characters and say how many were cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"{text[:limit]}\n[... truncated: {cut} of {len(text)} characters cut]"


def truncate_middle(text: str, limit: int) -> str:
    """Keep the start and the end (where errors and summaries usually are) and say how much was cut."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    cut = len(text) - limit
    end = text[len(text) - tail :] if tail else ""
    return f"{text[:head]}\n[... {cut} of {len(text)} characters cut ...]\n{end}"


def bound_output(value: Any, limit: int) -> Any:
    """Cut every string to ``limit`` characters, then the whole JSON text if it is still larger.

    The second step turns an oversized structure into its (cut) JSON text: a
    model can still read it, and nothing unbounded reaches the context.
    """
    value = map_strings(value, lambda text: truncate_head(text, limit))
    if isinstance(value, str) or value is None:
        return value
    text = json.dumps(value, ensure_ascii=False)
    if len(text) <= limit:
        return value
    return truncate_head(text, limit)

