"""Helpers shared by the wire-format modules: strict field access, call ids, URLs.

Parsing a provider's answer should fail with the path of the field that was
wrong (``choices[0].message``), not with a bare KeyError deep in our code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from .errors import ProviderResponseError

_MISSING: Any = object()
_KIND_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number"}


@dataclass(frozen=True)
class ResponseReader:
    """Reads fields from a decoded response, raising ProviderResponseError naming the field."""

    provider: str
    url: str

    def error(self, path: str, problem: str) -> ProviderResponseError:
        return ProviderResponseError(
            self.provider,
            self.url,
            f"response field {path!r} {problem}; the server does not answer in the {self.provider} "
            "API format (check base_url and the server version)",
        )

    def get(self, data: Mapping[str, Any], key: str, kind: type, path: str, default: Any = _MISSING) -> Any:
        """``data[key]`` checked to be a ``kind``; ``None``/absent gives ``default`` if one is set."""
        value = data.get(key)
        if value is None:
            if default is not _MISSING:
                return default
            raise self.error(path, "is missing")
        if isinstance(value, bool) and kind is not bool:
            ok = False  # JSON true is not a token count
        elif kind is float:
            ok = isinstance(value, (int, float))
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise self.error(path, f"should be {_KIND_NAMES.get(kind, kind.__name__)}, got {type(value).__name__}")
        return value


def stable_call_id(*parts: Any) -> str:
    """A deterministic ``call_<hex>`` id for servers that send none (Ollama).

    Derived from the conversation and the call itself, so replaying the same
    exchange (e.g. after restoring a checkpoint) gives the same id, while the
    same call in a later turn gets a different one.
    """
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"call_{digest[:24]}"


def conversation_seed(wire_messages: Any) -> str:
    """A digest of the request's messages, to key :func:`stable_call_id` to this turn."""
    return hashlib.sha256(orjson.dumps(wire_messages, option=orjson.OPT_SORT_KEYS)).hexdigest()


def normalize_base_url(value: str, setting: str) -> str:
    """Strip and drop trailing slashes; refuse values without http(s) scheme."""
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"{setting} {value!r} is not an http(s) URL; use e.g. 'https://host' or 'http://localhost:8000'"
        )
    return url


def parse_arguments(raw: Any, name: str, where: str, reader: ResponseReader) -> dict[str, Any]:
    """A function call's arguments as OpenAI-style servers send them: a JSON string (or, from a few
    compatible servers, the object itself); empty or missing means no arguments."""
    if isinstance(raw, dict):  # a few compatible servers send the object itself
        return raw
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if not isinstance(raw, str):
        raise reader.error(where, f"of tool {name!r} should be a JSON string, got {type(raw).__name__}")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        shown = raw if len(raw) <= 80 else raw[:80] + "..."
        raise reader.error(where, f"of tool {name!r} is not valid JSON: {shown!r}") from None
    if not isinstance(value, dict):
        raise reader.error(where, f"of tool {name!r} should decode to a JSON object, got {type(value).__name__}")
    return value
