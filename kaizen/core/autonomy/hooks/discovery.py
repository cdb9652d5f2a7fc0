"""Load hook classes from ``*.py`` files in a directory the caller names.

Loading a file runs its code with this process's rights, so this is code execution by design
(SECURITY.md): there is no default directory, and a directory or file that another user can
write is refused before anything is imported. A file that fails to import, a class that fails
to instantiate or declares no valid ``events`` is logged (logger ``kaizen.hooks``) and skipped;
the other hooks still load.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from .errors import HookError
from .events import HookEvent
from .protocol import BaseHook

if TYPE_CHECKING:
    from .manager import HookManager

logger = logging.getLogger("kaizen.hooks")


def discover_hooks(manager: HookManager, hooks_dir: str | os.PathLike[str]) -> int:
    """Register every ``BaseHook`` subclass defined in ``hooks_dir/*.py`` (``__init__.py`` is
    skipped) on each of its ``events``; returns the number of registrations."""
    if not isinstance(hooks_dir, (str, os.PathLike)):
        raise TypeError(f"hooks_dir must be a path to a directory, got {type(hooks_dir).__name__}")
    directory = Path(hooks_dir)
    if not directory.exists():
        raise FileNotFoundError(f"Hooks directory not found: {directory}")
    if not directory.is_dir():
        raise NotADirectoryError(f"Not a directory: {directory} (give the directory holding the hook files)")
    files = sorted(path for path in directory.glob("*.py") if path.name != "__init__.py" and path.is_file())
    for path in [directory, *files]:
        _require_trusted(path)
    count = 0
    for path in files:
        module = _load(path)
        if module is None:
            continue
        for hook_class in _hook_classes(module):
            count += _register(manager, hook_class, path)
    logger.info("loaded %d hook registration(s) from %s", count, directory)
    return count


def _require_trusted(path: Path) -> None:
    """Refuse what another user could have written: their code would run as us."""
    info = path.stat()
    kind = "directory" if path.is_dir() else "file"
    if info.st_mode & stat.S_IWOTH:
        raise PermissionError(
            f"refusing to load hooks: {kind} {path} is writable by every user; "
            f"run chmod o-w {path} if you trust its contents"
        )
    owner_ok = getattr(os, "geteuid", None) is None or info.st_uid in (0, os.geteuid())
    if not owner_ok:
        raise PermissionError(
            f"refusing to load hooks: {kind} {path} belongs to another user (uid {info.st_uid}); "
            "hook files run with your rights, so load only your own"
        )


def _load(path: Path) -> ModuleType | None:
    name = f"kaizen_hooks_{path.stem}"
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            logger.warning("hook file %s could not be loaded as a module; skipped", path)
            return None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    except Exception as exc:  # the file's own error: skip this file, keep the others
        sys.modules.pop(name, None)
        logger.warning("hook file %s failed to load (%s: %s); skipped", path, type(exc).__name__, exc)
        return None


def _hook_classes(module: ModuleType) -> list[type[BaseHook]]:
    """``BaseHook`` subclasses defined in the module itself (not ones it imports)."""
    found = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, BaseHook) and value is not BaseHook
                and value.__module__ == module.__name__):
            found.append(value)
    return found


def _register(manager: HookManager, hook_class: type[BaseHook], path: Path) -> int:
    where = f"hook {hook_class.__name__} in {path}"
    try:
        hook = cast(Any, hook_class)()  # discovered hooks take no arguments
    except Exception as exc:
        logger.warning("%s failed to instantiate (%s: %s); skipped", where, type(exc).__name__, exc)
        return 0
    events: Any = getattr(hook, "events", None)
    if events is None:
        logger.warning("%s has no 'events' attribute naming the events it handles; skipped", where)
        return 0
    if isinstance(events, (HookEvent, str)):
        events = [events]
    try:
        resolved = [HookEvent.coerce(event) for event in events]
    except (HookError, TypeError) as exc:
        logger.warning("%s: %s; skipped", where, exc)
        return 0
    for event in resolved:
        manager.register(event, hook)
    return len(resolved)
