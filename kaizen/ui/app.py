"""The console's ASGI app: one store, read pages, the decision form, and the guards around them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from kaizen.cli.options import shown
from kaizen.cli.stores import store_path
from kaizen.core.autonomy.state.decisions import default_decider
from kaizen.core.autonomy.state.errors import ReadOnlyStoreError, StorageError
from kaizen.core.autonomy.state.storage import DEFAULT_STORE_URL, open_store
from kaizen.core.autonomy.state.sync_manager import SyncStateManager

from . import actions, pages, readers
from .security import ConsoleGuard, Csrf

HERE = Path(__file__).parent


class ConsoleError(ValueError):
    """The console cannot start: the store is missing or unreadable (the message says which)."""


@dataclass
class Console:
    """What every request handler shares: the store's manager and how it may be used."""

    manager: SyncStateManager
    store_url: str
    read_only: bool
    csrf: Csrf
    templates: Jinja2Templates


def create_app(store_url: str = DEFAULT_STORE_URL, *, read_only: bool = False, token: str | None = None,
               allowed_hosts: Iterable[str] = ()) -> Starlette:
    """The console for the store at ``store_url``.

    ``read_only`` (or a store this process cannot write) gives pages without any form; every
    POST is then refused with 403. ``token``: requests must carry it (needed for any bind
    other than loopback; see security.py). ``allowed_hosts``: further ``Host`` names accepted
    without a token (loopback names always are).
    """
    manager, read_only = open_console_store(store_url, read_only)
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    console = Console(manager, store_url, read_only, Csrf(), Jinja2Templates(env=environment))
    environment.globals.update(console=console, csrf_token=console.csrf.token, when=readers.when,
                               store_label=shown(store_url), default_reviewer=default_decider())
    environment.filters["pretty"] = readers.text

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        manager.close()

    routes = [
        Route("/", pages.agents, name="agents"),
        Route("/pending", pages.pending, name="pending"),
        Route("/agents/{agent_id}", pages.timeline, name="timeline"),
        Route("/agents/{agent_id}/audit", pages.audit, name="audit"),
        Route("/agents/{agent_id}/tree", pages.tree, name="tree"),
        Route("/agents/{agent_id}/usage", pages.usage, name="usage"),
        Route("/agents/{agent_id}/approvals/{call_id}", actions.decide, methods=["POST"], name="decide"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(ConsoleGuard, token=token, allowed_hosts=allowed_hosts)],
                    exception_handlers=pages.EXCEPTION_HANDLERS)
    app.state.console = console
    return app


def open_console_store(store_url: str, read_only: bool) -> tuple[SyncStateManager, bool]:
    """A manager on an existing store, and whether the console is read-only.

    The store is never created (a missing one is an error saying how to make one). It is opened
    read-only when asked, or when this process cannot write it.
    """
    path = store_path(store_url)
    if path is not None and not path.exists():
        raise ConsoleError(f"no store at {path}; run `kaizen demo` first or pass --store URL")
    checked = open_store(store_url, read_only=True)  # refuses a database that holds no kaizen store
    if read_only or (path is not None and not writable(path)):
        return SyncStateManager(checked), True
    checked.close()
    try:
        store = open_store(store_url)
        store.setup()
    except (ReadOnlyStoreError, PermissionError, StorageError):
        return SyncStateManager(open_store(store_url, read_only=True)), True
    return SyncStateManager(store), False


def writable(path: Path) -> bool:
    """Whether this process may change the store's file (and, for SQLite, create its journal)."""
    directory = path if path.is_dir() else path.parent
    return os.access(path, os.W_OK) and os.access(directory, os.W_OK)
