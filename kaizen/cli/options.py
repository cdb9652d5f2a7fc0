"""Options several commands share, and how a store URL is printed."""

from __future__ import annotations

import click

from kaizen.core.autonomy.state.redaction import redact_text
from kaizen.core.autonomy.state.storage import DEFAULT_STORE_URL

STORE_OPTION = click.option(
    "--store", "store_url", envvar="KAIZEN_STORE", show_envvar=True, default=DEFAULT_STORE_URL, show_default=True,
    help="Store URL: sqlite:///file.db, file:///dir, postgresql://user@host/db, memory://",
)
YES_OPTION = click.option("--yes", "-y", is_flag=True, help="Approve every tool call without asking.")
WORKER_OPTION = click.option(
    "--worker-id", envvar="KAIZEN_WORKER_ID", show_envvar=True,
    help="Name of this worker in the agent's lease (default: HOST:PID@START_TIME).",
)


def shown(store_url: str) -> str:
    """A store URL fit to print: any password in it replaced."""
    return redact_text(store_url)


def store_suffix(store_url: str) -> str:
    """`` --store 'URL'`` for commands we suggest, unless the store is the default one."""
    return "" if store_url == DEFAULT_STORE_URL else f" --store '{shown(store_url)}'"
