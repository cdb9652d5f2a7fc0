"""Encryption at rest: any store, with record and checkpoint contents sealed by AES-GCM.

``EncryptedStorage`` wraps a backend. What it seals is bound to where it belongs
(associated data): a checkpoint body to its agent id and checkpoint id, a record
to its agent, lineage, stream and position. A ciphertext copied to another
agent or checkpoint therefore fails to decrypt instead of loading as someone
else's history. Once encryption is on there is no plaintext fallback: a row
stored unencrypted is refused. Ids, step numbers, timestamps and statuses stay
readable, so checkpoints can be listed without the key; loading, exporting and
``verify_audit`` decrypt, so they need it. The hash chain is computed over the
plaintext (it must survive key rotation), so its stored values let someone who
can guess a record's exact contents confirm the guess; they reveal nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import replace
from typing import Any

from ..errors import CheckpointCorruptError, EncryptionKeyError, StorageError
from .base import (
    SEALED_MARKER, STREAMS, CheckpointRow, CheckpointStore, LeaseRow, LineageRow, RecordRow, SavePlan,
    StreamFromRecords, is_sealed,
)
from .state_backend import StateBackendMixin

MAGIC = SEALED_MARKER  # the name this module has always exported
KEY_ENV = "KAIZEN_ENCRYPTION_KEY"
_NONCE = 12


def generate_key() -> str:
    """A new random 256-bit key, base64-encoded (what ``KAIZEN_ENCRYPTION_KEY`` holds)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def parse_key(key: str | bytes) -> bytes:
    if isinstance(key, bytes) and len(key) == 32:
        return key
    try:
        raw = base64.urlsafe_b64decode(key + ("=" * (-len(key) % 4)) if isinstance(key, str) else key)
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != 32:
        raise StorageError("an encryption key must be 32 random bytes, base64-encoded "
                           "(make one with `kaizen keys generate`)")
    return raw


def key_from_env() -> bytes | None:
    value = os.environ.get(KEY_ENV)
    return parse_key(value) if value else None


class Sealer:
    """AES-GCM with a key fingerprint in each ciphertext, so a wrong key is named as such."""

    def __init__(self, key: str | bytes) -> None:
        try:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        except ImportError:  # pragma: no cover - depends on the install
            raise StorageError('encryption needs the cryptography package: pip install "kaizen-state[crypto]"') from None
        raw = parse_key(key)
        self._aead = AESGCM(raw)
        self.fingerprint = hashlib.sha256(b"kaizen-key" + raw).digest()[:4]

    def seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return MAGIC + self.fingerprint + nonce + self._aead.encrypt(nonce, data, aad)

    def open(self, data: bytes, aad: bytes, what: str, checkpoint_id: str) -> bytes:
        if not is_sealed(data):
            raise EncryptionKeyError(f"checkpoint {checkpoint_id!r}: {what} is stored unencrypted while "
                                     "encryption is on (refused: no plaintext fallback); encrypt the history "
                                     "with `kaizen keys rotate`, or open the store without a key")
        head = len(MAGIC)
        if data[head:head + 4] != self.fingerprint:
            raise EncryptionKeyError(f"checkpoint {checkpoint_id!r}: {what} was encrypted with a different key; "
                                     "set KAIZEN_ENCRYPTION_KEY to the key it was written with")
        nonce = data[head + 4:head + 4 + _NONCE]
        try:
            return self._aead.decrypt(nonce, data[head + 4 + _NONCE:], aad)
        except Exception:  # InvalidTag: changed bytes, or moved from another agent/checkpoint
            raise CheckpointCorruptError(checkpoint_id, f"{what} fails to decrypt: it was changed, or moved "
                                         "from another agent or checkpoint") from None


def _body_aad(agent_id: str, checkpoint_id: str) -> bytes:
    return f"kaizen-body\0{agent_id}\0{checkpoint_id}".encode()


def _record_aad(agent_id: str, record: RecordRow) -> bytes:
    return f"kaizen-record\0{agent_id}\0{record.lineage_id}\0{record.stream}\0{record.seq}".encode()


