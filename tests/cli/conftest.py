"""Registers the CLI tests' fixtures (defined in cli_helpers.py, which the tests import by name)."""

from cli_helpers import demo_store, pg_store, sqlite_store  # noqa: F401
