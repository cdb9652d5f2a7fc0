"""Who may use the console and how a form post proves it came from the console's own page.

- Loopback binds need no token, but the ``Host`` header must name a loopback address, so a web
  page on another site cannot reach the console through DNS rebinding.
- Any other bind needs a token: given once as ``?token=T`` (then kept in an HttpOnly,
  SameSite=Strict cookie and removed from the address bar) or sent as ``Authorization: Bearer T``.
- Every POST carries the per-process CSRF token in a hidden field, and a browser's ``Origin``
  (or ``Referer``) must be the console itself.
- Every response forbids scripts, frames and foreign form targets (Content-Security-Policy), so
  even a value that escaped escaping could not run.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Iterable
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TOKEN_COOKIE = "kaizen_ui_token"
TOKEN_ENV = "KAIZEN_UI_TOKEN"
CSRF_FIELD = "csrf"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token, saying how to fix it."""
    if token is None and not is_loopback(host):
        raise ValueError(
            f"--host {host} makes the console reachable from other machines, so it needs a token: "
            f"pass --token T (or set {TOKEN_ENV}) and open the printed URL with ?token=T, "
            "or keep the default --host 127.0.0.1")
    if token is not None and len(token) < 16:
        raise ValueError("the console token must be at least 16 characters "
                         "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(24))')")


def host_name(host_header: str) -> str:
    """The host of a ``Host`` header without its port (``[::1]:8765`` -> ``::1``)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class ConsoleGuard:
    """ASGI middleware: host check, token check and security headers on every HTTP request."""

    def __init__(self, app: ASGIApp, *, token: str | None, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.allowed_hosts = {host.lower() for host in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self.refusal(request)
        if refusal is not None:
            await self.with_headers(refusal)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])
                           if name.decode("latin-1").lower() not in SECURITY_HEADERS]
                headers += [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, request: Request) -> Response | None:
        host = host_name(request.headers.get("host", "")).lower()
        if self.token is None:
            if not is_loopback(host) and host not in self.allowed_hosts:
                return PlainTextResponse(
                    f"refused: this console serves loopback addresses only (Host {host!r}); "
                    "open it as http://127.0.0.1:PORT/", status_code=403)
            return None
        given = request.query_params.get("token")
        if given is not None and self.matches(given):
            # keep the token in a cookie and take it out of the address bar (and the history)
            rest = [(key, value) for key, value in request.query_params.multi_items() if key != "token"]
            target = URL(path=request.url.path, query=urlencode(rest))
            response = RedirectResponse(str(target), status_code=303)
            response.set_cookie(TOKEN_COOKIE, given, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
            return response
        header = request.headers.get("authorization", "")
        bearer = header[len("Bearer "):] if header.startswith("Bearer ") else None
        if self.matches(bearer) or self.matches(request.cookies.get(TOKEN_COOKIE)):
            return None
        return PlainTextResponse(
            "unauthorized: this console needs its token; open the URL `kaizen ui` printed "
            "(it ends with ?token=...) or send `Authorization: Bearer TOKEN`", status_code=401)

    def matches(self, given: str | None) -> bool:
        return given is not None and self.token is not None and hmac.compare_digest(
            given.encode(), self.token.encode())

    @staticmethod
    def with_headers(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response


class Csrf:
    """The per-process CSRF token and the checks every state-changing request passes."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)

    def problem(self, request: Request, form_token: object) -> str | None:
        """Why this POST is refused, or None when it came from the console's own form."""
        if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return "refused: the request came from another site"
        source = request.headers.get("origin") or request.headers.get("referer")
        if source is not None and source != "null":
            origin = urlsplit(source)
            if origin.netloc.lower() != request.headers.get("host", "").lower():
                return f"refused: the request came from {origin.scheme}://{origin.netloc}, not from this console"
        elif source == "null":
            return "refused: the request has an opaque origin"
        if not isinstance(form_token, str) or not hmac.compare_digest(form_token.encode(), self.token.encode()):
            return ("refused: the form's CSRF token is missing or stale (the console was restarted?); "
                    "reload the page and try again")
        return None
