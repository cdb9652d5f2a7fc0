"""Errors raised by LLM providers.

Every error carries ``.provider`` and ``.url`` and its message says what failed
and, where we can tell, how to fix it: an agent run that dies on a provider
error should be fixable from the message alone. Messages never contain an API
key (bodies of auth failures are not quoted at all, since some servers echo
part of the key back).
"""

from __future__ import annotations


class ProviderError(Exception):
    """Base class of every provider error."""

    def __init__(self, provider: str, url: str, message: str, *, status_code: int | None = None) -> None:
        self.provider = provider
        self.url = url
        self.message = message
        self.status_code = status_code
        where = f"{provider} ({url})" if url else provider
        super().__init__(f"{where}: {message}")


class ProviderUnavailableError(ProviderError):
    """The server could not be reached (refused, DNS, timeout) or kept failing with 5xx."""


class ProviderAuthError(ProviderError):
    """The server rejected our credentials (HTTP 401/403); retrying cannot help."""


class ProviderRateLimitError(ProviderError):
    """The server kept answering HTTP 429 after all retries."""


class ProviderRequestError(ProviderError):
    """The server rejected the request itself (other 4xx: bad model name, bad body)."""


class ProviderResponseError(ProviderError):
    """The server answered, but not with the JSON shape its API documents."""


class ScriptExhaustedError(ProviderError):
    """A scripted provider was asked for more responses than its script holds."""


__all__ = [
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimitError",
    "ProviderRequestError",
    "ProviderResponseError",
    "ProviderUnavailableError",
    "ScriptExhaustedError",
]
