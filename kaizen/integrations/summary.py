"""JSON-safe, size-bounded summaries of arbitrary Python values.

Agent state and LLM context take only JSON and must stay small, while workflow
node outputs can be anything; this turns any value into JSON within a budget.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

DEFAULT_OUTPUT_CHARS = 500
MIN_SUMMARY_CHARS = 16


def check_chars(label: str, value: Any) -> None:
    """Validate a character budget (an int of at least ``MIN_SUMMARY_CHARS``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{label} must be an int, got {type(value).__name__}")
    if value < MIN_SUMMARY_CHARS:
        raise ValueError(f"{label} must be at least {MIN_SUMMARY_CHARS}, got {value}")


_MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson (and the state core) accept
_ELLIPSIS = "…"


class _NoRoom(Exception):
    """Nothing meaningful fits in the budget left."""


def json_safe_summary(value: Any, max_chars: int = DEFAULT_OUTPUT_CHARS) -> Any:
    """Turn any node output into a JSON value whose JSON text has <= max_chars characters.

    Agent state and LLM context only take JSON and must stay small, while
    node outputs can be anything. dict/list/str/int/float/bool/None are kept
    as they are when they fit; tuples, sets and deques become lists,
    dataclasses and pydantic models dicts, non-str keys strings, NaN/inf the
    strings "NaN"/"Infinity"/"-Infinity", integers beyond 64 bits strings,
    anything else a short ``str()``. What does not fit is cut: long strings
    end in "…", containers end with a "…+N more" marker, nesting deeper than
    32 levels or cycles become a short description. The size is measured as
    the length of the compact JSON text (``orjson.dumps``), in characters.
    """
    check_chars("max_chars", max_chars)
    try:
        result, _ = _fit(value, max_chars, 0, set())
    except Exception:  # noqa: BLE001 - e.g. a __len__ that raises; a summary must not fail
        result, _ = _fit_str(f"<unreadable {type(value).__name__}>", max_chars)
    return result


def _fit(value: Any, budget: int, depth: int, active: set[int]) -> tuple[Any, int]:
    """Return ``(json_value, json_length)`` with ``json_length <= budget``, or raise _NoRoom."""
    if value is None:
        return _scalar(None, 4, "None", budget)
    if isinstance(value, bool):
        return _scalar(value, 4 if value else 5, str(value), budget)
    if isinstance(value, int):
        number = int(value)
        if _INT_MIN <= number <= _INT_MAX:
            text = str(number)
            return _scalar(number, len(text), text, budget)
        return _fit_str(_big_int_text(number), budget)
    if isinstance(value, float):
        real = float(value)
        if math.isnan(real):
            return _fit_str("NaN", budget)
        if math.isinf(real):
            return _fit_str("Infinity" if real > 0 else "-Infinity", budget)
        return _scalar(real, len(orjson.dumps(real)), repr(real), budget)
    if isinstance(value, str):
        return _fit_str(str.__str__(value), budget)
    if isinstance(value, (dict, list, tuple)):
        # Whole and plain JSON already: keep it as is rather than reserving
        # room for a truncation marker that would not be needed.
        exact = _exact(value, budget, depth)
        if exact is not None:
            return exact
    if isinstance(value, Mapping):
        return _fit_container(value, lambda: iter(value.items()), len(value), True, budget, depth, active)
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return _fit_container(value, lambda: iter(value), len(value), False, budget, depth, active)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return _fit_container(
            value,
            lambda: ((f.name, getattr(value, f.name, None)) for f in fields),
            len(fields),
            True,
            budget,
            depth,
            active,
        )
    dump = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):
        try:
            dumped = dump()
        except Exception:  # noqa: BLE001 - fall back to str()
            dumped = None
        if isinstance(dumped, Mapping):
            return _fit(dumped, budget, depth, active)
    return _fit_str(_short_text(value, budget), budget)


