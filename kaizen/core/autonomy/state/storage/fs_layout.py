"""The filesystem store's directory: where each file lives, the agent locks, the id index.

Paths are built only from checked ids and refused if they resolve outside the store; every agent
directory is reached through its flock (shared for reads, exclusive for writes). ``filesystem.py``
builds the store's reads and writes on these; the layout is in its module docstring.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from ..errors import DamagedEntryWarning, InvalidStateValueError, NotAKaizenStoreError, StorageError, StoreNotFoundError
from ..ids import check_id
from .base import refuse_write
from .fs_format import FORMAT_VERSION, fsync_dir, read_json, write_file


class FilesystemLayout:
    """Paths, locks, index entries and the format marker of a store directory."""

    base_dir: Path
    compress: bool
    read_only: bool
    url: str
    _root: Path
    _ready: bool

    def setup(self) -> None:
        if self.read_only:
            self._check_format()
            self._ready = True
            return
        self._refuse_foreign()
        try:
            os.makedirs(self.base_dir, mode=0o700, exist_ok=True)
            self._root = Path(os.path.realpath(self.base_dir))
            for sub in ("_locks", "_leases", "_index", "_index/c", "_index/l"):
                (self._root / sub).mkdir(mode=0o700, exist_ok=True)
            fsync_dir(self._root / "_index")
            fsync_dir(self._root)
            version = (read_json(self._root / "_format.json") or {}).get("version")
            if version is None:
                write_file(self._root / "_format.json", orjson.dumps({"format": "kaizen-fs", "version": 1}))
            elif version > FORMAT_VERSION:
                raise StorageError(f"{self.base_dir} has store format {version}, newer than {FORMAT_VERSION}")
            for name in os.listdir(self._root):  # what delete_agent or import_rows left behind
                if name.startswith(".trash-"):
                    shutil.rmtree(self._root / name, ignore_errors=True)
        except OSError as exc:
            raise StorageError(f"cannot set up the filesystem store {self.base_dir}: {exc}") from exc
        self._ready = True

    def _refuse_foreign(self) -> None:
        """A file, or a directory holding other things and no ``_format.json``, is not ours to write in."""
        base = self.base_dir
        if base.exists() and not base.is_dir():
            raise NotAKaizenStoreError(f"{base} is a file, not a directory: a filesystem store is a directory of "
                                       "its own; it was left untouched")
        if not base.is_dir() or (base / "_format.json").exists():
            return
        others = sorted(name for name in os.listdir(base)
                        if name not in ("_locks", "_leases", "_index") and not name.startswith(".trash-"))
        if others:  # (the three folders alone: a first setup cut short, finished now)
            raise NotAKaizenStoreError(
                f"{base} is not a kaizen store: it holds other files ({', '.join(others[:5])}"
                f"{', ...' if len(others) > 5 else ''}) and no _format.json; it was left untouched. Give the store "
                "a directory of its own")

    def _check_format(self) -> None:
        """Read-only opening: the directory must exist and be a kaizen store this release reads."""
        if not self.base_dir.is_dir():
            raise StoreNotFoundError(f"no kaizen store at {self.base_dir}: the directory does not exist (opened "
                                     "read-only, so it is not created; check the path or --store)")
        self._root = Path(os.path.realpath(self.base_dir))
        try:
            version = (read_json(self._root / "_format.json") or {}).get("version")
        except StorageError:
            version = None
        if version is None:
            raise NotAKaizenStoreError(f"{self.base_dir} is not a kaizen store (no readable _format.json); "
                                       "it was left untouched")
        if version > FORMAT_VERSION:
            raise StorageError(f"{self.base_dir} has store format {version}, newer than {FORMAT_VERSION}")

    def _damaged(self, path: Path, detail: str, damaged: list[str] | None) -> None:
        """Report an entry that cannot be read: into ``damaged`` if given, else as a warning."""
        message = f"{path} is damaged ({detail}): skipped; the intact checkpoints beside it are still served"
        if damaged is not None:
            damaged.append(message)
        else:
            warnings.warn(message, DamagedEntryWarning, stacklevel=4)

    def _p(self, *parts: str, **ids: str) -> Path:
        """A path under the store from checked ids; refuses one that resolves outside it."""
        if not self._ready:
            self.setup()
        for name, value in ids.items():
            check_id(value, name)
        path = self._root.joinpath(*parts)
        if not os.path.realpath(path).startswith(str(self._root) + os.sep):
            named = ", ".join(f"{name} {value!r}" for name, value in ids.items())
            raise InvalidStateValueError(f"{named} resolves outside the store directory {self._root}")
        return path

    def _file(self, agent_dir: Path, kind: str, lineage_id: str) -> Path:
        suffix = ".json" if kind == "lineages" else ".rec"
        return self._p(agent_dir.name, kind, lineage_id + suffix, lineage_id=lineage_id)

    @contextmanager
    def _locked(self, agent_id: str, exclusive: bool = True) -> Iterator[Path]:
        """Hold the agent's flock (shared for reads) and yield its directory; OSError -> StorageError.
        Exclusive means a write: refused on a read-only store."""
        if exclusive and self.read_only:
            raise refuse_write(self.url, f"change agent {agent_id!r}")
        agent_dir = self._p(agent_id, agent_id=agent_id)
        lock = self._p("_locks", f"{agent_id}.lock", agent_id=agent_id)
        fd = None
        try:
            if exclusive:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
            elif lock.exists():  # a reader of an agent never written needs no lock file, and makes none
                fd = os.open(lock, os.O_RDONLY)
                fcntl.flock(fd, fcntl.LOCK_SH)
            if exclusive and (old := self._root / f".replaced-{agent_id}").exists():  # a swap was cut short
                if agent_dir.exists():
                    self._discard(old)
                else:
                    os.rename(old, agent_dir)
                    fsync_dir(self._root)
            yield agent_dir if exclusive else self._dir(agent_id)
        except OSError as exc:
            raise StorageError(f"filesystem store {self.base_dir}: {exc}") from exc
        finally:
            if fd is not None:
                os.close(fd)

    def _dir(self, agent_id: str) -> Path:
        """The agent's directory, or ``.replaced-<agent_id>`` if a swap stopped between its renames."""
        agent_dir, old = self._p(agent_id, agent_id=agent_id), self._root / f".replaced-{agent_id}"
        return old if not agent_dir.exists() and old.exists() else agent_dir

    def _index(self, kind: str, id_: str) -> tuple[str, int] | None:
        """The (agent_id, order) an index entry names (kind "c": checkpoints, "l": lineages), or None."""
        path = self._p("_index", kind, id_, **{"checkpoint_id" if kind == "c" else "lineage_id": id_})
        try:
            agent_id, _, order = path.read_text().partition(" ")
            return check_id(agent_id, "indexed agent_id"), int(order or 0)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # a hint only: the documents are scanned instead
            self._damaged(path, str(exc), None)
            return None

    def _discard(self, path: Path) -> None:
        trash = self._root / f".trash-{secrets.token_hex(6)}"
        os.rename(path, trash)  # atomic: from here on it is gone
        fsync_dir(self._root)
        shutil.rmtree(trash, ignore_errors=True)

    def _makedirs(self, agent_dir: Path) -> None:
        if not (agent_dir / "records").is_dir():
            for sub in ("", "checkpoints", "lineages", "records"):
                (agent_dir / sub).mkdir(mode=0o700, exist_ok=True)
            fsync_dir(agent_dir)
            fsync_dir(agent_dir.parent)
