"""Exit codes and the one-line error reporting every command shares.

A command never shows a traceback: our errors become ``error: ...`` on stderr and
a documented exit code (docs/cli.md lists them); a bug of ours says so.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from kaizen.core.autonomy.state.errors import StateError

EXIT_ERROR = 1          # a usage or state error
# 2 is click's own code for a bad command line
EXIT_TAMPERED = 3       # what a command shows or checks is damaged or was edited
EXIT_NOT_PENDING = 4    # approve/deny: the call is not waiting (decided by someone else, expired, moved on)
EXIT_BUSY = 75          # another worker is running the agent (EX_TEMPFAIL: try again later)
EXIT_INTERNAL = 70      # a bug of ours
EXIT_INTERRUPTED = 130  # Ctrl-C

console = Console()
errors = Console(stderr=True)


class CliError(Exception):
    """A user-facing failure: printed as one line with its exit code (1 unless given)."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit."""
    errors.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(exit_code)


def warn(message: str) -> None:
    """A ``warning: ...`` line on stderr (stdout stays clean for pipes)."""
    errors.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of one of our errors."""
    from .stores import CheckpointCorruptError, LeaseHeldError

    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, LeaseHeldError):
        return EXIT_BUSY
    if isinstance(exc, CheckpointCorruptError):
        return EXIT_TAMPERED
    return EXIT_ERROR


def friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our errors (and common ones) into one line on stderr and their exit code."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (CliError, StateError, ValueError, OSError, tomllib.TOMLDecodeError) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            fail(str(exc), exit_code_for(exc))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit,
                KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug of ours: still one line, with what to report
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
                         "(please report it with the command you ran)", soft_wrap=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper
