"""The one place that talks HTTP: JSON POSTs with retries and error mapping.

All three HTTP providers share this, so retry rules, error messages and the
"never leak the API key" rule are written (and tested) once.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import httpx
import orjson

from kaizen.core.values import is_int

from .errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderUnavailableError,
)

log = logging.getLogger("kaizen.providers")

#: Statuses worth retrying: rate limits, overload (529 is Anthropic's) and gateway hiccups.
RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504, 529})
_RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_SNIPPET = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before retrying a failed call.

    Delays grow as ``backoff_base * 2**n`` (capped at ``backoff_max``) with
    jitter so that many agents hitting one server do not retry in lockstep.
    A server's ``Retry-After`` wins over the computed delay, up to
    ``retry_after_max`` so a hostile header cannot stall an agent for hours.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0

    def __post_init__(self) -> None:
        if not is_int(self.max_retries) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        for name in ("backoff_base", "backoff_max", "retry_after_max"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """Delay before retry ``retry_number`` (0-based): half fixed, half random."""
        ceiling = min(float(self.backoff_max), self.backoff_base * 2.0**retry_number)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class ErrorHints:
    """Provider-specific advice appended to error messages."""

    unavailable: str
    auth: str
    not_found: str = ""


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be seconds or an HTTP date; unparsable values are
    ignored (we fall back to our own backoff rather than fail the call).
    """
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = datetime.now(timezone.utc).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


class Redactor:
    """Removes secrets from any text that may reach an error message or a log."""

    def __init__(self, secrets: Sequence[str | None]) -> None:
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _error_detail(response: httpx.Response, redact: Redactor) -> str:
    """The server's own error message (OpenAI, Anthropic and Ollama shapes), shortened."""
    text = response.text
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, str):
            text = err
        elif isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type")
            text = f"{kind}: {err['message']}" if isinstance(kind, str) else err["message"]
        elif isinstance(data.get("message"), str):
            text = data["message"]
    text = redact(" ".join(text.split()))
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."


def _auth_detail(response: httpx.Response) -> str:
    """Only the error *type* of an auth failure: its text may echo part of the key."""
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    err = data.get("error") if isinstance(data, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    return f" ({kind})" if isinstance(kind, str) else ""


def _describe_transport_error(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting timed out"
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer within the timeout ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"could not connect ({exc})"
    return f"{type(exc).__name__}: {exc}"


class JSONClient:
    """POSTs JSON to one provider's server, retrying what is worth retrying.

    One ``httpx.Client`` per provider instance keeps connections pooled; it is
    thread-safe, which is what lets ``achat`` run ``chat`` in worker threads.
    """

    def __init__(
        self,
        provider: str,
        *,
        headers: Mapping[str, str],
        timeout: float | None,
        retry: RetryPolicy,
        hints: ErrorHints,
        secrets: Sequence[str | None] = (),
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ValueError(f"{provider}: timeout must be a number of seconds > 0 or None, got {timeout!r}")
        self.provider = provider
        self.retry = retry
        self.hints = hints
        self._redact = Redactor(secrets)
        self._sleep = sleep
        self._rng = random.Random()
        self._client = httpx.Client(
            headers={"content-type": "application/json", "accept": "application/json", **headers},
            timeout=httpx.Timeout(timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` and return the decoded JSON object, or raise a ProviderError."""
        return self._send("POST", url, orjson.dumps(body))

    def get(self, url: str) -> dict[str, Any]:
        """GET ``url`` (e.g. a model list) with the same retries and errors as ``post``."""
        return self._send("GET", url, None)

    def _send(self, method: str, url: str, payload: bytes | None) -> dict[str, Any]:
        retries = 0
        while True:
            try:
                response = self._client.request(method, url, content=payload)
            except _RETRY_EXCEPTIONS as exc:
                if retries < self.retry.max_retries:
                    self._wait(method, url, retries, None, _describe_transport_error(exc))
                    retries += 1
                    continue
                raise ProviderUnavailableError(
                    self.provider,
                    url,
                    f"{_describe_transport_error(exc)} after {retries + 1} attempt(s); "
                    f"is the server running? {self.hints.unavailable}",
                ) from exc
            except httpx.UnsupportedProtocol as exc:
                raise ProviderError(
                    self.provider, url, "the URL has no usable scheme; base_url must start with http:// or https://"
                ) from exc
            except httpx.HTTPError as exc:  # proxy errors, invalid URLs, local protocol errors
                raise ProviderError(self.provider, url, f"request failed: {_describe_transport_error(exc)}") from exc

            status = response.status_code
            if 200 <= status < 300:
                return self._decode(url, response)
            if status in (401, 403):
                raise ProviderAuthError(
                    self.provider,
                    url,
                    f"HTTP {status} {response.reason_phrase}{_auth_detail(response)}: the server rejected the "
                    f"credentials; {self.hints.auth}",
                    status_code=status,
                )
            if status in RETRY_STATUSES and retries < self.retry.max_retries:
                self._wait(method, url, retries, parse_retry_after(response.headers), f"HTTP {status}")
                retries += 1
                continue
            raise self._status_error(url, response, retries)

    def _wait(self, method: str, url: str, retries: int, retry_after: float | None, why: str) -> None:
        if retry_after is not None:
            delay = min(retry_after, self.retry.retry_after_max)
        else:
            delay = self.retry.backoff(retries, self._rng)
        log.warning(
            "%s: %s %s failed (%s); retry %d/%d in %.2fs",
            self.provider, method, url, why, retries + 1, self.retry.max_retries, delay,
        )
        if delay > 0:
            self._sleep(delay)

    def _status_error(self, url: str, response: httpx.Response, retries: int) -> ProviderError:
        status = response.status_code
        detail = _error_detail(response, self._redact)
        tried = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        if status == 429:
            return ProviderRateLimitError(
                self.provider,
                url,
                f"rate limited (HTTP 429){tried}: {detail}; wait and retry, send fewer requests, "
                "or raise max_retries",
                status_code=status,
            )
        if status >= 500 or status in RETRY_STATUSES:
            return ProviderUnavailableError(
                self.provider,
                url,
                f"server error HTTP {status}{tried}: {detail}; the server is failing or overloaded, try again later",
                status_code=status,
            )
        if 300 <= status < 400:
            target = response.headers.get("location", "another address")
            return ProviderRequestError(
                self.provider,
                url,
                f"HTTP {status} redirect to {target}; set base_url to the final address",
                status_code=status,
            )
        hint = f"; {self.hints.not_found}" if status == 404 and self.hints.not_found else ""
        return ProviderRequestError(
            self.provider, url, f"request rejected with HTTP {status}: {detail}{hint}", status_code=status
        )

    def _decode(self, url: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            snippet = self._redact(response.text[:120])
            raise ProviderResponseError(
                self.provider,
                url,
                f"response body is not JSON (content-type {response.headers.get('content-type', 'unknown')!r}, "
                f"starts with {snippet!r}); check that base_url points at the {self.provider} API",
                status_code=response.status_code,
            ) from None
        if not isinstance(data, dict):
            raise ProviderResponseError(
                self.provider,
                url,
                f"response body is JSON {type(data).__name__}, expected an object; "
                f"check that base_url points at the {self.provider} API",
                status_code=response.status_code,
            )
        return data
