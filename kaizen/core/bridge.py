"""The one crossing between sync and async code in the project.

The rule (docs/architecture.md): the core is synchronous (stores do blocking I/O); each async face runs
the sync core on a worker thread (``in_thread``). Callables users hand us (hooks, tools, approvers,
storage plug-ins) may be sync or async: sync ones are called directly; async ones are awaited in async
code, and from sync code they run on this module's one background event loop (``run_sync``), never on a
new loop per call.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar, cast

T = TypeVar("T")

_LOOP: asyncio.AbstractEventLoop | None = None
_THREAD: threading.Thread | None = None
_LOCK = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started on first use in a daemon thread (it ends with the process)."""
    global _LOOP, _THREAD
    with _LOCK:
        if _LOOP is None or _THREAD is None or not _THREAD.is_alive():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=_serve, args=(loop,), name="kaizen-bridge", daemon=True)
            thread.start()
            _LOOP, _THREAD = loop, thread
        return _LOOP


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    """Run the shared loop for the life of the process; a KeyboardInterrupt or SystemExit that a
    stray task lets escape is logged and the loop keeps serving everyone else."""
    while True:
        try:
            loop.run_forever()
            return
        except BaseException as exc:  # noqa: BLE001 - the loop must outlive any one task
            logging.getLogger("kaizen.bridge").warning("a task on the bridge loop raised %r", exc)


def run_sync(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run the coroutine made by ``make_coro`` from sync code and return its result (or raise its error).

    Works whether or not the calling thread runs an event loop: the coroutine runs on the shared
    background loop while the caller waits. ``make_coro`` is a factory so the coroutine is created
    on that loop, with the caller's context variables.
    """
    loop = _background_loop()
    if threading.current_thread() is _THREAD:
        # A sync call made from inside a coroutine already on the bridge: waiting here would block
        # the loop that has to run it. Run it on a private loop in a helper thread instead.
        return _run_on_private_loop(make_coro)
    context = contextvars.copy_context()
    done: Future[T] = Future()

    async def settle() -> None:
        # Every outcome, KeyboardInterrupt and SystemExit included, goes to the caller: nothing may
        # escape into the shared loop (it would stop it for every later caller).
        try:
            done.set_result(await make_coro())
        except BaseException as exc:
            done.set_exception(exc)

    loop.call_soon_threadsafe(lambda: context.run(loop.create_task, settle()))
    return done.result()


def _run_on_private_loop(make_coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    box: list[tuple[bool, Any]] = []

    def work() -> None:
        loop = asyncio.new_event_loop()
        try:
            box.append((True, loop.run_until_complete(make_coro())))
        except BaseException as exc:  # handed to the caller's thread below
            box.append((False, exc))
        finally:
            loop.close()

    thread = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="kaizen-bridge-nested",
                              daemon=True)
    thread.start()
    thread.join()
    ok, value = box[0]
    if ok:
        return cast(T, value)
    raise value


def resolve(value: T | Awaitable[T]) -> T:
    """A user callable's result from sync code: plain values pass through, awaitables run on the bridge."""
    if inspect.isawaitable(value):
        awaitable = value

        async def wait() -> T:
            return await awaitable

        return run_sync(wait)
    return value


async def in_thread(func: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking sync call from async code without blocking the event loop."""
    return await asyncio.to_thread(functools.partial(func, *args, **kwargs))


def is_async_callable(func: Any) -> bool:
    """True for ``async def`` functions and objects whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(func, "__call__", None))
