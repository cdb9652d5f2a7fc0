"""Group commit: saves that arrive together share one transaction and one sync to disk.

Every agent usually opens its own store object on the same database, so the committer is shared by
database, not by store object: ``shared_committer`` hands out one ``GroupCommit`` per (process,
database) key, counted by the stores using it and closed with the last of them. A store that is
dropped without ``close`` gives its claim back too: the registry holds committers weakly, so the
committer (and its connection) goes with the last store that refers to it.

Leader and followers, no extra thread: a save joins the queue; if no batch is in flight it leads
(it takes the whole queue, writes it in one transaction, commits once), otherwise it waits. When
the leader's batch is durable it wakes each caller in it with its own outcome, and hands the lead to
the first save that queued meanwhile. A lone agent therefore writes its own save directly, as
without group commit; under load every commit carries everything that queued during the previous
one. Each caller returns only when its own save is committed, and gets its own error: the
``BatchWriter`` decides per save (a conflict fails that save only; see the SQLite and PostgreSQL
writers).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Protocol

from ..errors import StorageError
from .base import SavePlan, refuse_write


class BatchWriter(Protocol):
    """Writes a batch of saves in one transaction on its own connection (only the leader calls it)."""

    def write_batch(self, plans: list[SavePlan]) -> list[BaseException | None]:
        """One outcome per plan, in order: None when the plan is committed (durable), else the error
        to raise in that plan's caller. Plans that failed leave nothing behind; the others commit."""

    def close(self) -> None: ...


class _Pending:
    __slots__ = ("plan", "error", "finished", "leads", "wake")

    def __init__(self, plan: SavePlan, waits: bool = True) -> None:
        self.plan = plan
        self.error: BaseException | None = None
        self.finished = False
        self.leads = False
        if waits:  # (a save that leads at once never waits: it needs no wake-up)
            self.wake = threading.Lock()  # held until released once: a lighter wake-up than an Event
            self.wake.acquire()


class GroupCommit:
    """The leader-follower queue in front of one ``BatchWriter``."""

    def __init__(self, writer: BatchWriter, where: str) -> None:
        self.writer = writer
        self.where = where
        self.users = 0
        self.batches = 0  # batches committed (tests and benchmarks read the sizes through these)
        self.saves = 0
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._leading = False
        self._close_when_idle = False

    def __del__(self) -> None:  # the last store let go of it without close(): its connection goes too
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - at collection or interpreter exit nothing can be reported
            pass

    @property
    def leading(self) -> bool:
        """Whether a batch is being written now."""
        with self._lock:
            return self._leading

    def queued(self) -> int:
        """Saves waiting for the next batch (not counting the batch in flight)."""
        with self._lock:
            return len(self._queue)

    def write(self, plan: SavePlan) -> None:
        """Write ``plan`` in the next batch; returns once it is durable, raises its own error if not."""
        with self._lock:
            alone = not self._leading  # nobody is writing, so nobody is queued either
            if alone:
                self._leading = True
            else:
                me = _Pending(plan)
                self._queue.append(me)
        if alone:  # the lone agent's save: a batch of its own, written at once (the queue stays empty)
            self._write_alone(plan)
            return
        me.wake.acquire()
        if me.leads:
            self._lead(me)
        self._outcome(me)

    def _write_alone(self, plan: SavePlan) -> None:
        """``_lead`` and ``_outcome`` of a batch of one save, its caller leading: the same steps
        (a failure is that save's error; then the lead goes to whoever queued meanwhile), without
        the queue entry a save waiting for its batch needs."""
        try:
            try:
                outcomes = self.writer.write_batch([plan])
            except BaseException as exc:  # the caller's own error, as _write gives it
                if not isinstance(exc, Exception):
                    raise
                error = StorageError(f"{self.where}: save of checkpoint {plan.row.checkpoint_id!r} failed: {exc}")
                raise error from exc
            if len(outcomes) != 1:
                raise ValueError(f"the writer answered {len(outcomes)} outcomes for one save")
            self.batches += 1
            self.saves += 1
        finally:  # whatever happened, nobody queued meanwhile may wait forever
            with self._lock:
                self._hand_on_lead()
        outcome = outcomes[0]
        if outcome is not None:
            raise outcome

    def write_all(self, plans: list[SavePlan]) -> list[BaseException | None]:
        """Write ``plans`` together in the next batch (a batch another process handed over); returns
        each one's outcome once they are durable, instead of raising."""
        mine = [_Pending(plan) for plan in plans]
        if not mine:
            return []
        first = mine[0]
        with self._lock:
            self._queue += mine  # queued together, so always taken by one batch
            lead = not self._leading
            self._leading = True
        if not lead:
            first.wake.acquire()
        if lead or first.leads:
            self._lead(first)
        for pending in mine[1:]:
            pending.wake.acquire()  # released by the batch's leader with the rest of it
        outcomes: list[BaseException | None] = []
        for pending in mine:
            try:
                self._outcome(pending)
                outcomes.append(None)
            except BaseException as exc:  # noqa: BLE001 - each plan's own outcome, handed back
                outcomes.append(exc)
        return outcomes

    def _lead(self, me: _Pending, batch: list[_Pending] | None = None) -> None:
        """Write ``batch`` (None: everything queued), then hand the lead on."""
        if batch is None:
            with self._lock:
                batch, self._queue = self._queue, []
        try:
            self._write(batch)
        finally:  # whatever happened, nobody in the batch may wait forever
            with self._lock:
                for pending in batch:
                    pending.finished = True
                self._hand_on_lead()
            for pending in batch:
                if pending is not me:
                    pending.wake.release()

    def _hand_on_lead(self) -> None:
        """(Under ``_lock``, a batch written.) Wake the first save queued meanwhile to lead the next
        batch; with none, nobody leads, and a close asked for meanwhile happens now."""
        if self._queue:
            successor = self._queue[0]
            successor.leads = True
            successor.wake.release()
        else:
            self._leading = False
            if self._close_when_idle:
                self.writer.close()
                self._close_when_idle = False

    def _write(self, batch: list[_Pending]) -> None:
        plans = [pending.plan for pending in batch]
        try:
            outcomes = self.writer.write_batch(plans)
        except BaseException as exc:  # each caller gets its own error, the leader too
            for pending in batch:
                pending.error = StorageError(
                    f"{self.where}: save of checkpoint {pending.plan.row.checkpoint_id!r} failed: {exc}")
                pending.error.__cause__ = exc
            if not isinstance(exc, Exception):
                raise
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.error = outcome
        self.batches += 1
        self.saves += len(plans)

    @staticmethod
    def _outcome(me: _Pending) -> None:
        if not me.finished:
            raise StorageError(f"save of checkpoint {me.plan.row.checkpoint_id!r} was interrupted before its batch ran")
        if me.error is not None:
            raise me.error

    def close(self) -> None:
        """Close the writer's connection now, or when the batch in flight ends. Closing takes the
        lead, so no batch starts while the writer closes (a batch that another process hands this
        one meanwhile, or a save, waits for it, then opens the writer again)."""
        with self._lock:
            if self._leading:
                self._close_when_idle = True
                return
            self._leading = True
        try:
            self.writer.close()
        finally:
            with self._lock:
                self._hand_on_lead()


