"""Run a coroutine to completion from synchronous code.

Sync entry points (``HookManager.trigger``, ``ToolRegistry.execute``) are thin
wrappers over their async versions. They must work whether or not the calling
thread already runs an event loop: without one we run a private loop here;
inside one (a sync call made from async code) we cannot nest loops, so the
coroutine runs on a private loop in a worker thread while the caller waits.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

# How long leftover tasks (e.g. a timed-out hook that ignores cancellation)
# get to finish after being cancelled, before the private loop is closed.
_CANCEL_GRACE_S = 0.1


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine made by ``make_coro`` and return its result (or raise its error).

    Takes a factory rather than a coroutine so the coroutine is created on the
    thread (and loop) that runs it.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(make_coro)
    return _run_on_worker_thread(make_coro)


def _run_in_new_loop(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Like ``asyncio.run`` but never waits for default-executor threads.

    ``asyncio.run`` joins the default executor on exit, so one stuck thread
    would hold the caller past every timeout; ``loop.close()`` does not wait.
    """
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(make_coro())
    finally:
        try:
            _cancel_leftover_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_leftover_tasks(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    if not pending:
        return
    for task in pending:
        task.cancel()
    loop.run_until_complete(asyncio.wait(pending, timeout=_CANCEL_GRACE_S))
    for task in pending:
        if task.done() and not task.cancelled():
            task.exception()  # mark retrieved: it was already reported or is irrelevant now


def _run_on_worker_thread(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run on a fresh loop in a daemon thread and block the caller until it is done."""
    box: list[tuple[bool, Any]] = []

    def work() -> None:
        try:
            box.append((True, _run_in_new_loop(make_coro)))
        except BaseException as exc:  # handed to the caller's thread below
            box.append((False, exc))

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(work,), name="kaizen-run-sync", daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return value
    raise value
