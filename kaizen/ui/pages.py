"""The console's read pages: agents, one agent's timeline, audit trail, checkpoint tree and usage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from kaizen.core.autonomy.state.ids import check_id

from . import graphs, readers
from .pending import DECISIONS, pending_approvals, pending_counts

if TYPE_CHECKING:
    from .app import Console


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    context.setdefault("notice", decision_notice(request))
    return console_of(request).templates.TemplateResponse(request, template, context, status_code=status_code)


def decision_notice(request: Request) -> str | None:
    """What the decision just made was, after the redirect that follows it."""
    call_id, decision = request.query_params.get("decided"), request.query_params.get("decision")
    if call_id is None or decision not in DECISIONS:
        return None
    done = {"approve": "approved once", "approve_all": "approved (and the tool for the rest of the run)",
            "deny": "denied"}[decision]
    return f"call {call_id[:128]} {done}; the run continues when it is resumed"


def known_agent(request: Request) -> str:
    """The path's agent id, checked: a malformed or unknown one is a 404 naming it."""
    agent_id = request.path_params["agent_id"]
    try:
        check_id(agent_id, "agent_id")
    except ValueError as exc:
        raise HTTPException(404, str(exc)) from None
    if not console_of(request).manager.list_checkpoints(agent_id, limit=1):
        raise HTTPException(404, f"agent {agent_id!r} is not in this store")
    return str(agent_id)


def agents(request: Request) -> Response:
    manager = console_of(request).manager
    rows = readers.agent_rows(manager)
    counts = pending_counts(manager)
    for row in rows:
        row.pending = counts.get(row.agent_id, 0)
    return render(request, "agents.html", rows=rows, page="agents")


def pending(request: Request) -> Response:
    return render(request, "pending.html", items=pending_approvals(console_of(request).manager), page="pending",
                  outcome=None)


def timeline(request: Request) -> Response:
    agent_id = known_agent(request)
    manager = console_of(request).manager
    return render(request, "timeline.html", agent_id=agent_id, view=readers.timeline(manager, agent_id),
                  items=pending_approvals(manager, agent_id), page="timeline", outcome=None)


def audit(request: Request) -> Response:
    agent_id = known_agent(request)
    return render(request, "audit.html", agent_id=agent_id, view=readers.audit(console_of(request).manager, agent_id),
                  page="audit")


def tree(request: Request) -> Response:
    agent_id = known_agent(request)
    manager = console_of(request).manager
    damaged = {exc.checkpoint_id for exc in manager.find_damage(agent_id)}
    drawing = graphs.tree_drawing(manager.list_checkpoints(agent_id), damaged, readers.when)
    return render(request, "tree.html", agent_id=agent_id, drawing=drawing, page="tree")


def usage(request: Request) -> Response:
    agent_id = known_agent(request)
    view = readers.usage(console_of(request).manager, agent_id)
    charts = [
        graphs.line_chart("Estimated cost (USD)", "USD", [(p.moment, p.cost_usd) for p in view.points
                                                    if p.cost_usd is not None], "{:,.4f}"),
        graphs.line_chart("Tokens", "tokens", [(p.moment, float(p.tokens)) for p in view.points]),
        graphs.line_chart("Calls (tools and model)", "calls", [(p.moment, float(p.calls)) for p in view.points]),
    ]
    return render(request, "usage.html", agent_id=agent_id, view=view, charts=[c for c in charts if c],
                  page="usage")


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return render(request, "error.html", status_code=status, status=status, message=detail, page="error")


EXCEPTION_HANDLERS: dict[Any, Any] = {HTTPException: http_error}