def _exact(value: Any, limit: int, depth: int) -> tuple[Any, int] | None:
    """Copy of a plain-JSON value and its JSON length if it fits whole, else None.

    Gives up at the first thing that would need converting or cutting, so its
    cost stays bounded by ``limit`` (every JSON value takes at least 1 char).
    """
    if value is None:
        length = 4
    elif isinstance(value, bool):
        length = 4 if value else 5
    elif isinstance(value, int):
        value = int(value)
        if not _INT_MIN <= value <= _INT_MAX:
            return None
        length = len(str(value))
    elif isinstance(value, float):
        value = float(value)
        if not math.isfinite(value):
            return None
        length = len(orjson.dumps(value))
    elif isinstance(value, str):
        if len(value) + 2 > limit:
            return None
        value = str.__str__(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        length = _json_len(value)
    elif depth >= _MAX_DEPTH:
        return None
    elif isinstance(value, (list, tuple)):
        items: list[Any] = []
        length = 2
        for item in value:
            comma = 1 if items else 0
            found = _exact(item, limit - length - comma, depth + 1)
            if found is None:
                return None
            items.append(found[0])
            length += comma + found[1]
        value = items
    elif isinstance(value, dict):
        pairs: dict[str, Any] = {}
        length = 2
        for key, item in value.items():
            if not isinstance(key, str):
                return None
            comma = 1 if pairs else 0
            found_key = _exact(key, limit - length - comma - 2, depth + 1)
            if found_key is None:
                return None
            found = _exact(item, limit - length - comma - found_key[1] - 1, depth + 1)
            if found is None:
                return None
            pairs[found_key[0]] = found[0]
            length += comma + found_key[1] + 1 + found[1]
        value = pairs
    else:
        return None
    return (value, length) if length <= limit else None


def _scalar(value: Any, length: int, text: str, budget: int) -> tuple[Any, int]:
    if length <= budget:
        return value, length
    return _fit_str(text, budget)


def _big_int_text(number: int) -> str:
    try:
        return str(number)
    except ValueError:  # beyond sys.get_int_max_str_digits()
        return f"<int of {number.bit_length()} bits>"


def _short_text(value: Any, budget: int) -> str:
    """A str() that is bounded before it is built where we can (bytes)."""
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            data = bytes(value[: budget + 1])
            return repr(data) + (_ELLIPSIS if len(value) > budget else "")
        if isinstance(value, BaseException):
            return f"{type(value).__name__}: {value}"
        text = str(value)
        return text if isinstance(text, str) else repr(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the summary
        return f"<unprintable {type(value).__name__}>"


def _json_len(text: str) -> int:
    return len(orjson.dumps(text).decode("utf-8"))


def _utf8_clean(text: str) -> str:
    """JSON text is UTF-8: lone surrogates become visible backslash escapes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _fit_str(text: str, budget: int) -> tuple[str, int]:
    # A JSON string is at least 2 characters longer than its content, so more
    # than ``budget`` characters of content can never be needed.
    cut = len(text) > budget
    candidate = _utf8_clean(text[:budget] if cut else text)
    if not cut:
        length = _json_len(candidate)
        if length <= budget:
            return candidate, length
    if budget < 3:
        raise _NoRoom
    # Largest prefix whose JSON (plus the ellipsis) fits; length grows with the prefix.
    lo, hi = 0, min(len(candidate), budget - 3)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _json_len(candidate[:mid] + _ELLIPSIS) <= budget:
            lo = mid
        else:
            hi = mid - 1
    result = candidate[:lo] + _ELLIPSIS
    return result, _json_len(result)


def _marker_text(omitted: int) -> str:
    return f"{_ELLIPSIS}+{omitted} more"


def _fit_container(
    container: Any,
    items: Callable[[], Iterable[Any]],
    total: int,
    is_mapping: bool,
    budget: int,
    depth: int,
    active: set[int],
) -> tuple[Any, int]:
    """Greedy fill: items in order until the budget runs out, then a marker."""
    kind = type(container).__name__
    if id(container) in active:
        return _fit_str(f"<cycle: {kind}>", budget)
    if depth >= _MAX_DEPTH:
        return _fit_str(f"<{kind} of {total} items, nested too deep>", budget)
    active.add(id(container))
    try:
        return _fill(items(), total, is_mapping, budget, depth, active)
    except _NoRoom:
        return _fit_str(f"<{kind} of {total} items>", budget)
    except Exception:  # noqa: BLE001 - e.g. a custom mapping whose iteration raises
        return _fit_str(f"<{kind} of {total} items, unreadable>", budget)
    finally:
        active.discard(id(container))


def _fill(
    iterator: Iterable[Any],
    total: int,
    is_mapping: bool,
    budget: int,
    depth: int,
    active: set[int],
) -> tuple[Any, int]:
    if budget < 2:
        raise _NoRoom
    # Room kept free for the marker (and a comma) while more items follow;
    # sized for the largest count, plus slack for a renamed dict marker key.
    marker = _json_len(_marker_text(total)) + 1
    reserve = marker + (_json_len(_ELLIPSIS) + 3 if is_mapping else 0)
    entries: list[tuple[Any, Any, int]] = []  # (key, value, cost incl. leading comma)
    keys: set[str] = set()
    used = 2
    complete = True
    for index, item in enumerate(iterator):
        comma = 1 if entries else 0
        avail = budget - used - comma - (0 if index >= total - 1 else reserve)
        try:
            if is_mapping:
                raw_key, raw_value = item
                key_text = raw_key if isinstance(raw_key, str) else _short_text(raw_key, budget)
                key, key_len = _fit_str(str.__str__(key_text), avail - 2)
                if key in keys:  # distinct keys collapsed by conversion or cutting
                    complete = False
                    continue
                value, value_len = _fit(raw_value, avail - key_len - 1, depth + 1, active)
                cost = comma + key_len + 1 + value_len
            else:
                key = None
                value, value_len = _fit(item, avail, depth + 1, active)
                cost = comma + value_len
        except _NoRoom:
            complete = False
            break
        entries.append((key, value, cost))
        if key is not None:
            keys.add(key)
        used += cost
    if len(entries) < total:
        complete = False
    if not complete:
        while True:
            omitted = max(total - len(entries), 1)
            comma = 1 if entries else 0
            if is_mapping:
                marker_key = _ELLIPSIS
                while marker_key in keys:
                    marker_key += _ELLIPSIS
                marker_value = f"+{omitted} more"
                marker_cost = comma + _json_len(marker_key) + 1 + _json_len(marker_value)
            else:
                marker_key, marker_value = None, _marker_text(omitted)
                marker_cost = comma + _json_len(marker_value)
            if used + marker_cost <= budget:
                entries.append((marker_key, marker_value, marker_cost))
                used += marker_cost
                break
            if not entries:
                raise _NoRoom
            dropped_key, _, dropped_cost = entries.pop()
            keys.discard(dropped_key)
            used -= dropped_cost
    if is_mapping:
        return {key: value for key, value, _ in entries}, used
    return [value for _, value, _ in entries], used
