"""get_provider and the environment defaults of each provider."""

from __future__ import annotations

import pytest

from kaizen.providers import AnthropicProvider, OllamaProvider, OpenAIProvider, get_provider
from kaizen.providers.ollama import ollama_base_url

from .conftest import RecordingServer, load_fixture


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("ollama", OllamaProvider),
        ("openai", OpenAIProvider),
        ("anthropic", AnthropicProvider),
        (" OpenAI ", OpenAIProvider),
    ],
)
def test_get_provider_by_name(name: str, cls: type) -> None:
    assert isinstance(get_provider(name), cls)


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider 'gemini'; valid names: anthropic, ollama, openai, scripted"):
        get_provider("gemini")


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match="no option 'temprature'"):
        get_provider("openai", temprature=0.1)
    with pytest.raises(ValueError, match="responses"):
        get_provider("scripted")


def test_common_options_are_passed(server: RecordingServer) -> None:
    provider = get_provider("openai", base_url=server.url + "/v1/", api_key="k-123456", timeout=3.0)
    assert provider.url == server.url + "/v1/chat/completions"  # type: ignore[attr-defined]
    server.reply(200, load_fixture("openai_text.json")["response"]["body"])
    provider.chat([], model="m")
    assert server.requests[0].headers["authorization"] == "Bearer k-123456"
    anthropic = get_provider("anthropic", base_url="https://example.test/v1", api_key="x", max_tokens=99)
    assert anthropic.url == "https://example.test/v1/messages"  # type: ignore[attr-defined]


def test_env_defaults(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> None:
    assert OpenAIProvider().url == "https://api.openai.com/v1/chat/completions"
    assert AnthropicProvider().url == "https://api.anthropic.com/v1/messages"
    assert OllamaProvider().url == "http://localhost:11434/api/chat"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://proxy.local:9000")
    assert OpenAIProvider().url == "http://localhost:8000/v1/chat/completions"
    assert AnthropicProvider().url == "http://proxy.local:9000/v1/messages"

    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    server.reply(200, load_fixture("anthropic_text.json")["response"]["body"])
    AnthropicProvider().chat([], model="m")
    assert server.requests[0].headers["x-api-key"] == "sk-ant-from-env"


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("", "http://localhost:11434"),
        ("example.com", "http://example.com:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("0.0.0.0", "http://127.0.0.1:11434"),
        (":9999", "http://127.0.0.1:9999"),
        ("http://ollama.internal", "http://ollama.internal:80"),
        ("https://ollama.example.com/", "https://ollama.example.com:443"),
        ("https://gw.example.com:8443/ollama/", "https://gw.example.com:8443/ollama"),
        ("[::1]:11435", "http://[::1]:11435"),
        ("::1", "http://[::1]:11434"),
    ],
)
def test_ollama_host_forms(value: str, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ollama_base_url(value) == url
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert OllamaProvider().base_url == url


@pytest.mark.parametrize("value", ["example.com:port", "ftp://example.com", "example.com:70000"])
def test_bad_ollama_host_is_reported(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    with pytest.raises(ValueError, match="OLLAMA_HOST"):
        OllamaProvider()
