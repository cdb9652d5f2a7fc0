"""Built-in tools: ``Read``, ``Write`` and ``Bash``, bound to one working directory.

``Read`` and ``Write`` only touch files that resolve inside the workdir
(see ``paths``). ``Bash`` merely *starts* in the workdir: the command can do
anything the agent's user can, anywhere. It is NOT a sandbox; run agents
that get ``Bash`` in a container or VM if that matters, and keep it behind
the permission policy (it is declared ``side_effect``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .errors import InvalidToolError
from .files import atomic_write, read_text_window
from .paths import resolve_inside, resolve_workdir
from .shell import run_command
from .tool import Tool


def builtin_tools(
    workdir: str | Path,
    *,
    bash_timeout: float = 30.0,
    max_output_chars: int = 20000,
) -> list[Tool]:
    """``Read`` (read_only), ``Write`` (side_effect) and ``Bash`` (side_effect) working in ``workdir``."""
    root = resolve_workdir(workdir)
    if isinstance(bash_timeout, bool) or not isinstance(bash_timeout, (int, float)) or not (
        math.isfinite(bash_timeout) and bash_timeout > 0
    ):
        raise InvalidToolError(f"bash_timeout must be a positive number of seconds, got {bash_timeout!r}")
    if isinstance(max_output_chars, bool) or not isinstance(max_output_chars, int) or max_output_chars < 1:
        raise InvalidToolError(f"max_output_chars must be a positive int, got {max_output_chars!r}")
    return [
        _read_tool(root, max_output_chars),
        _write_tool(root),
        _bash_tool(root, float(bash_timeout), max_output_chars),
    ]


def _read_tool(root: Path, max_chars: int) -> Tool:
    def read(path: str, offset: int = 1, limit: int | None = None) -> str:
        target = resolve_inside(root, path)
        return read_text_window(target, path, offset, limit, max_chars)

    return Tool(
        name="Read",
        description=(
            "Read a UTF-8 text file inside the working directory. For large files, page with "
            "offset (1-based line number to start at) and limit (number of lines)."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the working directory."},
                "offset": {"type": "integer", "minimum": 1, "description": "First line to return (1-based)."},
                "limit": {"type": "integer", "minimum": 1, "description": "Maximum number of lines to return."},
            },
            "required": ["path"],
            "additionalProperties": False,
        },
        danger="read_only",
        func=read,
    )


def _write_tool(root: Path) -> Tool:
    def write(path: str, content: str) -> str:
        target = resolve_inside(root, path)
        if target == root or target.is_dir():
            raise IsADirectoryError(f"{path!r} is a directory, not a file")
        target.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        atomic_write(target, data)
        return f"wrote {len(data)} bytes to {target.relative_to(root).as_posix()}"

    return Tool(
        name="Write",
        description=(
            "Create or overwrite a UTF-8 text file inside the working directory with the given content. "
            "Missing parent directories are created; the file is replaced atomically."
        ),
        parameters={
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path, relative to the working directory."},
                "content": {"type": "string", "description": "The complete new content of the file."},
            },
            "required": ["path", "content"],
            "additionalProperties": False,
        },
        danger="side_effect",
        func=write,
    )


def _bash_tool(root: Path, timeout: float, max_chars: int) -> Tool:
    def bash(command: str) -> dict[str, Any]:
        return run_command(command, root, timeout, max_chars)

    return Tool(
        name="Bash",
        description=(
            f"Run a shell command with bash -c in the working directory. Returns exit_code, stdout and "
            f"stderr (long output is cut in the middle). Commands are killed after {timeout:g} s; "
            "nothing is read from stdin."
        ),
        parameters={
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The bash command line to run."}},
            "required": ["command"],
            "additionalProperties": False,
        },
        danger="side_effect",
        func=bash,
    )
