"""Run one hook: its own timeout, its errors turned into a failed ``HookResult``.

Isolation is the point: a hook that raises, hangs or returns garbage is
logged (logger ``kaizen.hooks``) and reported in the outcome, and the agent
and the remaining hooks carry on.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .events import HookEvent, HookPriority
from .types import HookContext, HookResult

logger = logging.getLogger("kaizen.hooks")

HookHandler = Callable[[HookContext], Any]  # returns HookResult | None, or an awaitable of it


@dataclass(frozen=True)
class HookRegistration:
    """One registered hook; ``seq`` keeps registration order among equal priorities.

    ``source`` is what the caller registered (a function or a hook object); ``handler`` the
    callable that runs. It unpacks as ``(priority, source)``, the shape of Kailash Kaizen's
    registry entries, so code that reads ``manager._hooks[event][0][1]`` keeps working.
    """

    handle: str
    event: HookEvent
    handler: HookHandler
    priority: HookPriority
    name: str
    timeout: float | None
    seq: int
    is_async: bool
    source: Any = None

    @property
    def sort_key(self) -> tuple[int, int]:
        return (int(self.priority), self.seq)

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Any:
        return (self.priority, self.source)[index]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.priority, self.source))


def is_async_callable(func: Any) -> bool:
    """True for ``async def`` functions, partials of them and objects with ``async __call__``."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - we want the bound __call__
    return call is not None and inspect.iscoroutinefunction(call)


async def run_hook(reg: HookRegistration, context: HookContext, timeout: float | None) -> HookResult:
    """Run ``reg``'s handler on ``context``; never raises for errors of the hook itself."""
    where = f"hook {reg.name!r} on event {context.event_type.value!r}"
    started = time.perf_counter()
    task = asyncio.ensure_future(_invoke(reg, context))
    try:
        # asyncio.wait (not wait_for): on timeout we cancel and move on at once,
        # even if the hook swallows the cancellation.
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        raise
    elapsed_ms = (time.perf_counter() - started) * 1000.0

    if not done:
        task.cancel()
        task.add_done_callback(_consume_outcome)
        logger.warning("%s timed out after %g s (agent %r, trace %s)", where, timeout, context.agent_id, context.trace_id)
        return HookResult.fail(f"{where} timed out after {timeout:g} s (hook timeout)", duration_ms=elapsed_ms)
    if task.cancelled():
        logger.warning("%s was cancelled (agent %r, trace %s)", where, context.agent_id, context.trace_id)
        return HookResult.fail(f"{where} was cancelled", duration_ms=elapsed_ms)
    exc = task.exception()
    if exc is not None:
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: not ours to swallow
            raise exc
        logger.warning(
            "%s raised %s: %s (agent %r, trace %s)",
            where, type(exc).__name__, exc, context.agent_id, context.trace_id, exc_info=exc,
        )
        return HookResult.fail(f"{where} raised {type(exc).__name__}: {exc}", duration_ms=elapsed_ms)

    value = task.result()
    if isinstance(value, _Escaped):  # KeyboardInterrupt, SystemExit: not ours to swallow
        raise value.exc
    if value is None:
        return HookResult(duration_ms=elapsed_ms)
    if isinstance(value, HookResult):
        if value.blocked:
            logger.info("%s blocked: %s (trace %s)", where, value.reason, context.trace_id)
        # replace, not mutate: a hook may return a shared module-level result
        return dataclasses.replace(value, duration_ms=elapsed_ms)
    logger.warning("%s returned %s; expected HookResult or None", where, type(value).__name__)
    return HookResult.fail(
        f"{where} returned {type(value).__name__}; expected HookResult or None", duration_ms=elapsed_ms
    )


@dataclasses.dataclass(frozen=True)
class _Escaped:
    """A KeyboardInterrupt/SystemExit from a hook, carried out of its task as a value: raised inside
    a task it would stop the event loop itself (the shared bridge loop, for sync callers)."""

    exc: BaseException


async def _invoke(reg: HookRegistration, context: HookContext) -> Any:
    try:
        return await _call_handler(reg, context)
    except (KeyboardInterrupt, SystemExit) as exc:
        return _Escaped(exc)


async def _call_handler(reg: HookRegistration, context: HookContext) -> Any:
    if reg.is_async:
        return await reg.handler(context)
    value = await call_in_thread(reg.handler, context, thread_name=f"kaizen-hook:{reg.name}")
    if inspect.isawaitable(value):  # a sync wrapper (lambda, partial) around an async hook
        value = await value
    return value


def call_in_thread(func: Callable[..., Any], *args: Any, thread_name: str = "kaizen-hook") -> asyncio.Future[Any]:
    """Run a blocking ``func(*args)`` on its own daemon thread; await the returned future.

    Not ``asyncio.to_thread``: the default executor is joined when a loop made
    by ``asyncio.run`` ends and at interpreter exit, so a hook stuck after its
    timeout would still hold the caller. A daemon thread is simply abandoned.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def deliver(ok: bool, value: Any) -> None:
        if future.done():  # the caller stopped waiting (timeout or cancellation)
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            ok, value = True, context.run(func, *args)
        except StopIteration as exc:  # a Future refuses StopIteration; keep the message
            ok, value = False, RuntimeError(f"StopIteration: {exc}")
        except BaseException as exc:  # delivered to the awaiting task
            ok, value = False, exc
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # loop already closed: nobody is waiting any more
            pass

    threading.Thread(target=work, name=thread_name, daemon=True).start()
    return future


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    """Retrieve a late task's exception so asyncio does not log it as unhandled."""
    if not task.cancelled():
        task.exception()
