"""The ``kaizen`` command group: logging, broken pipes and Ctrl-C for every command."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import sys
import warnings
from typing import Any

import click

from .errors import EXIT_INTERRUPTED, errors

INTERRUPT_LINE = "kaizen.interrupt_line"  # ctx.meta key: a callable giving what Ctrl-C prints


class LowercaseLevels(logging.Formatter):
    """Log lines as the command's own: ``warning: ...``, ``error: ...``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.message}"


class KaizenGroup(click.Group):
    """A group whose commands end quietly on a closed pipe and with one line on Ctrl-C."""

    owns_process = False  # True under the console script (reading sys.argv), not a caller's CliRunner

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        self.owns_process = args is None
        try:
            return super().main(args, *rest, **options)
        finally:
            if self.owns_process:  # the command is over: a Ctrl-C while Python exits changes nothing
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        """An unknown command that is a subcommand of a group (`kaizen show`) names where it lives."""
        if args and not ctx.resilient_parsing and self.get_command(ctx, args[0]) is None:
            home = self.home_of(args[0])
            if home is not None:
                ctx.fail(f"No such command {args[0]!r}. Did you mean `kaizen {home} {shlex.join(args)}`?")
        return super().resolve_command(ctx, args)

    def home_of(self, name: str) -> str | None:
        """The group (or command) that has ``name`` as a subcommand."""
        if name == "verify":
            return "audit"  # `kaizen audit verify AGENT`
        for group_name, command in self.commands.items():
            if isinstance(command, click.Group) and name in command.commands:
                return group_name
        return None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # run commands say which checkpoint was saved (run.on_interrupt)
            if self.owns_process:  # a caller's process (a test's CliRunner) keeps its own Ctrl-C
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            describe = ctx.meta.get(INTERRUPT_LINE)
            interrupted(describe() if describe is not None else "interrupted", self.owns_process)
        except BrokenPipeError:  # `kaizen audit ... | head -1`: the reader has what it wanted
            quiet_broken_pipe()


def interrupted(line: str, owns_process: bool = True) -> None:
    """End the command after Ctrl-C: one line on stderr, exit 130; further Ctrl-C are ignored
    (when the command owns the process)."""
    if owns_process:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    errors.print(line, highlight=False, soft_wrap=True, markup=False)
    sys.exit(EXIT_INTERRUPTED)


def quiet_broken_pipe() -> None:
    """Stop writing to a closed stdout without Python's "Broken pipe" message at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(0)


@click.group(cls=KaizenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kaizen-state", prog_name="kaizen")
def main() -> None:
    """Durable, auditable state for autonomous agents.

    Start with `kaizen demo --yes`, then inspect what it stored with
    `kaizen checkpoints list AGENT`, `kaizen audit AGENT` and `kaizen usage AGENT`.
    """
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)  # libraries may lower their own loggers' levels; ours stays
    handler.setFormatter(LowercaseLevels())
    logging.basicConfig(handlers=[handler], level=logging.WARNING)
    logging.getLogger("kailash").setLevel(logging.ERROR)
    # the same warnings reach the log once, and read commands name damaged entries themselves
    warnings.simplefilter("ignore", RuntimeWarning)
