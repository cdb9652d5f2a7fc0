"""Group commit across processes on one SQLite file: one process writes, the others hand it their saves.

SQLite lets one writer at a time commit, and each commit pays its own sync to disk. Within a process
the ``GroupCommit`` queue already puts concurrent saves into one transaction; processes would still
each commit alone. So the first process that writes to a file (per ``synchronous`` level) becomes its
*host*: it holds ``flock`` on ``<file>-kzhost`` and listens on a Unix socket in Linux's abstract
namespace named after the file. Every other process forwards its batches there; the host feeds them
into its own queue, where they share transactions with its own saves and with each other, and answers
each save's outcome once it is durable (a conflict stays a ``CheckpointConflictError``).

Nothing depends on the host staying up. If it exits or is killed, its clients see the connection
close; a save whose answer never came is looked up in the file (its checkpoint row is there, with the
same checksum, or nothing of it is: a transaction is atomic), written directly if absent, and the next
batch finds or becomes the new host. A host whose process is stopped (Ctrl-Z, a debugger) is seen as
such within a quarter of a second (its state in ``/proc``), and treated like one that is gone, except
that a save it was handed and that cannot be written around it (it was stopped holding the database's
write lock) is reported as undecided. With no host reachable, or on a system without abstract sockets,
a process writes directly, as without this module. Only processes of the same user are served or
trusted (``SO_PEERCRED``), and a host announces the file and level it serves before anything is sent.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import select
import socket
import struct
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from ..errors import CheckpointConflictError, StorageError
from .base import SavePlan
from .group_commit import GroupCommit
from .plan_wire import (
    FRAME, MAX_FRAME, WireError, decode, encode, outcome_from_wire, outcome_to_wire, plan_from_wire, plan_to_wire,
)
from .sqlite_writes import SqliteBatchWriter

_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid
_RETRY_S = 1.0  # after finding no host to reach, write directly this long before looking again
_UNRESPONSIVE_RETRY_S = 30.0  # ... and after a host that did not greet in time (e.g. a stopped process)
_HELLO_TIMEOUT_S = 5.0
_ANSWER_MARGIN_S = 30.0  # a host's answer may take the busy timeout plus this before a save gives up
_STOP_POLL_S = 0.25  # while waiting for the host, how often to look whether its process was stopped
AVAILABLE = hasattr(socket, "AF_UNIX") and hasattr(socket, "SO_PEERCRED")


def file_identity(path: Path) -> tuple[int, int]:
    """(device, inode) of the database file: what names its host. Not the path: containers that
    share a network namespace (so one abstract socket namespace) may each have a file at one path."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def host_address(identity: tuple[int, int], synchronous: str) -> str:
    """The abstract socket name of the host for this file and level (no file on disk, no length limit)."""
    digest = hashlib.sha256(f"{identity[0]}:{identity[1]}\0{synchronous}".encode()).hexdigest()[:40]
    return f"\0kaizen-sqlite-host-{digest}"


