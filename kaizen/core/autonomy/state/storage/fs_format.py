"""The filesystem store's on-disk format: durable file writes, JSON documents, record framing.

Kept apart from ``filesystem.py`` (which decides *when* to write what, under which lock) so the
bytes a store directory holds are described in one place; the layout itself is in the docstring
of ``filesystem.py``.
"""

from __future__ import annotations

import base64
import gzip
import os
import secrets
import struct
import zlib
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from ..errors import StorageError
from .base import CheckpointRow, LineageRow, RecordRow, heads_from_json, heads_to_json, stream_number

FORMAT_VERSION = 1
INDEX_EVERY = 1024  # records of a stream between two [seq, offset] marks
RECORD_HEADER = struct.Struct("<BQI32s")  # [stream u8][seq u64][len u32][hash 32B], then the data
COMPRESSED = 0x80  # set in a record header's stream byte: its data is zlib-compressed
_GZIP = b"\x1f\x8b"
_ROW_PLAIN = [f.name for f in fields(CheckpointRow) if f.name not in ("heads", "body")]
_LINEAGE_FIELDS = [f.name for f in fields(LineageRow)]
Doc = dict[str, Any]


# --- durable writes ----------------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def write_file(path: Path, data: bytes) -> None:
    """Temp file beside ``path``, fsync, rename over, fsync the directory: readers see old or new."""
    tmp = path.with_name(f".tmp-{secrets.token_hex(6)}-{path.name}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            write_synced(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


# --- JSON documents ----------------------------------------------------------------------------
def read_json(path: Path) -> Any:
    """The document at ``path`` (plain or gzip JSON), None if there is none; ``StorageError`` if damaged."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        if raw.startswith(_GZIP):
            raw = gzip.decompress(raw)
        doc = orjson.loads(raw)
    except (orjson.JSONDecodeError, OSError, EOFError, zlib.error) as exc:
        raise StorageError(f"{path} is damaged ({'empty file' if not raw else exc})") from None
    if not isinstance(doc, dict):
        raise StorageError(f"{path} is damaged (not a JSON object)")
    return doc


def encode_doc(doc: Doc, compress: bool) -> bytes:
    data = orjson.dumps(doc)
    return gzip.compress(data, mtime=0) if compress else data


def row_doc(row: CheckpointRow, order: int) -> Doc:
    doc = {name: getattr(row, name) for name in _ROW_PLAIN}
    try:  # canonical JSON stays readable; anything else (a sealed body) is base64
        doc["body"] = row.body.decode()
    except UnicodeDecodeError:
        doc["body64"] = base64.b64encode(row.body).decode()
    doc.update(order=order, heads=heads_to_json(row.heads))
    return doc


def row_from_doc(doc: Doc) -> CheckpointRow:
    try:
        heads = heads_from_json(doc["heads"])
        body = doc["body"].encode() if "body" in doc else base64.b64decode(doc["body64"])
        return CheckpointRow(**{n: doc[n] for n in _ROW_PLAIN}, heads=heads, body=body)
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"checkpoint document {doc.get('checkpoint_id')!r} is damaged: {exc!r}") from None


def new_lineage_doc(lineage: LineageRow, ordinal: int, head_order: int) -> Doc:
    doc = {name: getattr(lineage, name) for name in _LINEAGE_FIELDS}
    return dict(doc, ordinal=ordinal, head_order=head_order, length=0, last={}, n={}, marks={})


def lineage_row(doc: Doc) -> LineageRow:
    return LineageRow(**{name: doc[name] for name in _LINEAGE_FIELDS})


# --- the records file --------------------------------------------------------------------------
def pack_records(doc: Doc, records: list[RecordRow], compress: bool) -> tuple[Doc, bytes]:
    """Frame ``records`` for appending at ``doc["length"]``: the lineage doc updated for them
    (last seq, count and [seq, offset] marks per stream; ``length`` is left to the writer) and the bytes."""
    doc = dict(doc, last=dict(doc["last"]), n=dict(doc["n"]), marks={s: list(m) for s, m in doc["marks"].items()})
    start, buf = doc["length"], bytearray()
    for record in records:
        stream, where = record.stream, f"record {record.stream}[{record.seq}] of lineage {doc['lineage_id']!r}"
        if record.seq <= doc["last"].get(stream, -1):
            raise StorageError(f"{where} already exists")
        try:
            digest = bytes.fromhex(record.hash) if len(record.hash) == 64 else b""
            data, flag = record.data, 0
            if compress and len(packed := zlib.compress(data)) < len(data):
                data, flag = packed, COMPRESSED
            header = RECORD_HEADER.pack(stream_number(stream) | flag, record.seq, len(data), digest)
        except (ValueError, struct.error):
            raise StorageError(f"{where} cannot be stored: its hash must be SHA-256 hex") from None
        if len(digest) != 32:
            raise StorageError(f"{where} cannot be stored: its hash must be SHA-256 hex")
        if doc["n"].get(stream, 0) % INDEX_EVERY == 0:
            doc["marks"].setdefault(stream, []).append([record.seq, start + len(buf)])
        doc["n"][stream], doc["last"][stream] = doc["n"].get(stream, 0) + 1, record.seq
        buf += header + data
    return doc, bytes(buf)


def unpack_records(chunk: bytes, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
    """The records of ``stream`` with ``start <= seq < stop`` among the framed records in ``chunk``."""
    number, found, pos = stream_number(stream), [], 0
    while pos + RECORD_HEADER.size <= len(chunk):
        entry_stream, seq, length, digest = RECORD_HEADER.unpack_from(chunk, pos)
        pos += RECORD_HEADER.size
        if entry_stream & ~COMPRESSED == number and start <= seq < stop:
            data = chunk[pos:pos + length]
            if entry_stream & COMPRESSED:
                data = _inflate(data)
            found.append(RecordRow(lineage_id, stream, seq, data, digest.hex()))
        pos += length
    return found


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompress(data)
    except zlib.error:  # handed on as stored: the checkpoint's CRC and hash chain name the damage
        return data
