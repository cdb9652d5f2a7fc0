"""Manager behaviours at the edges: imports sharing a lineage, time zones in listings, wall-clock
checkpoint timing, checkpoints written by a newer release."""

from __future__ import annotations

import time
from dataclasses import replace

import orjson
import pytest
from history_steps import run_steps

from kaizen.core.autonomy.state import AgentState
from kaizen.core.autonomy.state.errors import StateFormatError, StorageError
from kaizen.core.autonomy.state.storage import MemoryStorage, open_store
from kaizen.core.autonomy.state.storage.rows import plan_save, row_checksum
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def test_import_refuses_a_stale_shared_lineage_instead_of_half_loading(manager, tmp_path):
    run_steps(manager, "main", 2)
    first = manager.list_checkpoints("main")[-1].checkpoint_id
    manager.fork(first, new_agent_id="fork")
    fork_export = manager.export_agent("fork")
    run_steps(manager, "main", 1, start=2)
    main_export = manager.export_agent("main")
    target = SyncStateManager(open_store(f"sqlite:///{tmp_path}/t.db"))
    target.import_agent(fork_export)
    with pytest.raises(StorageError, match="already exists .* shorter"):
        target.import_agent(main_export)
    assert target.list_agents() == ["fork"]
    ordered = SyncStateManager(open_store(f"sqlite:///{tmp_path}/ordered.db"))
    ordered.import_agent(main_export)  # source first, then the fork: both load whole
    ordered.import_agent(fork_export)
    assert len(ordered.load_latest("main").approval_history) == 3
    assert len(ordered.load_latest("fork").approval_history) == 1


def test_timestamps_in_other_time_zones_list_in_time_order():
    manager = SyncStateManager(MemoryStorage())
    plan = plan_save(AgentState(agent_id="tz", timestamp="2024-01-01T12:00:00+05:00"), None, "lin_tz")
    manager.storage.write(plan)
    listed = manager.list_checkpoints("tz", before="2024-01-01T07:30:00+00:00")
    assert [m.timestamp.isoformat(timespec="microseconds") for m in listed] == ["2024-01-01T07:00:00.000000+00:00"]


def test_listing_every_agent_is_newest_first(manager):
    run_steps(manager, "zeta", 1)
    time.sleep(0.002)
    run_steps(manager, "alpha", 1)
    assert manager.list_checkpoints(limit=1)[0].agent_id == "alpha"


def test_should_checkpoint_uses_wall_clock_time(manager):
    manager.checkpoint_interval = 60.0
    run_steps(manager, "clock", 1)
    assert manager.should_checkpoint("clock", 1, time.time()) is False
    assert manager.should_checkpoint("clock", 1, time.time() + 61) is True


def test_a_checkpoint_from_a_newer_release_is_named_not_called_damaged():
    storage = MemoryStorage()
    plan = plan_save(AgentState(agent_id="future"), None, "lin_f")
    body = orjson.loads(plan.row.body)
    body["schema_version"] = 99
    raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    row = plan.row
    checksum = row_checksum(row.checkpoint_id, row.agent_id, row.lineage_id, row.parent_checkpoint_id,
                            row.step_number, row.timestamp, row.status, row.heads, raw)
    storage.write(replace(plan, row=replace(row, body=raw, checksum=checksum)))
    with pytest.raises(StateFormatError, match="newer kaizen-state"):
        SyncStateManager(storage).load_checkpoint(row.checkpoint_id)
