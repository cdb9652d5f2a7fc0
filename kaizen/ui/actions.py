"""The one state-changing request: a reviewer approves or denies a pending call.

Refused with 403 on a read-only console or without the page's CSRF token, 409 when the call is
not pending any more (the page says who decided it); on success the browser is sent back to the
page it came from (post/redirect/get, so a reload does not post again).
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from kaizen.core.autonomy.state.errors import LeaseHeldError
from kaizen.core.bridge import in_thread

from .pages import console_of, known_agent, render
from .pending import ApprovalNotPendingError, decide as record_decision, pending_approvals
from .security import CSRF_FIELD

BACK_PAGES = ("pending", "timeline")  # where a form may send the browser back to (never a URL)
READ_ONLY_MESSAGE = ("this console is read-only (started with --read-only, or the store cannot be written "
                     "by this process): decisions are refused")


async def decide(request: Request) -> Response:
    console = console_of(request)
    form = await request.form(max_files=0, max_fields=10)
    back = field(form, "back")
    back = back if back in BACK_PAGES else "pending"
    if console.read_only:
        return await refused(request, 403, READ_ONLY_MESSAGE, back)
    problem = console.csrf.problem(request, form.get(CSRF_FIELD))
    if problem is not None:
        return await refused(request, 403, problem, back)
    agent_id = await in_thread(known_agent, request)
    call_id = str(request.path_params["call_id"])
    decision = field(form, "decision")
    try:
        await in_thread(record_decision, console.manager, agent_id, call_id, decision,
                        field(form, "reviewer"), field(form, "reason"))
    except ApprovalNotPendingError as exc:
        return await refused(request, 409, f"refused: {exc}", back, agent_id)
    except LeaseHeldError as exc:
        return await refused(request, 409, f"refused: {exc} (the agent is running; decide once it waits again)",
                       back, agent_id)
    except ValueError as exc:
        return await refused(request, 400, f"refused: {exc}", back, agent_id)
    notice = urlencode({"decided": call_id, "decision": decision})
    target = f"/agents/{agent_id}" if back == "timeline" else "/pending"
    return RedirectResponse(f"{target}?{notice}", status_code=303)


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def refused(request: Request, status: int, message: str, back: str, agent_id: str | None = None) -> Response:
    """The pending list (of the agent, when the form came from its timeline) with the refusal on top."""
    manager = console_of(request).manager
    items = await in_thread(pending_approvals, manager, agent_id if back == "timeline" else None)
    return render(request, "pending.html", status_code=status, items=items, page="pending",
                  outcome={"ok": False, "message": message})
