"""Audit-safe summaries of tool inputs.

An approval record keeps a short text of what the tool was asked to do. Tool
inputs routinely carry passwords, bearer tokens and API keys, so secrets are
replaced *before* the text is cut to length: a cut can never leave half a key
behind. The renderer stops walking once it has enough text, so a huge or
deeply nested input costs no more than a small one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from kaizen.core.values import map_strings

REDACTED = "[REDACTED]"
DEFAULT_SUMMARY_LIMIT = 300
_SCAN_MARGIN = 65_536  # a string is cut to what the summary can show plus this, then redacted
_MAX_DEPTH = 12

_SECRET_WORDS = (
    "password|passwd|passphrase|pwd|secret|token|api[_-]?key|apikey|access[_-]?key|accountkey|"
    "private[_-]?key|credential|authorization|cookie|session[_-]?id|signature|[a-z0-9]_pass\\b"
)
_SECRET_KEY = re.compile(rf"(?i)({_SECRET_WORDS})")
# Numbers under these names are counts or limits, not secrets ("max_tokens": 512).
_COUNT_KEY = re.compile(r"(?i)(max|min|num|count|total|limit|len|size)[_-]?|tokens$")
_EXACT_SECRET_KEYS = frozenset({"auth", "pass", "pw", "key", "sig", "dsn"})

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys, whole block.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
     "[REDACTED PRIVATE KEY]"),
    # Credentials inside URLs and DSNs: scheme://user:password@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/:@]*:)[^\s/@]+@"), rf"\1{REDACTED}@"),
    # HTTP authorization schemes (the credential, not a second scheme word: "Digest Bearer <secret>").
    (re.compile(r"(?i)\b(bearer|basic|token|digest)(\s+)(?!(?:bearer|basic|token|digest)\b)[A-Za-z0-9\-._~+/]{6,}=*"),
     rf"\1\2{REDACTED}"),
    # curl -u user:password / --user user:password
    (re.compile(r"(\s-u\s*|--user[=\s]+)([^\s:]+):(\S+)"), rf"\1\2:{REDACTED}"),
    # passwords glued to a flag: mysql -pSECRET, sshpass -p SECRET
    (re.compile(r"(\b(?:mysql|mysqldump|mariadb|sshpass)\b[^\n;|&]*?\s-p\s?)(?!-)(\S+)"), rf"\1{REDACTED}"),
    # key=value, key: value, "key": "value" where the key names a secret.
    (re.compile(
        rf"(?i)((?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_.\-]*[\"']?\s*[:=]\s*)"
        r"(\"[^\"]*\"|'[^']*'|[^\s,;&'\"}\]]+)"), rf"\1{REDACTED}"),
    # --password value / --api-key value
    (re.compile(rf"(?i)((?<![A-Za-z0-9_\-])--?[A-Za-z0-9_\-]*(?:{_SECRET_WORDS})[A-Za-z0-9_\-]*\s+)([^\s-]\S*)"), rf"\1{REDACTED}"),
    # Well-known token shapes.
    (re.compile(
        r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}"
        r"|xox[abprs]-[A-Za-z0-9\-]{10,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[0-9A-Za-z_\-]{35}"
        r"|glpat-[A-Za-z0-9_\-]{20,}|npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,}"
        r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
        r"|eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,})"), REDACTED),
)


# Every pattern above needs one of these; most inputs have none and skip the patterns.
_TRIGGER = re.compile(
    rf"(?i)://|bearer|basic|token|digest|-u|--user|-p|{_SECRET_WORDS}|{'|'.join(_EXACT_SECRET_KEYS)}"
    r"|sk-|sk_|rk_|pk_|gh[pousr]_|github_pat_|xox|akia|asia|aiza|glpat-|npm_|hf_|eyj|private key|pass"
)


def _ascii_trigger() -> re.Pattern[str]:
    """``_TRIGGER`` for ASCII text already lowered: the same words, case-sensitive and grouped by
    first letter. An ignore-case alternation tries every word at every position (about 0.4 us a
    character); this one skips a word whose first letter does not match, and one whose group's
    does not. For ASCII text, ignoring case is exactly lowering it first. Every word starts with a
    literal character, except ``[a-z0-9]_pass\\b``, which is dropped: any match of it holds "pass",
    a word of its own."""
    words = [word for word in _TRIGGER.pattern[len("(?i)"):].split("|") if word != r"[a-z0-9]_pass\b"]
    groups: dict[str, list[str]] = {}
    for word in words:
        assert word == word.lower() and word[0] not in "[(\\.?*+", word  # a literal first character
        groups.setdefault(word[0], []).append(word[1:])
    return re.compile("|".join(
        re.escape(first) + "(?:" + "|".join(dict.fromkeys(rests)) + ")" for first, rests in groups.items()))


_ASCII_TRIGGER = _ascii_trigger()


def has_trigger(text: str) -> bool:
    """Whether ``text`` holds a word some pattern needs (``_TRIGGER``; ASCII text, the usual, by
    ``_ASCII_TRIGGER`` on its lowered form, which finds exactly the same)."""
    if text.isascii():
        return _ASCII_TRIGGER.search(text.lower()) is not None
    return _TRIGGER.search(text) is not None


def redact_text(text: str, max_chars: int | None = None) -> str:
    """Replace every secret-looking part of ``text`` with ``[REDACTED]``.

    With ``max_chars`` only the first ``max_chars`` characters (plus a wide margin,
    so that no secret is cut before it is recognised) are examined and returned.
    """
    if max_chars is not None and len(text) > max_chars + _SCAN_MARGIN:
        text = text[: max_chars + _SCAN_MARGIN]
    if not has_trigger(text):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_NOT_SECRET_KEY = re.compile(r"(?i)(tokens|usage|count|_limit)$")  # token_usage, max_tokens, token_count


@functools.lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """True when a mapping key names a secret (``password``, ``api_key``, ``X-Auth-Token`` ...).

    Cached: the same few keys ("command", "path") come back with every tool call."""
    if _NOT_SECRET_KEY.search(key):
        return False
    return key.lower() in _EXACT_SECRET_KEYS or _SECRET_KEY.search(key) is not None


class _Budget:
    """Collects rendered pieces until the summary is long enough."""

    def __init__(self, limit: int) -> None:
        self.parts: list[str] = []
        self.left = limit + 1  # one more than the limit tells us to add an ellipsis

    def add(self, text: str) -> bool:
        if self.left <= 0:
            return False
        piece = text[: self.left]
        self.parts.append(piece)
        self.left -= len(piece)
        return self.left > 0


def _safe_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break the audit trail
        text = f"<{type(value).__qualname__} (repr failed: {type(exc).__name__})>"
    if not isinstance(text, str):
        text = f"<{type(value).__qualname__}>"
    return text


def _render(value: Any, out: _Budget, depth: int) -> bool:
    if depth > _MAX_DEPTH:
        return out.add("...")
    if value is None or isinstance(value, (bool, int, float)):
        return out.add(repr(value))
    if isinstance(value, str):
        return out.add(repr(redact_text(value, out.left)))
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value[: out.left + _SCAN_MARGIN])
        return out.add("b" + repr(redact_text(raw.decode("utf-8", "replace"), out.left)))
    if isinstance(value, Mapping):
        return _render_mapping(value, out, depth)
    if isinstance(value, (list, tuple, set, frozenset)):
        return _render_sequence(value, out, depth)
    return out.add(redact_text(_safe_repr(value), out.left))


def _render_mapping(value: Mapping[Any, Any], out: _Budget, depth: int) -> bool:
    if not out.add("{"):
        return False
    try:
        items = iter(value.items())
    except Exception:
        return out.add(redact_text(_safe_repr(value), out.left))
    for index, (key, item) in enumerate(items):
        if index and not out.add(", "):
            return False
        if isinstance(key, str):
            key_text = _key_text(key) if len(key) <= _CACHED_KEY else repr(redact_text(key, out.left))
        else:
            key_text = redact_text(_safe_repr(key), out.left)
        if not out.add(key_text + ": "):
            return False
        if not (out.add(repr(REDACTED)) if _secret_item(key, item) else _render(item, out, depth + 1)):
            return False
    return out.add("}")


_CACHED_KEY = 256  # longer keys are not remembered (nor cut, see redact_text's max_chars)


@functools.lru_cache(maxsize=4096)
def _key_text(key: str) -> str:
    """A mapping key as the summary shows it (keys repeat from call to call: computed once)."""
    return repr(redact_text(key))


def _render_sequence(value: Any, out: _Budget, depth: int) -> bool:
    if isinstance(value, list):
        opener, closer = "[", "]"
    elif isinstance(value, tuple):
        opener, closer = "(", ")"
    else:
        opener, closer = "{", "}"
    if not out.add(opener):
        return False
    for index, item in enumerate(value):
        if index and not out.add(", "):
            return False
        if not _render(item, out, depth + 1):
            return False
    return out.add(closer)


def _secret_item(key: Any, item: Any) -> bool:
    if not isinstance(key, str) or not is_secret_key(key) or isinstance(item, (bool, type(None))):
        return False
    return not (isinstance(item, (int, float)) and _COUNT_KEY.search(key))


def redact_value(value: Any) -> Any:
    """A copy of a JSON value with secrets replaced, for showing a stored state (stays valid JSON)."""
    return map_strings(value, redact_text, lambda key, item: REDACTED if _secret_item(key, item) else None)


def summarize_input(tool_input: Any, limit: int = DEFAULT_SUMMARY_LIMIT) -> str:
    """A bounded, secret-free text of a tool input, in the familiar ``{'key': 'value'}`` form.

    ``None`` gives ``""``. The result is at most ``limit`` characters; a cut one ends in "...".
    """
    if tool_input is None:
        return ""
    if type(tool_input) is dict and len(tool_input) <= _FLAT_ITEMS:
        flat = _flat_summary(tool_input, limit)
        if flat is not None:
            return flat
    return render_summary(tool_input, limit)


_FLAT_ITEMS = 16


def _flat_summary(tool_input: dict[Any, Any], limit: int) -> str | None:
    """The usual input, a few short str values under str keys, rendered without the budget
    (the same text ``render_summary`` gives); None when it is anything else or would be cut."""
    parts = []
    for key, item in tool_input.items():
        if type(key) is not str or type(item) is not str or len(key) > _CACHED_KEY or len(item) > limit:
            return None
        parts.append(_key_text(key) + ": " + (_REDACTED_TEXT if _secret_item(key, item) else repr(redact_text(item))))
    text = "{" + ", ".join(parts) + "}"
    return text if len(text) <= limit else None


_REDACTED_TEXT = repr(REDACTED)


def render_summary(tool_input: Any, limit: int) -> str:
    """``summarize_input`` for any input: renders until the summary is long enough."""
    out = _Budget(limit)
    _render(tool_input, out, 0)
    text = "".join(out.parts)
    if len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text
