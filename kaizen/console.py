"""The ``kaizen`` console script.

Loading the command's modules takes a noticeable moment; a Ctrl-C in it would otherwise end
in a Python traceback. Here it ends like any other Ctrl-C of the command: one line on
stderr and exit code 130 (nothing was opened or saved yet).
"""

from __future__ import annotations

import signal
import sys

EXIT_INTERRUPTED = 130  # as kaizen.cli.errors, which is not loaded yet when this is needed


def main() -> None:
    try:
        from kaizen.cli import main as command
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while exiting changes nothing
        sys.stderr.write("interrupted before the command started; nothing was done\n")
        sys.exit(EXIT_INTERRUPTED)
    command(prog_name="kaizen")
