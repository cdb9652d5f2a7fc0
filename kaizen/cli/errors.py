"""Exit codes and the one-line error reporting every command shares.

A command never shows a traceback: our errors become ``error: ...`` on stderr and
a documented exit code (docs/cli.md lists them); a bug of ours says so.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson
from rich.console import Console
from rich.markup import escape

from kaizen.core.autonomy.state.errors import StateError
from kaizen.core.autonomy.state.redaction import redact_text

EXIT_ERROR = 1          # a usage or state error
# 2 is click's own code for a bad command line
EXIT_TAMPERED = 3       # what a command shows or checks is damaged or was edited
EXIT_NOT_PENDING = 4    # approve/deny: the call is not waiting (decided by someone else, expired, moved on)
EXIT_BUSY = 75          # another worker is running the agent (EX_TEMPFAIL: try again later)
EXIT_INTERNAL = 70      # a bug of ours
EXIT_INTERRUPTED = 130  # Ctrl-C

class PipeConsole(Console):
    """A console whose closed pipe ends the command quietly with exit 0 (the reader has what it
    wanted: `kaizen usage AGENT | head -1`), as the command group does, instead of rich's exit 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more is written, and Python's exit does not complain
        raise SystemExit(0)  # a SystemExit: hooks that print (a run's progress) do not swallow it


console = PipeConsole()
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
            damage = store_damage(exc)
            if damage is not None:
                fail(damage, EXIT_TAMPERED)
            fail(str(exc), exit_code_for(exc))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit,
                KeyboardInterrupt):
            raise
        except Exception as exc:  # a bug of ours: still one line, with what to report
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))} "
                         "(please report it with the command you ran)", soft_wrap=True)
            sys.exit(EXIT_INTERNAL)

    return wrapper


STORE_CODE = Path(__file__).resolve().parents[1] / "core" / "autonomy" / "state" / "storage"


def store_damage(exc: BaseException) -> str | None:
    """What to say when ``exc`` comes from a store damaged below its rows' checksums: a SQLite
    file SQLite itself calls malformed, or a stored row that cannot even be decoded."""
    context = click.get_current_context(silent=True)
    url = context.params.get("store_url") if context is not None else None
    where = f"the store {redact_text(url)}" if isinstance(url, str) else "the store"
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlite_errorname", None) == "SQLITE_CORRUPT":
            return (f"{where} is damaged: SQLite finds its file malformed ({cause}). "
                    "Restore it from a backup")
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, orjson.JSONDecodeError) and raised_in(exc, STORE_CODE):
        return (f"{where} is damaged: a stored row cannot be decoded ({exc}). "
                "Restore it from a backup")
    return None


def raised_in(exc: BaseException, folder: Path) -> bool:
    trace = exc.__traceback__
    while trace is not None:
        if Path(trace.tb_frame.f_code.co_filename).resolve().is_relative_to(folder):
            return True
        trace = trace.tb_next
    return False
