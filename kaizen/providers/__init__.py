"""LLM providers speaking the real wire formats (Ollama, OpenAI, Anthropic) plus a scripted one.

Agents depend only on the wire-neutral types and the :class:`LLMProvider`
protocol; ``get_provider`` turns a configured name into an instance.
"""

from __future__ import annotations

from .anthropic import AnthropicProvider
from .errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderUnavailableError,
    ScriptExhaustedError,
)
from .httpclient import RetryPolicy
from .ollama import OllamaProvider
from .openai import OpenAIProvider
from .registry import PROVIDERS, get_provider
from .scripted import ScriptedProvider
from .toolchoice import NamedTool, ToolChoice, ToolChoiceMode
from .types import LLMProvider, LLMResponse, Message, ToolCall, ToolSpec, Usage

__all__ = [
    "PROVIDERS",
    "AnthropicProvider",
    "LLMProvider",
    "LLMResponse",
    "Message",
    "NamedTool",
    "OllamaProvider",
    "OpenAIProvider",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderRequestError",
    "ProviderResponseError",
    "ProviderUnavailableError",
    "RetryPolicy",
    "ScriptExhaustedError",
    "ScriptedProvider",
    "ToolCall",
    "ToolChoice",
    "ToolChoiceMode",
    "ToolSpec",
    "Usage",
    "get_provider",
]
