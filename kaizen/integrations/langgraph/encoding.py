"""Channel values as stored: whole, or as the items appended to an earlier version.

Values go through LangGraph's serializer protocol (``dumps_typed``/``loads_typed``).
A msgpack array is its header followed by its items' encodings, and msgpack is
self-delimiting, so if the new value's bytes after the header begin with exactly
the previous version's item bytes (same length, same BLAKE2b digest), the new
value is the previous one plus the rest: we store only that rest and a reference
to the previous version. This is decided by content alone, never by a channel's
name, and reading rebuilds exactly the bytes the serializer produced.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from .errors import UnsafeSerializerError

WHOLE, DELTA, EMPTY = "whole", "delta", "empty"
MSGPACK = "msgpack"
_FORBIDDEN_TYPES = ("pickle",)
NOT_A_LIST = -1


def digest(*parts: bytes | memoryview) -> bytes:
    hasher = hashlib.blake2b(digest_size=32)
    for part in parts:
        hasher.update(part)
    return hasher.digest()


def array_header(data: bytes) -> tuple[int, int] | None:
    """(item count, header length) if ``data`` is a msgpack array, else None."""
    if not data:
        return None
    first = data[0]
    if 0x90 <= first <= 0x9F:
        return first & 0x0F, 1
    if first == 0xDC and len(data) >= 3:
        return struct.unpack_from(">H", data, 1)[0], 3
    if first == 0xDD and len(data) >= 5:
        return struct.unpack_from(">I", data, 1)[0], 5
    return None


def make_array_header(count: int) -> bytes:
    if count < 16:
        return bytes((0x90 | count,))
    if count < 1 << 16:
        return b"\xdc" + struct.pack(">H", count)
    return b"\xdd" + struct.pack(">I", count)


@dataclass(frozen=True)
class BlobMeta:
    """What a later version needs to know to extend this one: its item count (``NOT_A_LIST``
    for anything but a msgpack array), the length of its item bytes and their digest; and
    where its chain starts: the whole version it extends (``root_version``) and how many
    deltas lie between (``depth``), so a chain is read with one range scan."""

    kind: str
    item_count: int
    region_len: int
    digest: bytes
    root_version: str
    depth: int


@dataclass(frozen=True)
class EncodedBlob:
    kind: str  # WHOLE, DELTA or EMPTY
    type: str
    data: bytes
    base_version: str | None
    meta: BlobMeta


def safe_serde(serde: Any) -> Any:
    """``serde``, or LangGraph's default serializer, after making sure it never falls back to pickle."""
    if serde is None:
        return JsonPlusSerializer(pickle_fallback=False)
    if getattr(serde, "pickle_fallback", False):
        raise UnsafeSerializerError(
            "the serializer has pickle_fallback=True; this saver never stores or loads pickle: "
            "pass JsonPlusSerializer() (pickle_fallback=False, the default)"
        )
    inner = getattr(serde, "serde", None)  # EncryptedSerializer wraps another serializer
    if inner is not None and getattr(inner, "pickle_fallback", False):
        safe_serde(inner)
    return serde


def checked_dumps(serde: Any, value: Any) -> tuple[str, bytes]:
    type_, data = serde.dumps_typed(value)
    refuse_pickle(type_)
    return type_, bytes(data)


def checked_loads(serde: Any, type_: str, data: bytes) -> Any:
    refuse_pickle(type_)
    return serde.loads_typed((type_, data))


def refuse_pickle(type_: str) -> None:
    if any(forbidden in type_ for forbidden in _FORBIDDEN_TYPES):
        raise UnsafeSerializerError(
            f"the serializer produced or was asked to read {type_!r} data; this saver never stores or loads "
            "pickle: use JsonPlusSerializer(pickle_fallback=False) (the default) and make the value msgpack-able"
        )


def empty_blob(version: str) -> EncodedBlob:
    return EncodedBlob(EMPTY, EMPTY, b"", None, BlobMeta(EMPTY, NOT_A_LIST, 0, digest(b""), version, 0))


