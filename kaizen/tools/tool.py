"""``Tool``: a callable the model may use, with the schema that describes it."""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from kaizen.core.bridge import is_async_callable

from .errors import InvalidToolError
from .schema import description_from_doc, schema_from_function

if TYPE_CHECKING:
    from kaizen.providers.types import ToolSpec

TOOL_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

Danger = Literal["read_only", "idempotent", "side_effect"]
"""What running a tool does to the world: nothing ("read_only"), the same thing however often it
runs ("idempotent"), or something that must not happen twice ("side_effect", the default)."""
LegacyDanger = Literal["safe", "dangerous"]
DANGER_LEVELS: tuple[Danger, ...] = get_args(Danger)
DEFAULT_DANGER: Danger = "side_effect"
LEGACY_DANGER: dict[str, Danger] = {"safe": "read_only", "dangerous": "side_effect"}
RERUNNABLE: frozenset[Danger] = frozenset({"read_only", "idempotent"})


def check_danger(value: object, tool_name: str = "?") -> Danger:
    """``value`` as a ``Danger`` (the earlier names "safe"/"dangerous" map to read_only/side_effect)."""
    if isinstance(value, str) and value in LEGACY_DANGER:
        return LEGACY_DANGER[value]
    if isinstance(value, str) and value in DANGER_LEVELS:
        return value
    raise InvalidToolError(
        f"danger of tool {tool_name!r} must be one of {', '.join(DANGER_LEVELS)}, got {value!r}"
    )


@dataclass(frozen=True)
class Tool:
    """A named function plus the JSON Schema of its keyword arguments.

    ``danger`` is declared by whoever defines the tool (see ``Danger``): "read_only" tools only
    read or compute, "idempotent" ones change the world the same way however often they run,
    "side_effect" ones (the default) must not run twice. Permission policies use it, and after
    a crash interrupted a call, only a read-only or idempotent tool is run again. The earlier
    names "safe" and "dangerous" are accepted and stored as "read_only" and "side_effect".
    ``func`` may be sync or async.
    """

    name: str
    description: str
    parameters: dict[str, Any]
    danger: Danger
    func: Callable[..., Any] = field(compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not TOOL_NAME_PATTERN.fullmatch(self.name):
            raise InvalidToolError(
                f"invalid tool name {self.name!r}: use a letter followed by up to 63 letters, "
                "digits, '_' or '-' (providers reject other names)"
            )
        if not isinstance(self.description, str):
            raise InvalidToolError(f"description of tool {self.name!r} must be a str, got {type(self.description).__name__}")
        object.__setattr__(self, "danger", check_danger(self.danger, self.name))
        if not callable(self.func):
            raise InvalidToolError(f"func of tool {self.name!r} must be callable, got {type(self.func).__name__}")
        object.__setattr__(self, "parameters", _checked_parameters(self.name, self.parameters))

    @classmethod
    def from_function(
        cls,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        danger: Danger | LegacyDanger = DEFAULT_DANGER,
    ) -> Tool:
        """Build a tool from a plain function: schema from type hints, description from the docstring."""
        return cls(
            name=name if name is not None else getattr(func, "__name__", ""),
            description=description if description is not None else description_from_doc(inspect.getdoc(func)),
            parameters=schema_from_function(func),
            danger=check_danger(danger, name or str(getattr(func, "__name__", "?"))),
            func=func,
        )

    @property
    def rerunnable(self) -> bool:
        """True when running the tool again after an interrupted call is harmless."""
        return self.danger in RERUNNABLE

    @property
    def is_async(self) -> bool:
        """True when ``func`` is an ``async def`` function (or an object whose ``__call__`` is one)."""
        return is_async_callable(self.func)

    def spec_dict(self) -> dict[str, Any]:
        """The provider-neutral description of the tool as a plain dict (a copy)."""
        spec: dict[str, Any] = {"name": self.name, "description": self.description,
                                "parameters": copy.deepcopy(self.parameters)}
        return spec

    def spec(self) -> ToolSpec:
        """The tool as ``kaizen.providers.types.ToolSpec`` (imported lazily to keep packages decoupled)."""
        from kaizen.providers.types import ToolSpec

        return ToolSpec(name=self.name, description=self.description, parameters=copy.deepcopy(self.parameters))


def _checked_parameters(name: str, parameters: Any) -> dict[str, Any]:
    """A private JSON copy of the schema, after checking it describes an object."""
    if not isinstance(parameters, Mapping):
        raise InvalidToolError(f"parameters of tool {name!r} must be a JSON Schema dict, got {type(parameters).__name__}")
    try:
        schema: dict[str, Any] = json.loads(json.dumps(parameters, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidToolError(f"parameters of tool {name!r} are not JSON: {exc}") from exc
    if schema.get("type", "object") != "object":
        raise InvalidToolError(f"parameters of tool {name!r} must have type 'object', got {schema.get('type')!r}")
    schema["type"] = "object"
    properties = schema.get("properties", {})
    if not isinstance(properties, dict) or not all(isinstance(p, dict) for p in properties.values()):
        raise InvalidToolError(f"parameters.properties of tool {name!r} must map names to schema dicts")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise InvalidToolError(f"parameters.required of tool {name!r} must be a list of names")
    undeclared = [r for r in required if "properties" in schema and r not in properties]
    if undeclared:
        raise InvalidToolError(f"tool {name!r} requires argument {undeclared[0]!r} that is not in parameters.properties")
    return schema
