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
    for anything but a msgpack array), the length of its item bytes and their digest."""

    kind: str
    item_count: int
    region_len: int
    digest: bytes


@dataclass(frozen=True)
class EncodedBlob:
    kind: str  # WHOLE, DELTA or EMPTY
    type: str
    data: bytes
    base_version: str | None
    meta: BlobMeta


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


def empty_blob() -> EncodedBlob:
    return EncodedBlob(EMPTY, EMPTY, b"", None, BlobMeta(EMPTY, NOT_A_LIST, 0, digest(b"")))


def encode(serde: Any, value: Any, base_version: str | None, base: BlobMeta | None) -> EncodedBlob:
    """``value`` as a blob: a delta on ``base`` if its items start with exactly base's items."""
    type_, data = checked_dumps(serde, value)
    header = array_header(data) if type_ == MSGPACK else None
    if header is None:
        return EncodedBlob(WHOLE, type_, data, None, BlobMeta(WHOLE, NOT_A_LIST, len(data), digest(type_.encode(), data)))
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
            meta = BlobMeta(DELTA, count, region_len, hasher.digest())
            return EncodedBlob(DELTA, type_, bytes(view[start + base.region_len:]), base_version, meta)
    meta = BlobMeta(WHOLE, count, region_len, digest(view[start:]))
    return EncodedBlob(WHOLE, type_, data, None, meta)


@dataclass(frozen=True)
class StoredBlob:
    """One stored row of a channel version (see ``tables.BLOB_COLUMNS``)."""

    version: str
    kind: str
    type: str
    base_version: str | None
    item_count: int
    region_len: int
    digest: bytes
    data: bytes


def rebuild(chain: list[StoredBlob]) -> tuple[str, bytes] | None:
    """The serialized value of ``chain[-1]`` from its chain (oldest whole version first),
    checked against the stored digest; None for an empty version. ``ValueError`` says what
    does not match."""
    target = chain[-1]
    if target.kind == EMPTY:
        return None
    root = chain[0]
    if root.kind != WHOLE:
        raise ValueError(f"version {target.version} refers to version {root.base_version}, which is missing")
    if target.kind == WHOLE and target.item_count == NOT_A_LIST:
        if digest(target.type.encode(), target.data) != target.digest:
            raise ValueError(f"version {target.version} does not match its digest")
        return target.type, target.data
    header = array_header(root.data)
    if header is None:
        raise ValueError(f"version {root.version} should be a msgpack array and is not")
    pieces = [memoryview(root.data)[header[1]:]] + [memoryview(blob.data) for blob in chain[1:]]
    region = b"".join(pieces)
    if len(region) != target.region_len or digest(region) != target.digest:
        raise ValueError(f"version {target.version} (built from {len(chain)} stored parts) does not match its digest")
    return target.type, make_array_header(target.item_count) + region
