"""Confine file tools to a working directory.

A path is resolved the way the OS would open it (``..`` collapsed, every
existing symlink followed) and rejected unless the result lies inside the
workdir. This stops ``../x``, absolute paths and symlinks that point out.
It is a guard against mistakes, not a sandbox: a process that swaps a path
component for a symlink between our check and the open can still escape.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidToolError, PathOutsideWorkdirError


def resolve_workdir(workdir: str | os.PathLike[str]) -> Path:
    """The workdir as an absolute, symlink-free path; it must exist and be a directory."""
    try:
        root = Path(workdir).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise InvalidToolError(f"workdir {str(workdir)!r} does not exist or cannot be resolved: {exc}") from exc
    if not root.is_dir():
        raise InvalidToolError(f"workdir {str(workdir)!r} is not a directory")
    return root


def resolve_inside(root: Path, path: str) -> Path:
    """Resolve ``path`` (relative to ``root`` unless absolute); raise unless it stays inside ``root``."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"path must be a non-empty string, got {path!r}")
    if "\0" in path:
        raise ValueError(f"path {path!r} contains a NUL byte")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # symlink loop, permission denied on a component
        raise PathOutsideWorkdirError(f"path {path!r} cannot be resolved: {exc}") from exc
    if resolved != root and not resolved.is_relative_to(root):
        raise PathOutsideWorkdirError(
            f"path {path!r} is outside the working directory {str(root)!r} (it resolves to {str(resolved)!r})"
        )
    return resolved