class EncryptedStorage(StreamFromRecords, StateBackendMixin):
    """A store whose checkpoint bodies and history records are encrypted at rest."""

    def __init__(self, inner: CheckpointStore, key: str | bytes) -> None:
        self.inner = inner
        self.url = inner.url
        self.read_only: bool = getattr(inner, "read_only", False)
        self.sealer = Sealer(key)
        self._lineage_agents: dict[str, str] = {}

    # --- sealing -------------------------------------------------------------------------
    def _seal_row(self, row: CheckpointRow) -> CheckpointRow:
        return replace(row, body=self.sealer.seal(row.body, _body_aad(row.agent_id, row.checkpoint_id)))

    def _open_row(self, row: CheckpointRow) -> CheckpointRow:
        body = self.sealer.open(row.body, _body_aad(row.agent_id, row.checkpoint_id), "the body", row.checkpoint_id)
        return replace(row, body=body)

    def _seal_record(self, agent_id: str, record: RecordRow) -> RecordRow:
        return replace(record, data=self.sealer.seal(record.data, _record_aad(agent_id, record)))

    def _lineage_agent(self, lineage_id: str) -> str:
        agent = self._lineage_agents.get(lineage_id)
        if agent is None:
            agent = self._lineage_agents[lineage_id] = self.inner.read_lineage(lineage_id).agent_id
        return agent

    # --- the protocol --------------------------------------------------------------------
    def setup(self) -> None:
        self.inner.setup()

    def close(self) -> None:
        self.inner.close()

    def write(self, plan: SavePlan) -> None:
        agent = plan.row.agent_id
        self.inner.write(replace(plan, row=self._seal_row(plan.row),
                                records=[self._seal_record(agent, r) for r in plan.records]))

    def import_rows(self, lineages: list[LineageRow], records: list[RecordRow], rows: list[CheckpointRow]) -> None:
        owners = {lineage.lineage_id: lineage.agent_id for lineage in lineages}
        sealed = [self._seal_record(owners.get(r.lineage_id) or self._lineage_agent(r.lineage_id), r) for r in records]
        self.inner.import_rows(lineages, sealed, [self._seal_row(row) for row in rows])

    def replace_agent(self, agent_id: str, lineages: list[LineageRow], records: list[RecordRow],
                      rows: list[CheckpointRow]) -> None:
        owners = {lineage.lineage_id: lineage.agent_id for lineage in lineages}
        sealed = [self._seal_record(owners.get(r.lineage_id, agent_id), r) for r in records]
        self.inner.replace_agent(agent_id, lineages, sealed, [self._seal_row(row) for row in rows])

    def read_checkpoint(self, checkpoint_id: str) -> CheckpointRow:
        return self._open_row(self.inner.read_checkpoint(checkpoint_id))

    def latest_checkpoint(self, agent_id: str) -> CheckpointRow | None:
        row = self.inner.latest_checkpoint(agent_id)
        return None if row is None else self._open_row(row)

    def list_rows(self, agent_id: str, limit: int | None = None, before: str | None = None) -> list[CheckpointRow]:
        return [self._open_row(row) for row in self.inner.list_rows(agent_id, limit, before)]

    def read_records(self, lineage_id: str, stream: str, start: int, stop: int) -> list[RecordRow]:
        agent = self._lineage_agent(lineage_id)
        out = []
        for record in self.inner.read_records(lineage_id, stream, start, stop):
            what = f"{stream} record {record.seq} of lineage {lineage_id}"
            out.append(replace(record, data=self.sealer.open(record.data, _record_aad(agent, record), what, lineage_id)))
        return out

    def list_damaged(self, agent_id: str) -> list[str]:
        """The inner store's damaged entries, if it can have any (the filesystem store)."""
        damaged: list[str] = getattr(self.inner, "list_damaged", lambda _agent: [])(agent_id)
        return damaged

    def read_lineage(self, lineage_id: str) -> LineageRow:
        return self.inner.read_lineage(lineage_id)

    def list_lineages(self, agent_id: str) -> list[LineageRow]:
        return self.inner.list_lineages(agent_id)

    def list_agents(self) -> list[str]:
        return self.inner.list_agents()

    def delete_checkpoints(self, agent_id: str, checkpoint_ids: list[str]) -> int:
        return self.inner.delete_checkpoints(agent_id, checkpoint_ids)

    def delete_agent(self, agent_id: str) -> int:
        return self.inner.delete_agent(agent_id)

    def acquire_lease(self, agent_id: str, worker_id: str, ttl: float) -> LeaseRow:
        return self.inner.acquire_lease(agent_id, worker_id, ttl)

    def release_lease(self, agent_id: str, worker_id: str) -> bool:
        return self.inner.release_lease(agent_id, worker_id)


def rotate_key(inner: CheckpointStore, agent_id: str, old_key: str | bytes, new_key: str | bytes) -> int:
    """Re-encrypt ``agent_id``'s whole history from ``old_key`` to ``new_key`` in one transaction.

    Everything is decrypted (and so verified) with the old key before anything is
    written. ``old_key`` may be None for a history stored unencrypted. Returns the
    number of records re-encrypted.
    """
    source: Any = EncryptedStorage(inner, old_key) if old_key is not None else inner
    target = EncryptedStorage(inner, new_key)
    lineages = source.list_lineages(agent_id)
    own = {lineage.lineage_id for lineage in lineages}
    forks = sorted({lin.agent_id for other in inner.list_agents() if other != agent_id
                    for lin in inner.list_lineages(other) if lin.base_lineage_id in own})
    if forks:
        raise StorageError(f"agent {agent_id!r} shares its history with agent(s) {', '.join(forks)} (forks): "
                           "re-encrypting it alone would make theirs unreadable; rotate by export and import, "
                           "or delete the forks first")
    records: list[RecordRow] = []
    for lineage in lineages:
        for stream in STREAMS:
            start = lineage.base_counts.get(stream, 0)
            records += source.read_records(lineage.lineage_id, stream, start, 2**62)
    rows = [source.read_checkpoint(row.checkpoint_id) for row in reversed(inner.list_rows(agent_id))]
    target.replace_agent(agent_id, lineages, records, rows)
    return len(records)
