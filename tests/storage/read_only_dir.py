"""A directory nobody can write, even root (the tests run as root in CI containers).

First choice: a read-only bind mount (writes fail with EROFS, as on an archived volume). If mounting
is not permitted, the immutable attribute (``chattr +i``). If neither is available, the directory is
only chmod 0555, which root ignores: callers then still prove that nothing was written by comparing
the files' bytes and modification times before and after.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _run(*command: str) -> bool:
    try:
        return subprocess.run(command, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def read_only_dir(source: Path) -> Iterator[tuple[Path, str]]:
    """Yield (a read-only view of ``source``, how it was made read-only: "mount", "chattr" or "chmod")."""
    view = source.with_name(source.name + "-ro")
    view.mkdir()
    if _run("mount", "--bind", str(source), str(view)):
        try:
            if _run("mount", "-o", "remount,bind,ro", str(view)):
                yield view, "mount"
                return
        finally:
            _run("umount", str(view))
    view.rmdir()
    if _run("chattr", "+i", str(source)):
        try:
            yield source, "chattr"
        finally:
            _run("chattr", "-i", str(source))
        return
    mode = source.stat().st_mode
    os.chmod(source, 0o555)
    try:
        yield source, "chmod"
    finally:
        os.chmod(source, mode)


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root`` with its bytes and modification time (ns)."""
    return {str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*")) if path.is_file()}
