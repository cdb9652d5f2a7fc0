"""Damage a filesystem store's files behind its back, keeping them well-formed (``tamper.py`` uses these)."""

from __future__ import annotations

from pathlib import Path

import orjson

from kaizen.core.autonomy.state.storage import filesystem as fs_module
from kaizen.core.autonomy.state.storage.filesystem import FilesystemStorage


def tamper_checkpoint_file(store: FilesystemStorage, checkpoint_id: str) -> None:
    """Add one to a stored checkpoint's step_number, keeping its document well-formed."""
    path = _checkpoint_file(store, checkpoint_id)
    doc = orjson.loads(path.read_bytes())
    path.write_bytes(orjson.dumps(dict(doc, step_number=doc["step_number"] + 1)))


def _checkpoint_file(store: FilesystemStorage, checkpoint_id: str) -> Path:
    agent_id, order = (store.base_dir / "_index" / "c" / checkpoint_id).read_text().split()
    return store.base_dir / agent_id / "checkpoints" / f"{int(order):012d}.json"


def copy_body_file(store: FilesystemStorage, from_id: str, to_id: str) -> None:
    """Put one checkpoint's stored body on another checkpoint's document."""
    source, target = _checkpoint_file(store, from_id), _checkpoint_file(store, to_id)
    body = {k: v for k, v in orjson.loads(source.read_bytes()).items() if k in ("body", "body64")}
    doc = {k: v for k, v in orjson.loads(target.read_bytes()).items() if k not in ("body", "body64")}
    target.write_bytes(orjson.dumps(dict(doc, **body)))


def tamper_record_file(store: FilesystemStorage, lineage_id: str, old: bytes, forged: bytes) -> None:
    """Replace the first record whose data is ``old`` by ``forged``, rewriting the entry's length and
    the lineage document's offsets so the file stays well-formed: only the hash chain can tell."""
    agent_dir = store.base_dir / (store.base_dir / "_index" / "l" / lineage_id).read_text()
    records, lineage = agent_dir / "records" / f"{lineage_id}.rec", agent_dir / "lineages" / f"{lineage_id}.json"
    data, doc, header = records.read_bytes(), orjson.loads(lineage.read_bytes()), fs_module._HEADER
    pos = 0
    while data[pos + header.size:pos + header.size + len(old)] != old or header.unpack_from(data, pos)[2] != len(old):
        pos += header.size + header.unpack_from(data, pos)[2]
    stream, seq, _, digest = header.unpack_from(data, pos)
    delta = len(forged) - len(old)
    records.write_bytes(data[:pos] + header.pack(stream, seq, len(forged), digest) + forged
                        + data[pos + header.size + len(old):])
    marks = {s: [[q, o + delta if o > pos else o] for q, o in m] for s, m in doc["marks"].items()}
    lineage.write_bytes(orjson.dumps(dict(doc, length=doc["length"] + delta, marks=marks)))
