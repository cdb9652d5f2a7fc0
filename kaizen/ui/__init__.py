"""``kaizen ui``: a small local web console on a store (agents, timelines, approvals, audit, usage).

Needs the ``ui`` extra (``pip install 'kaizen-state[ui]'``): Starlette, uvicorn and Jinja2.
Pages are rendered on the server with autoescaping; there is no JavaScript.
"""

from __future__ import annotations

from .app import ConsoleError, create_app

__all__ = ["ConsoleError", "create_app"]
