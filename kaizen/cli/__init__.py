"""The ``kaizen`` command: run the demo, and inspect, audit, cost, approve, resume and move agents.

Every command that uses a store takes ``--store URL`` (default: the embedded SQLite
file, or the ``KAIZEN_STORE`` environment variable). Errors are one line on stderr
and a documented exit code (``errors.py``), never a traceback. One module per group
of commands; importing them registers them on ``main``.
"""

from __future__ import annotations

from . import approvals, audit, checkpoints, keys, log, maintenance, run, transfer, ui  # noqa: F401  (register the commands)
from .app import main

__all__ = ["main"]
