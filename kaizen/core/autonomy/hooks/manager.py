"""Register hooks on lifecycle events and run them in priority order.

The agent loop calls ``trigger_sync``/``atrigger`` at each lifecycle point and
checks the returned ``HookOutcome``; hooks can observe, annotate and (on
``pre_*`` events) block, but can never crash the loop.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import math
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from .errors import InvalidHookArgumentError, InvalidHookHandlerError, UnknownHookHandleError
from .events import HookEvent, HookPriority
from .runner import HookHandler, HookRegistration, is_async_callable, run_hook
from ...bridge import in_thread, run_sync
from .stats import HookStats
from .types import HookContext, HookOutcome, HookResult, new_trace_id

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT_S = 5.0
ORIGINAL_TIMEOUT_S = 0.5  # Kailash Kaizen's default for trigger(), kept for code written against it
logger = logging.getLogger("kaizen.hooks")
_EVENTS: dict[str, HookEvent] = {event.value: event for event in HookEvent}  # a member finds itself too


class HookManager:
    """Thread-safe registry of hooks plus the triggers that run them.

    Hooks of one event run one after another: lower ``HookPriority`` first,
    equal priorities in registration order. Each runs under its own timeout
    (its registration's, else the trigger's). Handlers are sync or async
    callables taking a ``HookContext`` and returning ``HookResult | None``;
    sync handlers run on a worker thread so a blocking one cannot stall the
    timeout. A hook that times out keeps running on that thread in the
    background (Python cannot kill threads); only its result is discarded.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: dict[HookEvent, list[HookRegistration]] = {}
        self._by_handle: dict[str, HookRegistration] = {}
        self._seq = itertools.count()
        self._stats = HookStats()

    # -- registration -------------------------------------------------------

    def register(
        self,
        event: HookEvent | str,
        handler: HookHandler | Any,
        priority: HookPriority | int | str = HookPriority.NORMAL,
        *,
        timeout: float | None = None,
        name: str | None = None,
    ) -> str:
        """Register ``handler`` on ``event``; return a handle for ``unregister``.

        An object with a ``handle(context)`` method (Kailash's ``BaseHook``
        style) is accepted in place of a callable; its ``name`` names it, and its
        ``on_error(error, context)`` is called when ``handle`` raises.
        """
        event = HookEvent.coerce(event)
        func = _resolve_handler(handler, event)
        if name is None:
            name = _default_name(handler)
        elif not isinstance(name, str) or not name:
            raise InvalidHookArgumentError(f"hook name on event {event.value!r} must be a non-empty str, got {name!r}")
        priority = HookPriority.coerce(priority)
        _check_timeout(timeout, f"timeout of hook {name!r} on event {event.value!r}")
        reg = HookRegistration(
            handle=f"hook-{uuid.uuid4().hex[:16]}",
            event=event,
            handler=func,
            priority=priority,
            name=name,
            timeout=timeout,
            seq=next(self._seq),
            is_async=is_async_callable(func),
            source=handler,
        )
        with self._lock:
            hooks = self._hooks.setdefault(event, [])
            hooks.append(reg)
            hooks.sort(key=lambda r: r.sort_key)
            self._by_handle[reg.handle] = reg
        return reg.handle

    def on(
        self,
        event: HookEvent | str,
        priority: HookPriority | int | str = HookPriority.NORMAL,
        *,
        timeout: float | None = None,
        name: str | None = None,
    ) -> Callable[[F], F]:
        """Decorator form of ``register``; returns the function unchanged."""
        event = HookEvent.coerce(event)  # fail at the decorator line, not at first use
        priority = HookPriority.coerce(priority)

        def decorator(func: F) -> F:
            self.register(event, func, priority, timeout=timeout, name=name)
            return func

        return decorator

    def register_hook(self, hook: Any, priority: HookPriority | int | str = HookPriority.NORMAL) -> list[str]:
        """Register a hook object on every event in its ``events`` attribute; returns the handles."""
        events = getattr(hook, "events", None)
        if events is None:
            raise InvalidHookArgumentError(
                f"hook {_default_name(hook)!r} has no 'events' attribute naming the events it handles"
            )
        if isinstance(events, (HookEvent, str)):
            events = [events]
        return [self.register(event, hook, priority) for event in events]

    def unregister(self, target: HookEvent | str, handler: Any = None) -> int:
        """Remove hooks; returns how many were removed.

        ``unregister(handle)`` removes the hook ``register`` returned that handle for (an
        unknown handle raises ``UnknownHookHandleError``). ``unregister(event)`` removes every
        hook on the event, ``unregister(event, handler)`` the ones registered with that
        function or hook object (Kailash Kaizen's form).
        """
        with self._lock:
            if handler is None and isinstance(target, str) and target in self._by_handle:
                reg = self._by_handle.pop(target)
                self._drop(reg.event, [reg])
                return 1
        if handler is None and isinstance(target, str) and target.startswith("hook-"):
            raise UnknownHookHandleError(f"no hook is registered with handle {target!r}")
        event = HookEvent.coerce(target)
        with self._lock:
            doomed = [reg for reg in self._hooks.get(event, ())
                      if handler is None or reg.source is handler or reg.source == handler or reg.handler == handler]
            for reg in doomed:
                self._by_handle.pop(reg.handle, None)
            self._drop(event, doomed)
        return len(doomed)

    def _drop(self, event: HookEvent, doomed: list[HookRegistration]) -> None:
        """Remove registrations (lock held); an event without hooks leaves the registry."""
        kept = [reg for reg in self._hooks.get(event, ()) if reg not in doomed]
        if kept:
            self._hooks[event] = kept
        else:
            self._hooks.pop(event, None)

    def registered(self, event: HookEvent | str) -> list[str]:
        """Names of the hooks on ``event``, in the order they will run."""
        if isinstance(event, str) and (known := _EVENTS.get(event)) is not None and known not in self._hooks:
            return []  # the common case, asked before every save: no coercion, no lock
        event = HookEvent.coerce(event)
        with self._lock:
            return [reg.name for reg in self._hooks.get(event, ())]

    # -- triggering ---------------------------------------------------------

    async def atrigger(
        self,
        event: HookEvent | str,
        data: Mapping[str, Any] | None = None,
        agent_id: str = "",
        timeout: float | None = DEFAULT_TIMEOUT_S,
        *,
        metadata: Mapping[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> HookOutcome:
        """Run every hook on ``event`` and collect their results; never raises for hook errors."""
        context, hooks = self._prepare(event, data, agent_id, metadata, timeout, trace_id)
        return await self._run_all(context, hooks, timeout)

    async def trigger(
        self,
        event_type: HookEvent | str,
        agent_id: str = "",
        data: Mapping[str, Any] | None = None,
        timeout: float | None = ORIGINAL_TIMEOUT_S,
        metadata: Mapping[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> list[HookResult]:
        """Kailash Kaizen's trigger: the list of every hook's ``HookResult``, in run order.

        Same hooks, isolation and timeouts as ``atrigger`` (whose ``HookOutcome`` also says
        whether a hook blocked); note the argument order ``(event, agent_id, data)`` and the
        original's default timeout of 0.5 s per hook.
        """
        outcome = await self.atrigger(event_type, data, agent_id, timeout, metadata=metadata, trace_id=trace_id)
        return outcome.results

    def trigger_sync(
        self,
        event: HookEvent | str,
        data: Mapping[str, Any] | None = None,
        agent_id: str = "",
        timeout: float | None = DEFAULT_TIMEOUT_S,
        *,
        metadata: Mapping[str, Any] | None = None,
        trace_id: str | None = None,
    ) -> HookOutcome:
        """Blocking ``atrigger``; usable with or without a running event loop in this thread.

        Called from async code, the hooks run on a private loop in a worker
        thread and the calling loop is blocked meanwhile (prefer ``atrigger``
        there); a hook that needs the calling loop simply times out.
        """
        known = _EVENTS.get(event)
        if (known is not None and not self._hooks.get(known) and metadata is None and type(agent_id) is str
                and (data is None or type(data) is dict) and (timeout is None or timeout is DEFAULT_TIMEOUT_S)):
            # The common case (no hook on this event): two small objects, no loop, no id.
            return HookOutcome(context=HookContext.quiet(known, agent_id, data, trace_id))
        context, hooks = self._prepare(event, data, agent_id, metadata, timeout, trace_id)
        if not hooks:
            return HookOutcome(context=context)
        return run_sync(lambda: self._run_all(context, hooks, timeout))

    async def _run_all(self, context: HookContext, hooks: list[HookRegistration], timeout: float | None) -> HookOutcome:
        outcome = HookOutcome(context=context)
        for reg in hooks:
            result = await run_hook(reg, context, reg.timeout if reg.timeout is not None else timeout)
            outcome.results.append(result)
            outcome.hook_names.append(reg.name)
            self._stats.record(reg.name, result)
        return outcome

    def get_stats(self) -> dict[str, dict[str, Any]]:
        """Per hook name: call, success and failure counts, total/average/max duration in ms."""
        return self._stats.snapshot()

    async def discover_filesystem_hooks(self, hooks_dir: str | os.PathLike[str]) -> int:
        """Load the ``BaseHook`` subclasses defined in ``hooks_dir/*.py`` and register each on its
        ``events``; returns how many registrations were made.

        This imports the files, which runs their code with this process's rights: call it
        only on a directory you control (SECURITY.md). There is no default directory; files
        or directories that other users can write are refused.
        """
        from .discovery import discover_hooks

        return await in_thread(discover_hooks, self, hooks_dir)

    def _prepare(
        self,
        event: HookEvent | str,
        data: Mapping[str, Any] | None,
        agent_id: str,
        metadata: Mapping[str, Any] | None,
        timeout: float | None,
        trace_id: str | None,
    ) -> tuple[HookContext, list[HookRegistration]]:
        event = HookEvent.coerce(event)
        _check_timeout(timeout, f"trigger timeout for event {event.value!r}")
        for label, value in (("data", data), ("metadata", metadata)):
            if value is not None and not isinstance(value, Mapping):
                raise InvalidHookArgumentError(
                    f"trigger {label} for event {event.value!r} must be a dict, got {type(value).__name__}"
                )
        context = HookContext(
            event_type=event,
            agent_id=agent_id,
            data=dict(data or {}),
            metadata=dict(metadata or {}),
            trace_id=trace_id or new_trace_id(),
        )
        with self._lock:
            hooks = list(self._hooks.get(event, ()))
        return context, hooks


def _resolve_handler(handler: Any, event: HookEvent) -> HookHandler:
    if callable(handler):
        return cast(HookHandler, handler)
    method = getattr(handler, "handle", None)
    if callable(method):
        on_error = getattr(handler, "on_error", None)
        if callable(on_error) and is_async_callable(method):
            return _with_error_handler(method, on_error)
        return cast(HookHandler, method)
    raise InvalidHookHandlerError(
        f"hook handler for event {event.value!r} must be callable or have a handle(context) method, "
        f"got {type(handler).__name__}"
    )


def _with_error_handler(handle: Callable[..., Any], on_error: Callable[..., Any]) -> HookHandler:
    """``handle`` that tells the hook's ``on_error`` about its exception, then raises it on."""

    async def run(context: HookContext) -> Any:
        try:
            return await handle(context)
        except Exception as exc:
            try:
                reply = on_error(exc, context)
                if inspect.isawaitable(reply):
                    await reply
            except Exception as nested:  # the hook's own error handler failing is logged, not raised
                logger.warning("on_error of hook %r raised %s: %s", getattr(handle, "__self__", handle),
                               type(nested).__name__, nested)
            raise

    return run


def _default_name(handler: Any) -> str:
    """A hook object's ``name``, else ``Class.method`` or ``function`` (without the
    ``outer.<locals>.`` noise of nested functions)."""
    own = getattr(handler, "name", None)
    if isinstance(own, str) and own and not callable(handler):
        return own
    name = getattr(handler, "__qualname__", None) or getattr(handler, "__name__", None)
    if isinstance(name, str) and name:
        return name.rsplit("<locals>.", 1)[-1]
    return type(handler).__name__


def _check_timeout(timeout: Any, where: str) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise InvalidHookArgumentError(f"{where} must be a number of seconds or None, got {type(timeout).__name__}")
    if not math.isfinite(timeout) or timeout <= 0:
        raise InvalidHookArgumentError(f"{where} must be a positive number of seconds, got {timeout!r}")