# This process's id, kept up to date across forks: read on every save, and os.getpid() is a system
# call. (Without register_at_fork, every read asks the system.)
_PID = [os.getpid()]


def _current_pid() -> int:
    return _PID[0] if _TRACKS_FORKS else os.getpid()


def _forked() -> None:
    _PID[0] = os.getpid()


_TRACKS_FORKS = hasattr(os, "register_at_fork")
if _TRACKS_FORKS:
    os.register_at_fork(after_in_child=_forked)


_COMMITTERS: weakref.WeakValueDictionary[tuple[Hashable, ...], GroupCommit] = weakref.WeakValueDictionary()
_COMMITTERS_LOCK = threading.Lock()


def shared_committer(key: tuple[Hashable, ...], make_writer: Callable[[], BatchWriter], where: str) -> GroupCommit:
    """The process's committer for the database ``key`` names (made on first use); pair each call
    with ``_release``. A forked child gets its own: the parent's connections are never touched."""
    full_key = (os.getpid(), *key)
    with _COMMITTERS_LOCK:
        committer = _COMMITTERS.get(full_key)
        if committer is None:
            writer = make_writer()
            committer = _COMMITTERS[full_key] = GroupCommit(writer, where)
            attach = getattr(writer, "attach", None)
            if attach is not None:  # a writer that also takes other processes' saves into this queue
                attach(committer)
        committer.users += 1
        return committer


def _release(key: tuple[Hashable, ...], committer: GroupCommit) -> None:
    """One store stopped using ``committer``; the last one closes its connection."""
    full_key = (os.getpid(), *key)
    with _COMMITTERS_LOCK:
        committer.users -= 1
        if committer.users > 0 or _COMMITTERS.get(full_key) is not committer:
            return
        del _COMMITTERS[full_key]
    committer.close()


class CommitterHandle:
    """A store's claim on its database's shared committer: taken on the first save, given back by
    ``release`` (the store's ``close``), taken again in a forked child."""

    def __init__(self, key: tuple[Hashable, ...], make_writer: Callable[[], BatchWriter], where: str) -> None:
        self.key = key
        self.make_writer = make_writer
        self.where = where
        self._held: tuple[int, GroupCommit] | None = None
        self._lock = threading.Lock()

    def get(self) -> GroupCommit:
        held = self._held
        pid = _PID[0] if _TRACKS_FORKS else os.getpid()  # (_current_pid, read on every save)
        if held is not None and held[0] == pid:
            return held[1]
        with self._lock:
            if self._held is None or self._held[0] != pid:
                self._held = (pid, shared_committer(self.key, self.make_writer, self.where))
            return self._held[1]

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        if held is not None and held[0] == os.getpid():
            _release(self.key, held[1])


class GroupCommittedWrites:
    """The save path the SQL stores share: a save joins the process's group commit on its database
    (saves arriving together from any store object on it share one transaction and one sync)."""

    url: str
    read_only: bool
    _ready: bool
    _group: CommitterHandle
    setup: Callable[[], None]  # the store's own: creates or checks its schema

    @property
    def committer(self) -> GroupCommit:
        """The group commit this store's saves go through (shared with every store object of this
        process on the same database)."""
        return self._group.get()

    def write(self, plan: SavePlan) -> None:
        if self.read_only:
            raise refuse_write(self.url, f"save checkpoint {plan.row.checkpoint_id!r}")
        if not self._ready:
            self.setup()
        self._group.get().write(plan)
