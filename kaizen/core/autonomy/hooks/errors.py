"""Errors of the hooks system.

Each message names what failed (hook name or handle, event, argument) so a
caller can fix the registration without reading our source. Input errors
subclass ``ValueError``/``TypeError``/``KeyError`` so generic handlers work.

Errors raised *by hooks while they run* never surface here: the manager turns
them into unsuccessful ``HookResult`` values instead.
"""

from __future__ import annotations


class HookError(Exception):
    """Base class of every error raised by the hooks system."""


class InvalidHookEventError(HookError, ValueError):
    """An event name or value is not one of ``HookEvent``."""


class InvalidHookArgumentError(HookError, ValueError):
    """A priority, timeout, name or result field has a value we cannot accept."""


class InvalidHookHandlerError(HookError, TypeError):
    """A handler is not callable (and has no callable ``handle`` method)."""


class UnknownHookHandleError(HookError, KeyError):
    """``unregister`` was given a handle that is not (or no longer) registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown hook handle"
