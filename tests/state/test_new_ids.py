"""New ids and timestamps. Ids come from the operating system's randomness, fetched in batches: never repeated,
within a process, across threads, or in a forked child that inherited a batch."""

from __future__ import annotations

import os
import re
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaizen.core.autonomy.state.ids import check_id, new_agent_id, new_checkpoint_id, new_lineage_id


def test_ids_have_the_original_shapes_and_do_not_repeat():
    made = [new_checkpoint_id() for _ in range(5000)]
    assert all(re.fullmatch(r"ckpt_[0-9a-f]{12}", made_id) for made_id in made)
    assert len(set(made)) == len(made)
    assert re.fullmatch(r"agent_[0-9a-f]{12}", check_id(new_agent_id(), "agent_id"))
    assert re.fullmatch(r"lin_[0-9a-f]{16}", new_lineage_id())


def test_threads_never_get_the_same_id():
    made: list[list[str]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda out: out.extend(new_checkpoint_id() for _ in range(2000)), args=(out,))
               for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [made_id for out in made for made_id in out]
    assert len(set(every)) == len(every) == 8000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_the_batch_its_parent_holds():
    new_checkpoint_id()  # the parent now holds a batch of random bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids go back through the pipe
        os.close(read)
        os.write(write, " ".join(new_checkpoint_id() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split()
    os.waitpid(pid, 0)
    parent = [new_checkpoint_id() for _ in range(200)]
    assert len(child) == 200 and not set(child) & set(parent)


@given(st.integers(min_value=0, max_value=253402300799 * 10**9 + 999_999_999))
def test_utc_text_is_datetimes_own_iso_form(epoch_ns):
    from datetime import datetime, timedelta, timezone

    from kaizen.core.autonomy.state.ids import utc_text

    expected = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=epoch_ns // 1000))
    assert utc_text(epoch_ns) == expected.isoformat(timespec="microseconds")
    assert utc_text(epoch_ns) == expected.isoformat(timespec="microseconds")  # the kept second, reused


def test_utc_now_lies_between_two_readings_of_the_clock():
    from datetime import datetime, timezone

    from kaizen.core.autonomy.state.ids import utc_now

    for _ in range(1000):
        before = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        now = utc_now()
        after = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        assert before <= now <= after


def test_utc_moment_gives_one_instant_as_datetime_and_as_its_text():
    from datetime import datetime, timezone

    from kaizen.core.autonomy.state.ids import utc_moment

    for _ in range(1000):
        before = datetime.now(timezone.utc)
        moment, text = utc_moment()
        after = datetime.now(timezone.utc)
        assert moment.tzinfo is timezone.utc
        assert text == moment.isoformat(timespec="microseconds")
        assert before <= moment <= after


def test_a_saved_capture_stores_its_own_instant_even_after_its_timestamp_is_replaced(tmp_path):
    from dataclasses import replace
    from datetime import datetime, timezone

    from kaizen.agents.autonomous.base import BaseAutonomousAgent
    from kaizen.agents.autonomous.config import AutonomousConfig

    agent = BaseAutonomousAgent(AutonomousConfig(storage=f"sqlite:///{tmp_path / 'state.db'}"))
    try:
        captured = agent._capture_state(_for_save=True)
        agent.state_manager.save_checkpoint(captured)
        assert agent.state_manager.load_checkpoint(captured.checkpoint_id).timestamp == captured.timestamp
        later = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
        captured.timestamp = later  # the text kept for the old instant must not be used
        agent.step_number += 1
        moved = agent._capture_state(_for_save=True)
        moved.timestamp = later
        agent.state_manager.save_checkpoint(moved)
        assert agent.state_manager.load_checkpoint(moved.checkpoint_id).timestamp == later
        copy = replace(agent._capture_state(_for_save=True), timestamp=later)
        assert copy.stamp is None
    finally:
        agent.state_manager.close()


def test_an_id_found_valid_is_remembered_but_a_bad_one_never_passes():
    from kaizen.core.autonomy.state import ids
    from kaizen.core.autonomy.state.errors import InvalidStateTypeError, InvalidStateValueError

    class Id(str):  # a str subclass may compare or hash as it likes: checked every time, never kept
        pass

    good = new_checkpoint_id()
    assert check_id(good, "x") == good and good in ids._VALID_IDS
    assert check_id(good, "x") is good  # the remembered text passes as it is
    for bad in ("", "../etc", "a/b", "a b", "-x", "x" * 129, "a..b", "\x00"):
        for _ in range(2):
            with pytest.raises(InvalidStateValueError):
                check_id(bad, "x")
        assert bad not in ids._VALID_IDS
    with pytest.raises(InvalidStateTypeError):
        check_id(7, "x")
    assert check_id(Id("abc"), "x") == "abc" and not any(type(known) is not str for known in ids._VALID_IDS)
    with pytest.raises(InvalidStateValueError):
        check_id(Id("a/b"), "x")
    for n in range(ids._VALID_IDS_MAX + 10):  # bounded
        check_id(f"id_{n}", "x")
    assert len(ids._VALID_IDS) <= ids._VALID_IDS_MAX
