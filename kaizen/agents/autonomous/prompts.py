"""The first messages of a run, and reading the final answer back into the signature's outputs."""

from __future__ import annotations

import json
import re
from typing import Any

from kaizen.signatures import Signature

DEFAULT_INSTRUCTIONS = (
    "You are an autonomous agent. Use the available tools to complete the task step by step. "
    "When the task is done, answer without calling a tool."
)
PLANNING_INSTRUCTIONS = (
    "Before your first tool call, write a short numbered plan of the steps you will take. "
    "Follow it, and restate the plan whenever it changes."
)


def system_prompt(signature: Signature | None, override: str | None, *, planning: bool = False) -> str:
    """The run's first message: ``override`` as given, or the default instructions (with the
    planning instruction when ``planning``) plus the signature's instructions and output keys."""
    if override:
        return override
    parts = [DEFAULT_INSTRUCTIONS]
    if planning:
        parts.append(PLANNING_INSTRUCTIONS)
    if signature is not None:
        if signature.instructions:
            parts.append(signature.instructions)
        outputs = signature.output_fields
        if len(outputs) > 1:
            keys = ", ".join(f"{name} ({spec.description or spec.type_name})" for name, spec in outputs.items())
            parts.append(f"Give the final answer as a JSON object with the keys: {keys}.")
    return "\n\n".join(parts)


def user_prompt(signature: Signature | None, inputs: dict[str, Any]) -> str:
    if signature is None:
        return "\n".join(f"{name}: {value}" for name, value in inputs.items())
    lines = []
    for name, spec in signature.input_fields.items():
        label = f"{name} ({spec.description})" if spec.description else name
        lines.append(f"{label}: {inputs.get(name)}")
    return "\n".join(lines)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def parse_outputs(signature: Signature | None, content: str) -> dict[str, Any]:
    """One output field gets the whole answer; several are read from a JSON object."""
    names = list(signature.output_fields) if signature is not None else ["result"]
    if len(names) == 1:
        return {names[0]: content}
    text = content.strip()
    fenced = _FENCE.match(text)
    try:
        data = json.loads(fenced.group(1) if fenced else text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        return {name: data.get(name) for name in names}
    return {names[0]: content, **{name: None for name in names[1:]}}
