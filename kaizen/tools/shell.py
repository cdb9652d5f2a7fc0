"""Run a shell command with a hard timeout, bounded output and no leftovers on timeout.

The command runs as ``bash -c`` in its own session (process group), so on
timeout the whole group is killed: children and grandchildren included,
unless they started a new session themselves. Output goes to temporary
files rather than pipes, so memory stays bounded however much a command
prints and a background child holding the output open cannot stall us.
After a normal exit, background processes the command started are left
running (e.g. a dev server started with ``&``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import IO, Any

from .output import truncate_middle

_FULL_READ_MIN_BYTES = 1 << 20


def run_command(command: str, cwd: Path, timeout: float, max_chars: int) -> dict[str, Any]:
    """Run ``command``; return exit code, stdout, stderr (each cut to ``max_chars``) and whether it timed out."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            close_fds=True,
        )
        timed_out = False
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(process)
        except BaseException:  # interrupted while waiting: leave nothing running
            _kill_group(process)
            raise
        result: dict[str, Any] = {
            "exit_code": process.returncode,
            "stdout": read_capped(out, max_chars),
            "stderr": read_capped(err, max_chars),
            "timed_out": timed_out,
        }
    if timed_out:
        result["note"] = f"command timed out after {timeout:g} s; its process group was killed"
    return result


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    # start_new_session made the shell a session and group leader: its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def read_capped(handle: IO[bytes], max_chars: int) -> str:
    """Decode a captured output file, keeping its start and end if it exceeds ``max_chars``.

    Small outputs are decoded whole (exact character counts in the note);
    huge ones are sampled from both ends so we never load them into memory.
    """
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    if size <= max(4 * max_chars, _FULL_READ_MIN_BYTES):
        return truncate_middle(handle.read().decode("utf-8", errors="replace"), max_chars)
    head_chars = max_chars // 2
    tail_chars = max_chars - head_chars
    head = handle.read(4 * head_chars).decode("utf-8", errors="replace")[:head_chars]
    tail = ""
    if tail_chars:
        handle.seek(-4 * tail_chars, os.SEEK_END)
        tail = handle.read().decode("utf-8", errors="replace")[-tail_chars:]
    kept = len(head.encode("utf-8", errors="replace")) + len(tail.encode("utf-8", errors="replace"))
    return f"{head}\n[... about {size - kept} of {size} bytes cut ...]\n{tail}"
