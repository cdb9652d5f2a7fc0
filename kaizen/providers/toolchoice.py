"""``tool_choice``: whether the model may, must, or must not call a tool, or which one.

The real APIs all have this knob with different spellings (OpenAI's
``"required"`` is Anthropic's ``{"type": "any"}``); agents say it once in
wire-neutral form and each provider translates it. Small local models often
call a tool only when it is named, which is why naming one matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union, get_args

from .types import ToolSpec

ToolChoiceMode = Literal["auto", "none", "required"]
TOOL_CHOICE_MODES: tuple[ToolChoiceMode, ...] = get_args(ToolChoiceMode)


@dataclass(frozen=True)
class NamedTool:
    """Force a call of the tool called ``name`` (it must be among the tools sent)."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"NamedTool.name must be a non-empty str, got {self.name!r}")


#: ``"auto"`` (the model decides), ``"none"`` (answer in text), ``"required"`` (call some tool)
#: or ``NamedTool(name)`` (call that tool).
ToolChoice = Union[ToolChoiceMode, NamedTool]


def as_tool_choice(value: object, where: str = "tool_choice") -> ToolChoice | None:
    """``value`` as a ToolChoice: a mode, a NamedTool, or ``{"name": ...}`` from a config file."""
    if value is None or isinstance(value, NamedTool):
        return value
    if isinstance(value, str) and value in TOOL_CHOICE_MODES:
        return value
    if isinstance(value, dict) and set(value) == {"name"}:
        return NamedTool(value["name"])
    raise ValueError(
        f"{where} {value!r} is not valid; use one of {', '.join(map(repr, TOOL_CHOICE_MODES))}, "
        "NamedTool('tool_name') or {'name': 'tool_name'}"
    )


def check_tool_choice(provider: str, choice: object, tools: Sequence[ToolSpec]) -> ToolChoice | None:
    """Validate ``choice`` against the tools of this call, before any network call.

    A named tool must be one of ``tools``, and "required" needs at least one
    tool: the APIs reject both, and a local server may instead hang.
    """
    checked = as_tool_choice(choice, f"{provider}: tool_choice")
    if isinstance(checked, NamedTool):
        names = [t.name for t in tools]
        if checked.name not in names:
            offered = ", ".join(names) if names else "none were passed"
            raise ValueError(f"{provider}: tool_choice names tool {checked.name!r}, which is not among the "
                             f"tools of this call ({offered})")
    elif checked == "required" and not tools:
        raise ValueError(f"{provider}: tool_choice='required' needs at least one tool; pass tools or use 'auto'")
    return checked


__all__ = ["TOOL_CHOICE_MODES", "NamedTool", "ToolChoice", "ToolChoiceMode", "as_tool_choice", "check_tool_choice"]
