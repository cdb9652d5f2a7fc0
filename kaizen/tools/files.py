"""File reading and writing used by the built-in ``Read`` and ``Write`` tools."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

_BINARY_SNIFF_BYTES = 8192


def read_text_window(path: Path, shown_as: str, offset: int, limit: int | None, max_chars: int) -> str:
    """Lines ``offset`` .. ``offset + limit - 1`` (1-based) of a UTF-8 text file, at most ``max_chars``.

    Streams the file: memory stays bounded by ``max_chars`` however large the
    file is. A cut ends with a note giving what was cut and where to continue.
    """
    if path.is_dir():
        raise IsADirectoryError(f"{shown_as!r} is a directory, not a file")
    with open(path, "rb") as raw:
        if b"\0" in raw.read(_BINARY_SNIFF_BYTES):
            raise ValueError(f"{shown_as!r} looks like a binary file; Read only returns text")
    kept: list[str] = []
    kept_chars = 0
    cut_chars = 0
    first_cut_line: int | None = None
    lines_seen = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            lines_seen = number
            if number < offset:
                continue
            if limit is not None and number >= offset + limit:
                break
            room = max_chars - kept_chars
            if len(line) <= room:
                kept.append(line)
                kept_chars += len(line)
                continue
            if first_cut_line is None:
                first_cut_line = number
                kept.append(line[:room])
                kept_chars += room
            cut_chars += len(line) - max(room, 0)
    if lines_seen < offset and offset > 1:
        return f"[{shown_as!r} has {lines_seen} lines; offset {offset} is past the end]"
    text = "".join(kept)
    if cut_chars:
        text += (
            f"\n[... truncated: {cut_chars} of {kept_chars + cut_chars} characters cut; "
            f"continue with offset={first_cut_line}]"
        )
    return text


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    The data goes to a temporary file in the same directory, is fsynced, then
    renamed over the target. An existing file keeps its permission bits; a new
    one gets the usual ones (0666 minus the umask).
    """
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    temp = path.with_name(f".{path.name[:100]}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (not every OS/filesystem allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
