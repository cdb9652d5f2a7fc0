"""``kaizen ui``: serve the web console on a store (kaizen/ui), on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import socket

import click

from .app import INTERRUPT_LINE, main
from .errors import CliError, console, friendly
from .options import STORE_OPTION, shown

TOKEN_ENV = "KAIZEN_UI_TOKEN"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but a loopback address needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--token", envvar=TOKEN_ENV, show_envvar=True,
              help="Require this token (open the printed URL once; the browser then keeps it in a cookie).")
@click.option("--read-only", is_flag=True,
              help="Only show, never decide (also the case when this process cannot write the store).")
@STORE_OPTION
@friendly
def ui(host: str, port: int, token: str | None, read_only: bool, store_url: str) -> None:
    """Serve a web console on the store: agents, timelines, pending approvals, audit, checkpoints, usage.

    It listens on 127.0.0.1 by default; any other address needs --token. Every value from the
    store is escaped and secrets stay redacted; approving or denying needs the page's CSRF
    token. Ctrl-C stops it.
    """
    try:
        import uvicorn

        from kaizen.ui import ConsoleError, create_app
        from kaizen.ui.security import check_bind
    except ImportError as exc:
        raise CliError(f"the console needs the ui extra ({exc.name} is missing): "
                       "pip install 'kaizen-state[ui]'") from None
    token = token or None
    check_bind(host, token)  # ValueError: one line naming the fix
    try:
        app = create_app(store_url, read_only=read_only, token=token, allowed_hosts=[host])
    except ConsoleError as exc:
        raise CliError(str(exc)) from None
    listener = bind(host, port)
    address = f"[{host}]" if ":" in host else host
    url = f"http://{address}:{listener.getsockname()[1]}/" + (f"?token={token}" if token else "")
    mode = " (read-only)" if app.state.console.read_only else ""
    console.print(f"kaizen console for {shown(store_url)}{mode}: {url}", highlight=False, soft_wrap=True, markup=False)
    console.print("press Ctrl-C to stop", highlight=False, markup=False)
    click.get_current_context().meta[INTERRUPT_LINE] = lambda: "console stopped"
    # uvicorn stops gracefully on Ctrl-C, then raises it again: the group ends with exit 130
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[listener])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), so the printed URL is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host") from None
    listener.listen(128)
    listener.set_inheritable(True)
    return listener
