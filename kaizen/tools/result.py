"""``ToolResult``: what the agent loop gets back from every tool call."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolResult:
    """Outcome of one tool call. ``output`` is always JSON-safe.

    ``ok=False`` covers every failure a model can cause (unknown tool, bad
    arguments, the tool raising); ``error`` then says what went wrong in the
    form ``"<ErrorType>: <message>"``.
    """

    ok: bool
    output: Any = None
    error: str | None = None

    def __post_init__(self) -> None:
        if not self.ok and not self.error:
            raise ValueError("a failed ToolResult needs an error message (ToolResult(ok=False, error=...))")

    @classmethod
    def success(cls, output: Any) -> ToolResult:
        return cls(ok=True, output=output)

    @classmethod
    def failure(cls, error: str) -> ToolResult:
        return cls(ok=False, output=None, error=error)

    def to_text(self) -> str:
        """The result as text for a model: the output (JSON unless a string) or ``Error: ...``."""
        if not self.ok:
            return f"Error: {self.error}"
        if self.output is None:
            return ""
        if isinstance(self.output, str):
            return self.output
        return json.dumps(self.output, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "output": self.output, "error": self.error}
