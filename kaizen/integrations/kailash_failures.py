"""What failed in a Kailash run, told in the node's own terms rather than Kailash's wrappers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .kailash_mirror import first_line


def _from_kailash(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] == "kailash"


def _raised_outside(exc: BaseException, package_dir: str) -> bool:
    """True if any frame of the exception's traceback is outside Kailash."""
    tb = exc.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(package_dir):
            return True
        tb = tb.tb_next
    return False


def node_exception(exc: BaseException, package_dir: str) -> BaseException:
    """The first exception in the chain not raised by Kailash itself.

    Kailash wraps a node's error in its own exceptions, by ``__cause__`` and,
    for code nodes, implicitly (``__context__``). A context is only followed
    when it was raised outside Kailash: the sync entry point runs every
    workflow inside ``except RuntimeError`` (its event-loop probe), so that
    unrelated RuntimeError sits at the bottom of most chains.
    """
    seen: set[int] = set()
    current = exc
    while _from_kailash(current) and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
            continue
        context = current.__context__
        if (
            context is not None
            and not current.__suppress_context__
            and _raised_outside(context, package_dir)
        ):
            current = context
            continue
        break
    return current


def describe_failure(exc: BaseException, package_dir: str) -> tuple[str, str]:
    origin = node_exception(exc, package_dir)
    return type(origin).__name__, first_line(str(origin) or repr(origin))


def continued_failures(results: Mapping[str, Any]) -> dict[str, Any]:
    """Nodes the runtime recorded as failed but ran past (leaf nodes).

    LocalRuntime only raises when a failed node has dependents; a failing node
    without dependents becomes ``{"failed": True, "error": ..., "_exception":
    exc}`` in the results and the run is still reported completed.
    """
    return {
        node_id: output
        for node_id, output in results.items()
        if isinstance(output, Mapping) and output.get("failed") is True and "error" in output
    }
