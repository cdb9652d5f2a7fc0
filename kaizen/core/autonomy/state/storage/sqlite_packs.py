"""Record packs: a long history read back in a few rows instead of one row per entry.

Loading an agent reads its whole history; with one SQLite row per entry, stepping through the rows
costs about as much as parsing them (5,000 rows: ~9 million instructions in SQLite alone). Stored
entries never change, so once a stream's entries ``[first, first + PACK)`` are all stored, their data
joined by commas (exactly what a load reads, byte for byte) is also kept as one row of
``record_packs``. A load takes each whole block from its pack and the rest (a block still filling,
a fork's first entries) from the rows.

The rows stay the record of truth: audits and the hash chain read them, and a pack is only ever an
accelerator. A save writes the packs it completes just after it commits (one more statement every
``PACK`` entries; ``INSERT OR IGNORE``, so writing one twice is harmless); if that write never happens
(a crash in between), the block is read from its rows. A load checks what it read against the
checkpoint's count and CRC either way, and reads the rows again if a pack does not match.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator

from .base import STREAM_NUMBERS, SavePlan

log = logging.getLogger("kaizen.state")

PACK = 256  # entries per pack: the reader's chunk (history_reader.CHUNK), so each pack is one parse

CREATE_PACKS = """
CREATE TABLE IF NOT EXISTS record_packs (
    lid INTEGER NOT NULL,
    stream INTEGER NOT NULL,
    first INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (lid, stream, first)
) WITHOUT ROWID
"""
# ``records`` is WITHOUT ROWID with primary key (lid, stream, seq) and no other index, so the
# aggregate sees the block's rows in seq order (tests/storage/test_record_packs.py checks the plan).
_BLOCK = (
    "SELECT {lid} AS lid, {stream} AS stream, {first} AS first, CAST(group_concat(data, ',') AS BLOB) AS data "
    "FROM records "
    "WHERE lid = {lid} AND stream = {stream} AND seq >= {first} AND seq < {first} + " + str(PACK) +
    " HAVING count(*) = " + str(PACK)
)
INSERT_PACK = "INSERT OR IGNORE INTO record_packs (lid, stream, first, data) " + _BLOCK.format(
    lid="(SELECT lid FROM lineages WHERE lineage_id = ?1)", stream="?2", first="?3")
SELECT_PACKS = (
    "SELECT first, data FROM record_packs WHERE lid = ? AND stream = ? AND first >= ? AND first + "
    + str(PACK) + " <= ? ORDER BY first"
)
SELECT_ROWS = (
    "SELECT count(*), CAST(group_concat(data, ',') AS BLOB) FROM records "
    "WHERE lid = ? AND stream = ? AND seq >= ? AND seq < ?"
)
SELECT_FULL_BLOCKS = (  # (lid, stream, first) of every complete block of the lineages' streams
    "SELECT lid, stream, seq - " + str(PACK - 1) + " FROM records WHERE lid IN ({lids}) AND seq % "
    + str(PACK) + " = " + str(PACK - 1)
)
DELETE_AGENT_PACKS = "DELETE FROM record_packs WHERE lid IN (SELECT lid FROM lineages WHERE agent_id = ?)"
HAS_PACKS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'record_packs'"


def completed_blocks(plans: list[SavePlan], outcomes: list[BaseException | None]) -> list[tuple[str, int, int]]:
    """(lineage id, stream number, first seq) of each block the saves that succeeded complete."""
    done = []
    for plan, outcome in zip(plans, outcomes):
        for record in plan.records:
            if record.seq % PACK == PACK - 1 and outcome is None:
                done.append((plan.row.lineage_id, STREAM_NUMBERS[record.stream], record.seq - (PACK - 1)))
    return done


def write_packs(conn: sqlite3.Connection, blocks: list[tuple[str, int, int]]) -> None:
    """Pack the completed ``blocks`` after their saves committed, in one autocommit statement each
    (no transaction held across them). A failure is logged, never raised: the saves are already
    durable, and a block without its pack is read from its rows."""
    for block in blocks:
        try:
            conn.execute(INSERT_PACK, block)
        except sqlite3.Error as exc:
            log.info("record pack %s not written (%s); that block is read from its rows", block, exc)


# A block's pack made again from its rows, unless the stored one already holds exactly that.
_REPACK = (
    "INSERT OR REPLACE INTO record_packs (lid, stream, first, data) SELECT * FROM ("
    + _BLOCK.format(lid="?1", stream="?2", first="?3") + ") AS b WHERE NOT EXISTS (SELECT 1 FROM record_packs p "
    "WHERE p.lid = ?1 AND p.stream = ?2 AND p.first = ?3 AND p.data = b.data)"
)


def fill_packs(conn: sqlite3.Connection, lids: list[int]) -> int:
    """Inside the caller's transaction: give every complete block of the lineages ``lids`` the pack
    its rows make, where it has none (after an import, for a store written before packs, after a
    crash cut a pack's write short) or one that differs (damaged). Returns the packs written."""
    written = 0
    for start in range(0, len(lids), 500):
        some = lids[start:start + 500]
        blocks = conn.execute(SELECT_FULL_BLOCKS.format(lids=",".join("?" * len(some))), some).fetchall()
        for block in blocks:
            written += conn.execute(_REPACK, block).rowcount
    return written


def read_blocks(conn: sqlite3.Connection, lid: int, number: int, start: int, stop: int, chunk: int,
                packed: bool) -> Iterator[tuple[int, bytes | None]]:
    """``[start, stop)`` of stream ``number`` of lineage ``lid`` as (count, data joined by commas):
    whole blocks from their packs (when ``packed``), everything else from the rows, at most ``chunk``
    rows at a time and never across a block's start."""
    packs: dict[int, bytes] = dict(conn.execute(SELECT_PACKS, (lid, number, start, stop)).fetchall()) if packed else {}
    position = start
    while position < stop:
        pack = packs.get(position)
        if pack is not None:
            yield PACK, pack
            position += PACK
            continue
        end = min(stop, position + chunk)
        if packs:
            end = min(end, (position // PACK + 1) * PACK)  # a pack may start at the next block
        yield conn.execute(SELECT_ROWS, (lid, number, position, end)).fetchone()
        position = end
