"""Failure handling of the HTTP providers: what is retried, what is raised, what is said."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from kaizen.providers import (
    AnthropicProvider,
    LLMProvider,
    Message,
    OllamaProvider,
    OpenAIProvider,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimitError,
    ProviderRequestError,
    ProviderResponseError,
    ProviderUnavailableError,
    RetryPolicy,
)
from kaizen.providers.httpclient import ErrorHints, JSONClient, parse_retry_after

from .conftest import RecordingServer, load_fixture

KEY = "sk-test-SECRET-kaizen-4242"
FAST = {"backoff_base": 0.001, "backoff_max": 0.01}

Factory = Callable[..., Any]
PROVIDERS: dict[str, tuple[Factory, str, str, str]] = {
    # name: (factory(base, max_retries, timeout), model, fixture with a valid answer, env var of the key)
    "ollama": (
        lambda base, n, t=5.0: OllamaProvider(base, timeout=t, max_retries=n, api_key=KEY, **FAST),
        "llama3.2",
        "ollama_text.json",
        "OLLAMA_API_KEY",
    ),
    "openai": (
        lambda base, n, t=5.0: OpenAIProvider(base + "/v1", api_key=KEY, timeout=t, max_retries=n, **FAST),
        "gpt-4o-mini",
        "openai_text.json",
        "OPENAI_API_KEY",
    ),
    "anthropic": (
        lambda base, n, t=5.0: AnthropicProvider(base, api_key=KEY, timeout=t, max_retries=n, **FAST),
        "claude-sonnet-4-5",
        "anthropic_text.json",
        "ANTHROPIC_API_KEY",
    ),
}
NAMES = sorted(PROVIDERS)
HELLO = [Message("user", "hi")]


def make(name: str, base: str, max_retries: int = 2, timeout: float = 5.0) -> LLMProvider:
    return PROVIDERS[name][0](base, max_retries, timeout)


def chat(provider: LLMProvider, name: str) -> Any:
    return provider.chat(HELLO, model=PROVIDERS[name][1])


def valid_body(name: str) -> dict[str, Any]:
    return load_fixture(PROVIDERS[name][2])["response"]["body"]


def assert_names_provider_and_url(err: ProviderError, name: str, provider: LLMProvider) -> None:
    assert err.provider == name
    assert err.url == provider.url  # type: ignore[attr-defined]
    assert name in str(err) and provider.url in str(err)  # type: ignore[attr-defined]
    assert KEY not in str(err) and "SECRET" not in str(err)


@pytest.mark.parametrize("name", NAMES)
def test_connection_refused_is_unavailable_and_names_provider_and_url(name: str, unused_url: str) -> None:
    provider = make(name, unused_url, max_retries=1)
    with pytest.raises(ProviderUnavailableError) as info:
        chat(provider, name)
    assert_names_provider_and_url(info.value, name, provider)
    assert "is the server running?" in str(info.value)
    assert "after 2 attempt(s)" in str(info.value)


def test_ollama_unavailable_message_says_how_to_point_at_the_server(unused_url: str) -> None:
    with pytest.raises(ProviderUnavailableError, match="OLLAMA_HOST / base_url"):
        OllamaProvider(unused_url, max_retries=0).chat(HELLO, model="llama3.2")


@pytest.mark.parametrize("name", NAMES)
def test_timeout_is_unavailable(name: str, server: RecordingServer) -> None:
    server.reply(200, valid_body(name), delay=0.5)
    provider = make(name, server.url, max_retries=0, timeout=0.1)
    with pytest.raises(ProviderUnavailableError, match="timeout"):
        chat(provider, name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("status", [401, 403])
def test_auth_failure_is_not_retried_and_hides_the_key(name: str, status: int, server: RecordingServer) -> None:
    # OpenAI echoes part of the key in its 401 text; none of it may reach our message.
    echoed = f"Incorrect API key provided: {KEY[:8]}****{KEY[-4:]}"
    body = {"error": {"message": echoed, "type": "invalid_request_error"}}
    server.reply(status, body)
    provider = make(name, server.url, max_retries=3)
    with pytest.raises(ProviderAuthError) as info:
        chat(provider, name)
    assert len(server.requests) == 1
    assert info.value.status_code == status
    assert_names_provider_and_url(info.value, name, provider)
    assert KEY[-4:] not in str(info.value) and KEY[:8] not in str(info.value)
    assert PROVIDERS[name][3] in str(info.value)  # says which variable to set


def test_missing_key_is_called_out(server: RecordingServer) -> None:
    server.reply(401, {"error": {"message": "You didn't provide an API key.", "type": "invalid_request_error"}})
    with pytest.raises(ProviderAuthError, match="no API key was sent: set OPENAI_API_KEY"):
        OpenAIProvider(server.url + "/v1", max_retries=0).chat(HELLO, model="gpt-4o-mini")
    assert "authorization" not in server.requests[0].headers


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_error_then_success_is_retried(name: str, status: int, server: RecordingServer) -> None:
    server.reply(status, {"error": "warming up"})
    server.reply(200, valid_body(name))
    result = chat(make(name, server.url, max_retries=2), name)
    assert result.content == "Bonjour !"
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


@pytest.mark.parametrize("name", NAMES)
def test_persistent_server_error_becomes_unavailable(name: str, server: RecordingServer) -> None:
    for _ in range(3):
        server.reply(503, {"error": {"type": "overloaded_error", "message": "Overloaded"}})
    provider = make(name, server.url, max_retries=2)
    with pytest.raises(ProviderUnavailableError) as info:
        chat(provider, name)
    assert len(server.requests) == 3
    assert info.value.status_code == 503
    assert "Overloaded" in str(info.value) and "after 2 retries" in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_rate_limit_retries_then_raises(name: str, server: RecordingServer) -> None:
    for _ in range(4):
        server.reply(429, {"error": {"type": "rate_limit_error", "message": "slow down"}}, headers={"retry-after": "0"})
    provider = make(name, server.url, max_retries=3)
    with pytest.raises(ProviderRateLimitError) as info:
        chat(provider, name)
    assert len(server.requests) == 4  # the first try + max_retries
    assert_names_provider_and_url(info.value, name, provider)
    assert "slow down" in str(info.value)


def test_rate_limit_honours_retry_after(server: RecordingServer) -> None:
    slept: list[float] = []
    client = JSONClient(
        "ollama",
        headers={},
        timeout=5.0,
        retry=RetryPolicy(max_retries=2, backoff_base=0.001, retry_after_max=60.0),
        hints=ErrorHints(unavailable="", auth=""),
        sleep=slept.append,
    )
    server.reply(429, {"error": "busy"}, headers={"retry-after": "7"})
    server.reply(503, {"error": "busy"}, headers={"retry-after": "3600"})  # capped
    server.reply(200, {"ok": True})
    assert client.post(server.url + "/api/chat", {"x": 1}) == {"ok": True}
    assert slept == [7.0, 60.0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(name: str, status: int, server: RecordingServer) -> None:
    server.reply(status, {"error": {"type": "invalid_request_error", "message": f"model: bad value ({KEY})"}})
    provider = make(name, server.url, max_retries=3)
    with pytest.raises(ProviderRequestError) as info:
        chat(provider, name)
    assert len(server.requests) == 1
    assert "model: bad value" in str(info.value)
    assert_names_provider_and_url(info.value, name, provider)


def test_ollama_404_suggests_pulling_the_model(server: RecordingServer) -> None:
    server.reply(404, {"error": "model 'llama9' not found"})
    with pytest.raises(ProviderRequestError, match=r"model 'llama9' not found.*ollama pull"):
        OllamaProvider(server.url).chat(HELLO, model="llama9")


@pytest.mark.parametrize("name", NAMES)
def test_non_json_body_is_a_response_error(name: str, server: RecordingServer) -> None:
    server.reply(200, b"<html><body>Welcome to nginx!</body></html>", headers={"content-type": "text/html"})
    provider = make(name, server.url)
    with pytest.raises(ProviderResponseError) as info:
        chat(provider, name)
    assert_names_provider_and_url(info.value, name, provider)
    assert "not JSON" in str(info.value) and "text/html" in str(info.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("ollama", {"model": "llama3.2", "done": True}, "message"),
        (
            "ollama",
            {"message": {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]}},
            "message.tool_calls[0].function.name",
        ),
        ("openai", {"id": "chatcmpl-1", "object": "chat.completion"}, "choices"),
        ("openai", {"choices": [{"index": 0, "finish_reason": "stop"}]}, "choices[0].message"),
        ("openai", {"choices": [{"message": {"content": 3}}]}, "choices[0].message.content"),
        ("anthropic", {"type": "message", "role": "assistant"}, "content"),
        ("anthropic", {"content": [{"type": "tool_use", "name": "f", "input": {}}]}, "content[0].id"),
    ],
)
def test_missing_or_wrong_fields_are_named(
    name: str, body: dict[str, Any], field: str, server: RecordingServer
) -> None:
    server.reply(200, body)
    with pytest.raises(ProviderResponseError) as info:
        chat(make(name, server.url), name)
    assert f"response field {field!r}" in str(info.value)


def test_openai_malformed_arguments_name_the_tool(server: RecordingServer) -> None:
    body = valid_body("openai")
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": '{"path": "a.txt"'}}
    ]
    server.reply(200, body)
    with pytest.raises(ProviderResponseError, match=r"of tool 'Read' is not valid JSON"):
        chat(make("openai", server.url), "openai")


def test_openai_arguments_that_are_not_an_object_name_the_tool(server: RecordingServer) -> None:
    body = valid_body("openai")
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": "[1, 2]"}}
    ]
    server.reply(200, body)
    with pytest.raises(ProviderResponseError, match=r"of tool 'Read' should decode to a JSON object"):
        chat(make("openai", server.url), "openai")


def test_bad_scheme_is_reported() -> None:
    with pytest.raises(ValueError, match="not an http"):
        OpenAIProvider("ftp://example.com")
    with pytest.raises(ValueError, match="not an http"):
        AnthropicProvider("api.anthropic.com")


@pytest.mark.parametrize("name", NAMES)
def test_repr_never_shows_the_key(name: str, server: RecordingServer) -> None:
    provider = make(name, server.url)
    assert KEY not in repr(provider)


def test_bad_arguments_fail_before_any_request(server: RecordingServer) -> None:
    provider = make("openai", server.url)
    with pytest.raises(ValueError, match="model"):
        provider.chat(HELLO, model="")
    with pytest.raises(TypeError, match=r"messages\[0\]"):
        provider.chat([{"role": "user", "content": "hi"}], model="m")  # type: ignore[list-item]
    assert server.requests == []


def test_retry_policy_backoff_grows_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(max_retries=5, backoff_base=1.0, backoff_max=4.0)
    rng = random.Random(0)
    delays = [policy.backoff(n, rng) for n in range(5)]
    for n, delay in enumerate(delays):
        ceiling = min(4.0, 2.0**n)
        assert ceiling / 2 <= delay <= ceiling
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(max_retries=-1)


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0"}) == 0.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    # HTTP-date form, relative to a fixed "now"
    when = "Wed, 21 Oct 2015 07:28:30 GMT"
    assert parse_retry_after({"retry-after": when}, now=1445412500.0) == pytest.approx(10.0)
    assert parse_retry_after({"retry-after": when}, now=1445412600.0) == 0.0