def _peer(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end."""
    pid, uid, _gid = _CREDENTIALS.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CREDENTIALS.size))
    return pid, uid


class HostStoppedError(TimeoutError):
    """The host's process is stopped (Ctrl-Z, SIGSTOP, a debugger): it will not answer until resumed."""


def is_stopped(pid: int) -> bool:
    """Whether process ``pid`` is stopped or held by a tracer (its state in ``/proc``, Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:
        return False
    return bool(fields) and fields[0] in (b"T", b"t")


def receive_from(sock: socket.socket, pid: int, timeout: float) -> Any:
    """``receive`` from process ``pid``, waiting at most ``timeout`` seconds for the message to start,
    and raising ``HostStoppedError`` as soon as that process is seen stopped: a stopped host would
    hold its caller for the whole timeout for an answer that cannot come while it is stopped."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer")
        readable, _, _ = select.select([sock], [], [], min(_STOP_POLL_S, left))
        if readable:
            return receive(sock)
        if is_stopped(pid):
            raise HostStoppedError(f"process {pid} is stopped")


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ConnectionError("the other process closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> Any:
    """One framed message (``plan_wire.encode``), decoded."""
    (size,) = FRAME.unpack(_receive_exactly(sock, FRAME.size))
    if size > MAX_FRAME:
        raise WireError(f"a message announced {size} bytes, over the {MAX_FRAME}-byte limit")
    return decode(_receive_exactly(sock, size))


class _Host:
    """The listening side: one thread accepts, one thread per client process serves its batches."""

    def __init__(self, address: str, lock_fd: int, committer: GroupCommit, hello: dict[str, Any],
                 path: Path, identity: tuple[int, int]) -> None:
        self.lock_fd = lock_fd
        self.path = path
        self.identity = identity
        self.hello = encode(hello)
        self.stopped = False
        self.pid = os.getpid()
        self._committer = weakref.ref(committer)  # the store's queue must not be kept alive by this
        self._links: set[socket.socket] = set()
        self._busy: set[socket.socket] = set()  # links whose request is being written: never cut
        self._links_lock = threading.Lock()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.listener.bind(address)
            self.listener.listen(64)
        except OSError:
            self.listener.close()
            raise
        self._acceptor = threading.Thread(target=self._accept, name="kaizen-sqlite-host", daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                link, _ = self.listener.accept()
            except OSError:
                return  # the listener was shut down
            try:
                if _peer(link)[1] != os.getuid():  # another user's process: not served
                    link.close()
                    continue
                link.sendall(self.hello)
            except OSError:
                link.close()
                continue
            with self._links_lock:
                self._links.add(link)
            threading.Thread(target=self._serve, args=(link,), name="kaizen-sqlite-client", daemon=True).start()

    def _serve(self, link: socket.socket) -> None:
        try:
            while True:
                try:
                    message = receive(link)
                except (OSError, ConnectionError, WireError):  # gone, or not speaking this protocol
                    return
                with self._links_lock:
                    if self.stopped:
                        return  # closed without an answer, nothing written: the client writes itself
                    self._busy.add(link)
                try:
                    reply = self._answer(message)
                    if reply is None:
                        return
                    link.sendall(reply)  # even when stopping: the client must hear what was committed
                finally:
                    with self._links_lock:
                        self._busy.discard(link)
        except OSError:
            return
        finally:
            with self._links_lock:
                self._links.discard(link)
            link.close()

    def _serves_its_file(self) -> bool:
        """Whether the file at the path is still the one this host writes (its connection keeps a
        deleted file open; a new file may even get the old one's inode, and so this address)."""
        try:
            return file_identity(self.path) == self.identity
        except OSError:
            return False

    def _answer(self, message: Any) -> bytes | None:
        committer = self._committer()
        if committer is None or not self._serves_its_file():
            return None
        try:
            if not isinstance(message, dict) or not isinstance(message.get("plans"), list):
                raise WireError("a request must hold a list of plans")
            plans = [plan_from_wire(plan) for plan in message["plans"]]
        except WireError as exc:
            return encode({"refused": str(exc)})
        outcomes = committer.write_all(plans)
        return encode({"outcomes": [outcome_to_wire(outcome) for outcome in outcomes]})

    def stop(self) -> None:
        """Stop serving (each client then writes directly, or finds the next host) and let go of the lock.

        A client that sees its link close before an answer takes it that nothing more of its batch
        will be committed, and writes what it does not find. So an idle link is closed now, but one
        whose batch is being written is left to its thread, which answers, then closes it."""
        same_process = os.getpid() == self.pid
        with self._links_lock:
            self.stopped = True
            links = [link for link in self._links if not (same_process and link in self._busy)]
            self._links.difference_update(links)
        if same_process:  # a forked child shares these sockets: it only closes its copies
            for sock in (self.listener, *links):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for sock in (self.listener, *links):
            sock.close()
        if same_process and threading.current_thread() is not self._acceptor:
            self._acceptor.join(5)  # the address is free once its accept() has returned
        try:
            os.close(self.lock_fd)
        except OSError:
            pass


class ProcessSharedWriter:
    """The SQLite store's ``BatchWriter``: commits its process's batches itself when it is the file's
    host (serving other processes' too), else hands them to the host (see the module's docstring)."""

    def __init__(self, path: Path, busy_timeout_ms: int, synchronous: str) -> None:
        self.local = SqliteBatchWriter(path, busy_timeout_ms, synchronous)
        self.path = path
        self.synchronous = synchronous
        self.where = f"SQLite store {path}"
        self.identity: tuple[int, int] | None = None  # the file's, once it exists (see file_identity)
        self.answer_timeout = busy_timeout_ms / 1000 + _ANSWER_MARGIN_S
        self.pid = os.getpid()
        self._committer: weakref.ref[GroupCommit] | None = None
        self._host: _Host | None = None
        self._link: socket.socket | None = None
        self._host_pid = 0  # the process at the other end of _link
        self._look_after = 0.0
        self._closed = False  # closed with its store: what is still handed to it is written here, no more hosting
        self.forwarded = 0  # batches handed to a host (the rest of the committer's batches were committed here)
        _LIVE.add(self)

    @property
    def role(self) -> str:
        """"host" (commits and serves), "client" (forwards to a host) or "alone" (commits directly)."""
        return "host" if self._host is not None else "client" if self._link is not None else "alone"

    def attach(self, committer: GroupCommit) -> None:
        """The queue this writer feeds other processes' saves into, should it become the host."""
        self._committer = weakref.ref(committer)

    def write_batch(self, plans: list[SavePlan]) -> list[BaseException | None]:
        if self._host is None and not self._closed and AVAILABLE and self.pid == os.getpid():
            link = self._link if self._link is not None else self._find_host()
            if link is not None:
                return self._forward(link, plans)
        return self.local.write_batch(plans)

    # --- finding or becoming the host -------------------------------------------------------
    def _find_host(self) -> socket.socket | None:
        now = time.monotonic()
        if now < self._look_after:
            return None
        self._look_after = now + _RETRY_S
        try:
            self.identity = file_identity(self.path)
        except OSError:
            return None
        if self._become_host():
            return None
        try:
            self._link = self._connect()
        except TimeoutError:  # someone holds the address but does not answer: do not wait on it often
            self._look_after = now + _UNRESPONSIVE_RETRY_S
        except (OSError, ConnectionError, WireError):
            self._link = None
        return self._link

    def _become_host(self) -> bool:
        committer = self._committer() if self._committer is not None else None
        if committer is None:
            return False
        try:
            fd = os.open(f"{self.path}-kzhost", os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        try:
            self._host = _Host(self.address, fd, committer, self._hello(os.getpid()), self.path,
                               self.identity or file_identity(self.path))
        except OSError:  # the name is taken (a host that lost its lock file): stay a client
            os.close(fd)
            return False
        return True

    @property
    def address(self) -> str:
        if self.identity is None:
            self.identity = file_identity(self.path)
        return host_address(self.identity, self.synchronous)

    def _hello(self, pid: int) -> dict[str, Any]:
        """What a host says first: the file (by identity) and level it serves, and its process."""
        return {"kaizen_sqlite_host": 1, "file": list(self.identity or ()), "synchronous": self.synchronous,
                "path": os.path.realpath(self.path), "pid": pid}

    def _connect(self) -> socket.socket:
        link = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            link.settimeout(_HELLO_TIMEOUT_S)
            link.connect(self.address)
            pid, uid = _peer(link)
            if uid != os.getuid():
                raise WireError(f"the process serving {self.path} (pid {pid}) belongs to another user")
            hello = receive_from(link, pid, _HELLO_TIMEOUT_S)
            expected = self._hello(pid)
            if not isinstance(hello, dict) or any(hello.get(key) != expected[key] for key in
                                                  ("kaizen_sqlite_host", "file", "synchronous", "pid")):
                raise WireError(f"the process at {self.path}'s host address serves another file")
            link.settimeout(self.answer_timeout)
        except BaseException:
            link.close()
            raise
        self._host_pid = pid
        return link

    # --- handing a batch over -------------------------------------------------------------------
    def _forward(self, link: socket.socket, plans: list[SavePlan]) -> list[BaseException | None]:
        self.forwarded += 1
        try:
            link.sendall(encode({"plans": [plan_to_wire(plan) for plan in plans]}))
            reply = receive_from(link, self._host_pid, self.answer_timeout)
        except HostStoppedError:  # it may hold the request unread, or be stopped in the middle of it
            self._drop_link()
            self._look_after = time.monotonic() + _UNRESPONSIVE_RETRY_S
            return self._settle(plans, write_missing=True, host_stopped=True)
        except TimeoutError:
            self._drop_link()
            return self._settle(plans, write_missing=False)
        except (OSError, ConnectionError, WireError):
            self._drop_link()
            self._look_after = 0.0  # find or become the next host on the next batch
            return self._settle(plans, write_missing=True)
        except BaseException:  # e.g. KeyboardInterrupt while waiting: the answer would arrive late,
            self._drop_link()  # on a link the next batch must not read it from
            raise
        try:
            if isinstance(reply, dict) and set(reply) == {"refused"}:
                raise WireError(f"the host refused the batch: {reply['refused']}")
            outcomes = reply.get("outcomes") if isinstance(reply, dict) else None
            if not isinstance(outcomes, list) or len(outcomes) != len(plans):
                raise WireError("the host's answer does not hold one outcome per save")
            return [outcome_from_wire(outcome, self.where) for outcome in outcomes]
        except WireError as exc:
            self._drop_link()
            return [StorageError(f"{self.where}: {exc}") for _ in plans]

    def _settle(self, plans: list[SavePlan], *, write_missing: bool,
                host_stopped: bool = False) -> list[BaseException | None]:
        """The outcomes of saves handed to a host that never answered, read from the file: a save
        whose row is there (same checksum) was committed; one that is absent left nothing, and is
        written now (``write_missing``: the host is gone, or stopped) or reported as undecided.

        A stopped host may have been stopped inside its transaction: then it holds the database's
        write lock, the direct write fails once the busy timeout is over, and the save is reported
        as undecided (the host commits it when it is resumed). If it was stopped anywhere else, the
        direct write commits the save, and the host's later attempt finds it there and writes nothing."""
        outcomes: list[BaseException | None] = [None] * len(plans)
        missing: list[int] = []
        try:
            for index, plan in enumerate(plans):
                stored = self.local.stored_checksum(plan.row.checkpoint_id)
                if stored is None:
                    missing.append(index)
                elif stored != plan.row.checksum:
                    outcomes[index] = StorageError(f"checkpoint {plan.row.checkpoint_id!r} already exists in the store")
        except StorageError as exc:
            return [exc for _ in plans]
        if not missing:
            return outcomes
        if write_missing:
            written = self.local.write_batch([plans[index] for index in missing])
            for index, outcome in zip(missing, written, strict=True):
                if host_stopped and isinstance(outcome, StorageError) and not isinstance(outcome, CheckpointConflictError):
                    outcome = self._undecided(plans[index], f"the writing process {self._host_pid} is stopped ({outcome})")
                outcomes[index] = outcome
            return outcomes
        for index in missing:
            outcomes[index] = self._undecided(
                plans[index], f"the writing process did not answer within {self.answer_timeout:.0f} s")
        return outcomes

    def _undecided(self, plan: SavePlan, why: str) -> StorageError:
        return StorageError(
            f"{self.where}: {why}; checkpoint {plan.row.checkpoint_id!r} is not in the store yet and may still "
            "be committed: load the agent's latest checkpoint to see where it stands")

    def _drop_link(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def close(self) -> None:
        self._closed = True
        host, self._host = self._host, None
        if host is not None:
            host.stop()
        self._drop_link()
        self.local.close()

    def forget_after_fork(self) -> None:
        """In a forked child: close this process's copies of the parent's sockets and lock, touching
        nothing the parent uses (the child makes its own writer)."""
        host, self._host = self._host, None
        if host is not None:
            host.stop()
        link, self._link = self._link, None
        if link is not None:
            link.close()


_LIVE: weakref.WeakSet[ProcessSharedWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_LIVE):
        writer.forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
