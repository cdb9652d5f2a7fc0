"""Optional libraries of the built-in hooks, asked for by name when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

EXTRA = "kaizen-state[observability]"


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{feature} needs the {module.split('.')[0]!r} package, which is not installed; "
            f"install it with: pip install '{EXTRA}'"
        ) from exc
