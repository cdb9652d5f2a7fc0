"""A long load pauses the garbage collector and hands what it made to the oldest generation
(``history_reader.collector_paused``): afterwards the collector is as the program left it, and
objects the program froze itself stay frozen."""

from __future__ import annotations

import gc

import pytest

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.history_reader import _BULK
from kaizen.core.autonomy.state.records import make_approval_record
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


@pytest.fixture
def long_url(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    records = [make_approval_record("Bash", True, "once", {"n": n}, summary_limit=64) for n in range(_BULK + 10)]
    with SyncStateManager(url) as manager:
        manager.save_checkpoint(AgentState(agent_id="long", approval_history=records))
    return url


def cold_load(url: str) -> int:
    with SyncStateManager(url) as manager:
        state = manager.load_latest("long")
    assert state is not None
    return len(state.approval_history)


def test_a_long_load_leaves_the_collector_on_and_nothing_frozen(long_url):
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert cold_load(long_url) == _BULK + 10
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_long_load_keeps_what_the_program_froze_frozen(long_url):
    kept = [[n] for n in range(100)]
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert cold_load(long_url) == _BULK + 10
        assert gc.get_freeze_count() == frozen
        assert gc.isenabled()
    finally:
        gc.unfreeze()
    del kept


def test_a_long_load_leaves_a_disabled_collector_disabled(long_url):
    gc.disable()
    try:
        assert cold_load(long_url) == _BULK + 10
        assert not gc.isenabled()
    finally:
        gc.enable()
