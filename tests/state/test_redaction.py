"""Secrets never reach the audit trail, whatever surrounds them and wherever the cut falls."""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kaizen.core.autonomy.state.redaction import REDACTED, is_secret_key, summarize_input

secret_values = st.text(string.ascii_letters + string.digits, min_size=24, max_size=40)
filler = st.text(string.ascii_letters + " .,:/", max_size=60)
shapes = st.sampled_from([
    "sk-{}", "sk-ant-{}", "ghp_{}", "Bearer {}", "password={}", "--api-key {}", "token: {}",
    "postgresql://user:{}@db/x", "https://admin:{}@example.com/path", "AWS_SECRET_ACCESS_KEY={}",
])


@given(filler, shapes, secret_values, filler, st.integers(16, 400))
@settings(max_examples=400)
def test_secret_in_text_never_survives(before, shape, secret, after, limit):
    assume(secret[:12] not in before + after)  # the filler itself may not repeat the secret
    text = f"{before} {shape.format(secret)} {after}"
    summary = summarize_input({"command": text}, limit)
    assert secret[:12] not in summary
    assert len(summary) <= limit


def test_a_scheme_word_before_the_scheme_does_not_shield_the_credential():
    for text in ("DIGEST Bearer 000000000000000000000000", "token Basic dXNlcjpwYXNzd29yZDEyMzQ1",
                 "Bearer bearer abcdefghijklmnop"):
        summary = summarize_input({"command": text}, 300)
        assert text.split()[-1][:12] not in summary and REDACTED in summary


@given(st.sampled_from(["password", "api_key", "X-Auth-Token", "client_secret", "Authorization", "PRIVATE_KEY"]),
       secret_values)
def test_secret_named_fields_are_redacted(key, secret):
    summary = summarize_input({"user": "bob", key: secret})
    assert secret not in summary and REDACTED in summary and "bob" in summary


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner) | st.tuples(inner, inner),
                    max_leaves=30), st.integers(16, 500))
@settings(max_examples=300)
def test_any_value_gives_a_bounded_text(value, limit):
    summary = summarize_input(value, limit)
    assert isinstance(summary, str) and len(summary) <= limit


def test_counts_named_like_secrets_are_kept():
    assert summarize_input({"max_tokens": 512}) == "{'max_tokens': 512}"
    assert not is_secret_key("max_tokens") and not is_secret_key("author") and is_secret_key("X-Auth-Token")


import pytest  # noqa: E402


@pytest.mark.parametrize("value, secret", [
    ({"password": 12345678}, "12345678"),
    ({"api_key": 1234567890123}, "1234567890123"),
    ({"c": "stripe sk_live_abcdefghijklmnop1234"}, "abcdefghijklmnop1234"),
    ({"c": "DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abcdEFGH1234==;"}, "abcdEFGH1234"),
    ({"c": "export DB_PASS=hunter2"}, "hunter2"),
    ({"c": "mysql -u root -pS3cretPw db"}, "S3cretPw"),
    ({"c": "sshpass -p hunter22 ssh host"}, "hunter22"),
])
def test_formats_a_review_found(value, secret):
    assert secret not in summarize_input(value)


def test_ordinary_flags_stay_readable():
    assert summarize_input({"c": "mkdir -p /tmp/x && ls -la"}) == "{'c': 'mkdir -p /tmp/x && ls -la'}"


_KEYS = st.sampled_from(["command", "path", "password", "api_key", "url", "max_tokens", "Authorization", "x"]) | st.text(
    max_size=12)
_VALUES = st.sampled_from(["ls -la", "Bearer abcdefghijklmnop", "postgres://u:pw@h/db", "sk-" + "a" * 20, "hunter2"]) | st.text(
    max_size=60)


@given(st.dictionaries(_KEYS, _VALUES, max_size=6), st.integers(16, 400))
def test_the_flat_input_shortcut_gives_the_general_renderers_text(tool_input, limit):
    from kaizen.core.autonomy.state.redaction import render_summary

    assert summarize_input(tool_input, limit) == render_summary(tool_input, limit)


_TRIGGER_PIECES = st.sampled_from([
    "://", "bearer", "Basic", "TOKEN", "digest", "-u", "--user", "-p", "PassWord", "passwd", "pwd", "secret",
    "api_key", "API-KEY", "apikey", "access_key", "accountkey", "private-key", "credential", "Authorization",
    "cookie", "session_id", "signature", "x_pass", "dsn", "auth", "pw", "sig", "key", "sk-", "sk_", "rk_", "pk_",
    "ghp_", "GHS_", "github_pat_", "xox", "AKIA", "asia", "AIza", "glpat-", "npm_", "hf_", "eyJ", "private key",
    "ls", " ", "-", "_", "k", "e", "y", "p", "a", "s", "/", ":", "u",
])


@given(st.lists(_TRIGGER_PIECES | st.text(max_size=4), max_size=8).map("".join))
def test_the_ascii_trigger_finds_exactly_what_the_ignore_case_trigger_finds(text):
    """Redaction skips its patterns when the trigger finds nothing; ASCII text is searched lowered,
    by a case-sensitive pattern: it must find a word exactly when the ignore-case one does."""
    from kaizen.core.autonomy.state.redaction import _TRIGGER, has_trigger

    assert has_trigger(text) == (_TRIGGER.search(text) is not None)
    assert has_trigger(text.upper()) == (_TRIGGER.search(text.upper()) is not None)


def test_non_ascii_text_takes_the_ignore_case_trigger():
    from kaizen.core.autonomy.state.redaction import redact_text

    # U+017F (long s) matches "s" when case is ignored but is its own lower case; U+212A (Kelvin) matches "k".
    assert "hunter2" not in redact_text("pa\u017f\u017fword=hunter2")
    assert "hunter2" not in redact_text("api_\u212aey=hunter2")
    assert redact_text("ls é") == "ls é"
