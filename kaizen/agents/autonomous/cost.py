"""Cost estimates from usage counts and token usage.

Prices come in the spec's flat form (``{"LLM": 0.01, "Bash": 0.001}``: dollars
per call) and/or per model per million tokens::

    {"tools": {"LLM": 0.01}, "models": {"gpt-4o-mini": {"input_per_million": 0.15,
                                                        "output_per_million": 0.6}}}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class ModelPrice:
    input_per_million: float = 0.0
    output_per_million: float = 0.0

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_per_million + output_tokens * self.output_per_million) / 1_000_000


@dataclass(frozen=True)
class Prices:
    """Per-call prices by tool name and per-token prices by model."""

    tools: dict[str, float] = field(default_factory=dict)
    models: dict[str, ModelPrice] = field(default_factory=dict)

    @classmethod
    def parse(cls, raw: Mapping[str, Any] | Prices | None) -> Prices:
        if raw is None:
            return cls()
        if isinstance(raw, Prices):
            return raw
        if not isinstance(raw, Mapping):
            raise ConfigError(f"prices must be a mapping, got {type(raw).__name__}")
        tools: dict[str, float] = {}
        models: dict[str, ModelPrice] = {}
        for key, value in raw.items():
            if key == "tools":
                tools.update({str(k): _price(v, f"prices.tools.{k}") for k, v in _mapping(value, "tools").items()})
            elif key == "models":
                for model, spec in _mapping(value, "models").items():
                    spec = _mapping(spec, f"models.{model}")
                    unknown = set(spec) - {"input_per_million", "output_per_million"}
                    if unknown:
                        raise ConfigError(f"prices.models.{model}: unknown key(s) {', '.join(sorted(unknown))}; "
                                          "use input_per_million and output_per_million")
                    models[str(model)] = ModelPrice(
                        _price(spec.get("input_per_million", 0.0), f"prices.models.{model}.input_per_million"),
                        _price(spec.get("output_per_million", 0.0), f"prices.models.{model}.output_per_million"),
                    )
            else:
                tools[str(key)] = _price(value, f"prices.{key}")
        return cls(tools, models)


@dataclass(frozen=True)
class CostEstimate:
    """What a run cost: by tool (per-call prices), by model (tokens), and in total (USD)."""

    by_tool: dict[str, float]
    by_model: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.by_tool.values()) + sum(self.by_model.values())

    def __float__(self) -> float:
        return self.total


def estimate_cost(counts: Mapping[str, int], token_usage: Mapping[str, Mapping[str, int]],
                  prices: Mapping[str, Any] | Prices | None) -> CostEstimate:
    parsed = Prices.parse(prices)
    by_tool = {tool: counts.get(tool, 0) * price for tool, price in parsed.tools.items() if counts.get(tool, 0)}
    by_model = {
        model: parsed.models[model].cost(usage.get("input_tokens", 0), usage.get("output_tokens", 0))
        for model, usage in token_usage.items() if model in parsed.models
    }
    return CostEstimate(by_tool, by_model)


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"prices.{where} must be a table/mapping, got {type(value).__name__}")
    return value


def _price(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where} must be a number >= 0 (dollars), got {value!r}")
    return float(value)
