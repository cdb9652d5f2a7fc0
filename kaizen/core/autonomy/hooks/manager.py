"""Register hooks on lifecycle events and run them in priority order.

The agent loop calls ``trigger_sync``/``atrigger`` at each lifecycle point and
checks the returned ``HookOutcome``; hooks can observe, annotate and (on
``pre_*`` events) block, but can never crash the loop.
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .errors import InvalidHookArgumentError, InvalidHookHandlerError, UnknownHookHandleError
from .events import HookEvent, HookPriority
from .runner import HookHandler, HookRegistration, is_async_callable, run_hook
from ...bridge import run_sync
from .types import HookContext, HookOutcome, new_trace_id

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_TIMEOUT_S = 5.0


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

    # -- registration -------------------------------------------------------

    def register(
        self,
        event: HookEvent | str,
        handler: HookHandler,
        priority: HookPriority | int | str = HookPriority.NORMAL,
        *,
        timeout: float | None = None,
        name: str | None = None,
    ) -> str:
        """Register ``handler`` on ``event``; return a handle for ``unregister``.

        An object with a ``handle(context)`` method (Kailash's ``BaseHook``
        style) is accepted in place of a callable.
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

    def unregister(self, handle: str) -> None:
        """Remove the hook registered under ``handle``; unknown handles raise."""
        with self._lock:
            reg = self._by_handle.pop(handle, None)
            if reg is not None:
                self._hooks[reg.event].remove(reg)
        if reg is None:
            raise UnknownHookHandleError(f"no hook is registered with handle {handle!r}")

    def registered(self, event: HookEvent | str) -> list[str]:
        """Names of the hooks on ``event``, in the order they will run."""
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
        return await _run_all(context, hooks, timeout)

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
        context, hooks = self._prepare(event, data, agent_id, metadata, timeout, trace_id)
        if not hooks:  # the common case costs no event loop
            return HookOutcome(context=context)
        return run_sync(lambda: _run_all(context, hooks, timeout))

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


async def _run_all(context: HookContext, hooks: list[HookRegistration], timeout: float | None) -> HookOutcome:
    outcome = HookOutcome(context=context)
    for reg in hooks:
        result = await run_hook(reg, context, reg.timeout if reg.timeout is not None else timeout)
        outcome.results.append(result)
        outcome.hook_names.append(reg.name)
    return outcome


def _resolve_handler(handler: Any, event: HookEvent) -> HookHandler:
    if callable(handler):
        return handler
    method = getattr(handler, "handle", None)
    if callable(method):
        return method
    raise InvalidHookHandlerError(
        f"hook handler for event {event.value!r} must be callable or have a handle(context) method, "
        f"got {type(handler).__name__}"
    )


def _default_name(handler: Any) -> str:
    """``Class.method`` or ``function``, without the ``outer.<locals>.`` noise of nested functions."""
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
