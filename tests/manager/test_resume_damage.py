"""Continuing an agent refuses to go on behind a damaged checkpoint; reading falls back and says so."""

from __future__ import annotations

import warnings

import pytest
from histories import damage_checkpoint, damage_last_record, saved_history

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.errors import CheckpointCorruptError, DamagedCheckpointError
from kaizen.core.autonomy.state.sync_manager import SyncStateManager


def test_intact_agent_resumes_from_its_newest_checkpoint_and_has_no_damage(manager):
    ids = saved_history(manager, "worker", 3)
    assert manager.find_damage("worker") == []
    assert manager.resume_from_latest("worker").checkpoint_id == ids[-1]


def test_resume_refuses_a_damaged_newest_checkpoint_and_says_how_to_continue(manager):
    ids = saved_history(manager, "worker", 4)
    damage_checkpoint(manager, ids[-1])
    fresh = SyncStateManager(manager.storage)
    with pytest.raises(DamagedCheckpointError) as refused:
        fresh.resume_from_latest("worker")
    error = refused.value
    assert isinstance(error, CheckpointCorruptError)
    assert error.damaged_checkpoint_ids == [ids[-1]] and error.intact_checkpoint_id == ids[-2]
    message = str(error)
    for expected in (ids[-1], ids[-2], f"kaizen resume worker --from {ids[-2]}", "load_for_resume", "fork"):
        assert expected in message
    assert fresh.storage.latest_checkpoint("worker").checkpoint_id == ids[-1]  # nothing was written


def test_reading_falls_back_with_a_warning_naming_the_damage(manager):
    ids = saved_history(manager, "worker", 3)
    damage_checkpoint(manager, ids[-1])
    fresh = SyncStateManager(manager.storage)
    with pytest.warns(RuntimeWarning, match=ids[-1]):
        assert fresh.load_latest("worker").checkpoint_id == ids[-2]
    assert [exc.checkpoint_id for exc in fresh.find_damage("worker")] == [ids[-1]]


def test_continuing_deliberately_from_the_intact_checkpoint_forks_and_keeps_the_damaged_one(manager):
    ids = saved_history(manager, "worker", 3)
    damage_checkpoint(manager, ids[-1])
    resumed = manager.load_for_resume(ids[-2])
    assert resumed.checkpoint_id not in ids and len(resumed.approval_history) == 2
    assert ids[-1] in [exc.checkpoint_id for exc in manager.find_damage("worker")]


def test_a_changed_record_damages_every_checkpoint_covering_it(manager):
    ids = saved_history(manager, "worker", 3)
    damage_last_record(manager, "worker")  # only the newest checkpoint covers the last record
    fresh = SyncStateManager(manager.storage)
    assert [exc.checkpoint_id for exc in fresh.find_damage("worker")] == [ids[-1]]
    with pytest.raises(DamagedCheckpointError, match=ids[-2]):
        fresh.resume_from_latest("worker")


def test_nothing_intact_left_is_refused_for_reading_and_continuing(manager):
    ids = saved_history(manager, "worker", 2)
    for checkpoint_id in ids:
        damage_checkpoint(manager, checkpoint_id)
    fresh = SyncStateManager(manager.storage)
    assert len(fresh.find_damage("worker")) == 2
    with pytest.raises(DamagedCheckpointError, match="no intact checkpoint") as refused, \
            pytest.warns(RuntimeWarning):
        fresh.resume_from_latest("worker")
    assert refused.value.intact_checkpoint_id is None


def test_the_agent_resume_path_propagates_the_refusal(manager):
    ids = saved_history(manager, "worker", 3)
    damage_checkpoint(manager, ids[-1])
    agent = BaseAutonomousAgent(agent_id="worker", state_manager=SyncStateManager(manager.storage))
    with pytest.raises(DamagedCheckpointError, match=ids[-1]):
        agent.resume()
    assert agent.last_checkpoint_id is None  # nothing was restored


def test_an_empty_newest_checkpoint_file_is_refused_though_listing_skips_it(tmp_path):
    manager = SyncStateManager(f"file://{tmp_path}/checkpoints")
    ids = saved_history(manager, "worker", 3)
    (manager.storage.base_dir / "worker" / "checkpoints" / f"{3:012d}.json").write_bytes(b"")  # a power loss
    fresh = SyncStateManager(manager.storage.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the listing names the empty file in a warning
        assert [exc.checkpoint_id for exc in fresh.find_damage("worker")] == [ids[-1]]
        with pytest.raises(DamagedCheckpointError, match=ids[-1]) as refused:
            fresh.resume_from_latest("worker")
    assert refused.value.intact_checkpoint_id == ids[-2]
