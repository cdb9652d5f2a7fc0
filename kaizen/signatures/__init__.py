"""Declarative task I/O: what an agent is given and what it must produce.

    class TaskSignature(Signature):
        task: str = InputField(description="Task to perform")
        result: str = OutputField(description="Result")

The fields are collected when the class is created, so a typo in a field
declaration fails at import time, not in the middle of a run.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import SignatureError

_MISSING: Any = object()


@dataclass(frozen=True)
class FieldSpec:
    """One declared input or output."""

    name: str
    kind: str  # "input" | "output"
    type: Any
    description: str
    default: Any = _MISSING

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))


class _Field:
    kind: ClassVar[str]

    def __init__(self, description: str = "", *, default: Any = _MISSING) -> None:
        if not isinstance(description, str):
            raise SignatureError(f"description must be a str, got {type(description).__name__}")
        self.description = description
        self.default = default

    def __repr__(self) -> str:
        return f"{type(self).__name__}(description={self.description!r})"


class InputField(_Field):
    """Declares an input of a signature."""

    kind = "input"


class OutputField(_Field):
    """Declares an output of a signature."""

    kind = "output"




def _matches(value: Any, expected: Any) -> bool:
    origin = typing.get_origin(expected) or expected
    if expected is Any or not isinstance(origin, type):
        return True  # unions and other typing forms are not checked here
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, origin)


class Signature:
    """Base class of task signatures; subclass it and declare fields."""

    _fields: ClassVar[dict[str, FieldSpec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable forward references: keep the text
            hints = dict(getattr(cls, "__annotations__", {}))
        collected: dict[str, FieldSpec] = {}
        for base in reversed(cls.__mro__[1:]):
            collected.update(getattr(base, "_fields", {}))
        for name, value in list(vars(cls).items()):
            if isinstance(value, _Field):
                collected[name] = FieldSpec(name, value.kind, hints.get(name, Any), value.description, value.default)
        cls._fields = collected

    @property
    def instructions(self) -> str:
        """The class docstring: what the task is, for the model's system prompt."""
        return (type(self).__doc__ or "").strip()

    @property
    def input_fields(self) -> dict[str, FieldSpec]:
        return {n: f for n, f in self._fields.items() if f.kind == "input"}

    @property
    def output_fields(self) -> dict[str, FieldSpec]:
        return {n: f for n, f in self._fields.items() if f.kind == "output"}

    # Short names used by the original framework.
    inputs = input_fields
    outputs = output_fields

    def validate_inputs(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check ``values`` against the inputs; defaults fill what is absent."""
        return self._validate(values, self.input_fields, "input")

    def validate_outputs(self, values: dict[str, Any]) -> dict[str, Any]:
        return self._validate(values, self.output_fields, "output")

    def _validate(self, values: dict[str, Any], specs: dict[str, FieldSpec], kind: str) -> dict[str, Any]:
        name = type(self).__name__
        if not isinstance(values, dict):
            raise SignatureError(f"{name}: {kind}s must be a dict, got {type(values).__name__}")
        extra = sorted(set(values) - set(specs))
        if extra:
            raise SignatureError(
                f"{name}: unexpected {kind}(s) {', '.join(extra)}; declared: {', '.join(specs) or 'none'}"
            )
        missing = [n for n, spec in specs.items() if spec.required and n not in values]
        if missing:
            raise SignatureError(f"{name}: missing {kind}(s) {', '.join(missing)}")
        out: dict[str, Any] = {}
        for field_name, spec in specs.items():
            value = values.get(field_name, spec.default)
            if field_name in values and not _matches(value, spec.type):
                raise SignatureError(
                    f"{name}: {kind} {field_name} must be {spec.type_name}, got {type(value).__name__}"
                )
            out[field_name] = value
        return out

    def __repr__(self) -> str:
        ins = ", ".join(self.input_fields)
        outs = ", ".join(self.output_fields)
        return f"{type(self).__name__}({ins} -> {outs})"


__all__ = ["FieldSpec", "InputField", "OutputField", "Signature", "SignatureError"]