def encode(serde: Any, value: Any, version: str, base_version: str | None, base: BlobMeta | None) -> EncodedBlob:
    """``value`` as a blob: a delta on ``base`` if its items start with exactly base's items."""
    type_, data = checked_dumps(serde, value)
    header = array_header(data) if type_ == MSGPACK else None
    if header is None:
        meta = BlobMeta(WHOLE, NOT_A_LIST, len(data), digest(type_.encode(), data), version, 0)
        return EncodedBlob(WHOLE, type_, data, None, meta)
    count, start = header
    view = memoryview(data)
    region_len = len(data) - start
    if (
        base is not None and base_version is not None and base.item_count >= 0 and count >= base.item_count
        and region_len >= base.region_len
    ):
        hasher = hashlib.blake2b(view[start:start + base.region_len], digest_size=32)
        if hasher.digest() == base.digest:
            hasher.update(view[start + base.region_len:])
            meta = BlobMeta(DELTA, count, region_len, hasher.digest(), base.root_version, base.depth + 1)
            return EncodedBlob(DELTA, type_, bytes(view[start + base.region_len:]), base_version, meta)
    meta = BlobMeta(WHOLE, count, region_len, digest(view[start:]), version, 0)
    return EncodedBlob(WHOLE, type_, data, None, meta)


@dataclass(frozen=True)
class StoredBlob:
    """One stored row of a channel version (see ``sql_tables.BLOB_COLUMNS``)."""

    version: str
    kind: str
    type: str
    base_version: str | None
    item_count: int
    region_len: int
    digest: bytes
    root_version: str
    depth: int
    data: bytes

    @classmethod
    def of(cls, version: str, blob: EncodedBlob) -> StoredBlob:
        m = blob.meta
        return cls(version, blob.kind, blob.type, blob.base_version, m.item_count, m.region_len, m.digest,
                   m.root_version, m.depth, blob.data)

    @property
    def meta(self) -> BlobMeta:
        return BlobMeta(self.kind, self.item_count, self.region_len, self.digest, self.root_version, self.depth)


@dataclass(frozen=True)
class Chain:
    """What rebuilding ``target`` needs: the whole version its chain starts from (``root_*``) and
    the appended bytes of every later version up to and including target (oldest first)."""

    target: StoredBlob
    root_kind: str
    root_version: str
    root_data: bytes
    deltas: list[bytes]

    @classmethod
    def walk(cls, target: StoredBlob, by_version: dict[str, StoredBlob]) -> Chain:
        """Follow ``base_version`` from target through ``by_version`` (other forks may be in it)."""
        deltas: list[bytes] = []
        current = target
        while current.kind == DELTA:
            deltas.append(current.data)
            base = by_version.get(current.base_version or "")
            if base is None:
                return cls(target, "missing", current.base_version or "", b"", [])
            current = base
        deltas.reverse()
        return cls(target, current.kind, current.version, current.data, deltas)


def rebuild(chain: Chain) -> tuple[str, bytes] | None:
    """The serialized value of ``chain.target``, checked against its stored digest; None for an
    empty version. ``ValueError`` says what does not match."""
    target = chain.target
    if target.kind == EMPTY:
        return None
    if chain.root_kind != WHOLE:
        raise ValueError(f"version {target.version} extends version {chain.root_version}, which is missing")
    if target.kind == WHOLE and target.item_count == NOT_A_LIST:
        if digest(target.type.encode(), target.data) != target.digest:
            raise ValueError(f"version {target.version} does not match its digest")
        return target.type, target.data
    header = array_header(chain.root_data)
    if header is None:
        raise ValueError(f"version {chain.root_version} should be a msgpack array and is not")
    region = b"".join([memoryview(chain.root_data)[header[1]:], *chain.deltas])
    if len(region) != target.region_len or digest(region) != target.digest:
        raise ValueError(f"version {target.version} (built from {len(chain.deltas) + 1} stored parts) "
                         "does not match its digest")
    return target.type, make_array_header(target.item_count) + region
