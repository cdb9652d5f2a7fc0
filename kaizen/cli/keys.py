"""``kaizen keys``: encryption keys for stores encrypted at rest."""

from __future__ import annotations

import os
from typing import Any

import click

from kaizen.core.autonomy.state.sync_manager import SyncStateManager

from .app import main
from .errors import CliError, console, friendly
from .options import STORE_OPTION
from .stores import open_manager, require_agent


@main.group()
def keys() -> None:
    """Encryption keys for stores encrypted at rest (KAIZEN_ENCRYPTION_KEY)."""


@keys.command("generate")
def generate_key_command() -> None:
    """Print a new random key (export it as KAIZEN_ENCRYPTION_KEY; keep it out of the store)."""
    from kaizen.core.autonomy.state.storage.encrypted import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@click.argument("agent_id")
@click.option("--old-key-env", default="KAIZEN_ENCRYPTION_KEY", show_default=True,
              help="Environment variable holding the current key (unset or empty: the history is unencrypted).")
@click.option("--new-key-env", default="KAIZEN_NEW_ENCRYPTION_KEY", show_default=True,
              help="Environment variable holding the new key.")
@STORE_OPTION
@friendly
def rotate_key_command(agent_id: str, old_key_env: str, new_key_env: str, store_url: str) -> None:
    """Re-encrypt AGENT_ID's whole history with a new key, in one transaction.

    Keys are read from environment variables, never from the command line (shell history).
    """
    from kaizen.core.autonomy.state.storage.encrypted import rotate_key

    new_key = os.environ.get(new_key_env)
    if not new_key:
        raise CliError(f"set {new_key_env} to the new key (make one with `kaizen keys generate`)")
    manager = open_manager(store_url, read_only=False)
    inner = getattr(manager.storage, "inner", manager.storage)
    require_agent(SyncStateManager(inner), agent_id)
    old_key: Any = os.environ.get(old_key_env) or None  # None: the history is not encrypted yet
    count = rotate_key(inner, agent_id, old_key, new_key)
    console.print(f"re-encrypted {count} records of {agent_id}; use {new_key_env}'s key from now on")
