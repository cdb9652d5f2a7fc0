"""Ctrl-C while an agent runs: never in the middle of a checkpoint save.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be. Landing
between a save's commit and the agent noting the new checkpoint would leave the agent
one checkpoint behind its store, and the run's own "interrupted" save would then be
refused as a conflict. While a save is on the stack, the guard holds the interrupt
back and raises it as soon as that save returns.
"""

from __future__ import annotations

import _thread
import signal
import sys
from types import CodeType, FrameType, TracebackType
from typing import Any

from kaizen.agents.autonomous.base import BaseAutonomousAgent
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

# Calls that must finish once started: the agent's save and the manager's save under it.
_ATOMIC: frozenset[CodeType] = frozenset({
    BaseAutonomousAgent.save_checkpoint.__code__, SyncStateManager.save_checkpoint.__code__,
})


class SaveSafeInterrupts:
    """A context manager that installs the deferring SIGINT handler for its block."""

    def __init__(self) -> None:
        self._previous: Any = None
        self._held_back = False
        self._due = False  # the held-back interrupt is to be raised now
        self._outer_trace: Any = None  # a debugger's or coverage's tracer, put back afterwards

    def __enter__(self) -> SaveSafeInterrupts:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._held_back:
            sys.settrace(self._outer_trace)
        signal.signal(signal.SIGINT, self._previous)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        atomic = _outermost_atomic(frame)
        if atomic is None or self._due:  # (a save's frame is still on the stack as it returns)
            self._due = False
            raise KeyboardInterrupt
        if self._held_back:
            return  # already waiting for this save to return
        self._held_back = True
        self._outer_trace = sys.gettrace()
        sys.settrace(_no_new_frames)  # tracing on, so the save's frame reports its return
        atomic.f_trace_lines = False
        atomic.f_trace = self._on_atomic_event

    def _on_atomic_event(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event == "return":
            sys.settrace(self._outer_trace)
            frame.f_trace = None
            self._held_back = False
            self._due = True
            _thread.interrupt_main()  # the handler runs again right after the save returns
        return self._on_atomic_event


def _outermost_atomic(frame: FrameType | None) -> FrameType | None:
    found = None
    while frame is not None:
        if frame.f_code in _ATOMIC:
            found = frame
        frame = frame.f_back
    return found


def _no_new_frames(frame: FrameType, event: str, arg: Any) -> None:
    return None
