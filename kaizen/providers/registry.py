"""Build a provider from a name and options (for configuration files and CLIs)."""

from __future__ import annotations

import inspect
from typing import Any

from .anthropic import AnthropicProvider
from .ollama import OllamaProvider
from .openai import OpenAIProvider
from .scripted import ScriptedProvider
from .types import LLMProvider

PROVIDERS: dict[str, type] = {
    "anthropic": AnthropicProvider,
    "ollama": OllamaProvider,
    "openai": OpenAIProvider,
    "scripted": ScriptedProvider,
}

# Connection options every provider accepts so callers can pass them uniformly;
# the offline scripted provider has no connection and ignores them.
_CONNECTION_OPTIONS = ("base_url", "api_key", "timeout")


def get_provider(name: str, **options: Any) -> LLMProvider:
    """Return the provider called ``name`` built with ``options``.

    ``base_url``, ``api_key`` and ``timeout`` work for every provider; other
    options go to the provider's constructor (e.g. ``max_tokens`` for
    anthropic, ``responses`` for scripted). Unknown names or options raise
    ValueError listing what is valid.
    """
    key = name.strip().lower() if isinstance(name, str) else name
    cls = PROVIDERS.get(key)
    if cls is None:
        raise ValueError(f"unknown provider {name!r}; valid names: {', '.join(sorted(PROVIDERS))}")
    if cls is ScriptedProvider:
        options = {k: v for k, v in options.items() if k not in _CONNECTION_OPTIONS}
        if "responses" not in options:
            raise ValueError("the scripted provider needs responses=[...] (a list of str, dict or LLMResponse)")
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("self",)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"provider {key!r} has no option {unknown[0]!r}; valid options: {', '.join(accepted)}")
    provider: LLMProvider = cls(**options)
    return provider
