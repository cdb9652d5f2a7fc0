"""PostgreSQL for tests: the real server, one fresh schema per test.

Outside CI a missing server skips those tests with the reason; with CI=true it
is a failure, because CI must test every backend.
"""

from __future__ import annotations

import os
import secrets

import pytest

DSN = os.environ.get("KAIZEN_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def server_error() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {DSN} is unreachable: {exc}"
    return None


def require_server() -> None:
    error = server_error()
    if error is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{error} (CI=true: PostgreSQL tests may not be skipped)")
    pytest.skip(error)


def new_schema() -> str:
    return "kz_test_" + secrets.token_hex(6)


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def store_url(schema: str) -> str:
    separator = "&" if "?" in DSN else "?"
    return f"{DSN}{separator}schema={schema}"
