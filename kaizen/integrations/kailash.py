"""Run a real Kailash workflow from an agent, its progress mirrored into the agent's workflow state.

``execute_workflow`` runs a workflow and reports each node through ``update`` (the agent's
``update_workflow_state``); ``workflow_tool_spec`` offers a workflow as an LLM tool. How the
runtime is observed (a per-call TaskManager with an in-memory storage backend, no network, nothing
written to disk) is told in ``kailash_mirror.py``. Kailash is imported lazily, so this module
imports without it installed.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from .errors import WorkflowExecutionError
from .kailash_failures import continued_failures, describe_failure
from .kailash_mirror import RunMirror, built_workflow, first_line, kailash_modules
from .summary import DEFAULT_OUTPUT_CHARS, check_chars, json_safe_summary

__all__ = [
    "WorkflowRun",
    "WorkflowTool",
    "execute_workflow",
    "json_safe_summary",
    "workflow_tool_spec",
]

DEFAULT_RESULT_CHARS = 4000
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(slots=True)
class WorkflowRun:
    """Outcome of a completed run: the runtime's own id and raw results.

    ``results`` are the Python objects the runtime returned (not summarized);
    ``node_results`` is the JSON-safe per-node summary that was mirrored.
    """

    run_id: str
    status: str
    results: dict[str, Any]
    execution_time: float
    node_results: dict[str, Any] = field(default_factory=dict)


class WorkflowTool(NamedTuple):
    """What an LLM tool definition needs; unpacks as a plain 4-tuple."""

    name: str
    description: str
    parameters_schema: dict[str, Any]
    run: Callable[..., Any]


def execute_workflow(
    workflow: Any,
    parameters: dict[str, Any] | None = None,
    *,
    update: Callable[..., None],
    runtime: Any = None,
    max_output_chars: int = DEFAULT_OUTPUT_CHARS,
) -> WorkflowRun:
    """Run a Kailash workflow and mirror its progress through ``update(**fields)``.

    ``update`` has the shape of the agent's ``update_workflow_state``; every
    value passed is JSON-safe. Calls, in order: ``status="running"`` (with
    ``workflow_id``/``workflow_name``, an empty ``node_results`` and
    ``error_message``/``error_type``/``failed_node`` set to None), then
    ``run_id`` as soon as the runtime makes it (before the first node), then per
    node ``current_node=<id>`` when it starts and the grown ``node_results``
    when it finishes, and finally ``status="completed"`` with ``run_id``,
    ``node_results`` and ``execution_time`` (seconds).

    Any failed node fails the run, including a node without dependents that
    Kailash itself runs past: ``status="failed"`` with ``error_message``,
    ``error_type`` (the node's own exception, not Kailash's wrapper),
    ``failed_node`` when known, ``execution_time`` and the node results so far;
    then :class:`WorkflowExecutionError` is raised with the exception the
    runtime raised as ``__cause__`` (for a node it ran past: that node's
    exception, as the runtime kept it).

    ``runtime`` defaults to a fresh ``LocalRuntime()`` closed after the run;
    a caller's runtime is used as is and left open. Either way the run is
    tracked in memory only (see ``kailash_mirror.py``).
    """
    if not callable(update):
        raise TypeError(f"update must be callable, got {type(update).__name__}")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a dict or None, got {type(parameters).__name__}")
    check_chars("max_output_chars", max_output_chars)
    k = kailash_modules()
    built = built_workflow(workflow, k)
    workflow_id = _optional_text(getattr(built, "workflow_id", None))
    workflow_name = _optional_text(getattr(built, "name", None))

    mirror = RunMirror(update, built.nodes, max_output_chars)
    task_manager = k.TaskManager(storage_backend=k.ObservingStorage(mirror.on_run, mirror.on_task))
    # The runtime pops keys such as "workflow_context" from the dict it gets.
    run_parameters = dict(parameters) if parameters else None

    # Extra fields are set as given (None included), so a failure left over
    # from an earlier run does not sit beside this run's status.
    start: dict[str, Any] = {
        "status": "running",
        "node_results": {},
        "error_message": None,
        "error_type": None,
        "failed_node": None,
    }
    if workflow_id:
        start["workflow_id"] = workflow_id
    if workflow_name:
        start["workflow_name"] = workflow_name
    update(**start)

    started = time.perf_counter()
    try:
        if runtime is None:
            with k.LocalRuntime() as own_runtime:
                results, run_id = own_runtime.execute(
                    built, task_manager=task_manager, parameters=run_parameters
                )
        else:
            results, run_id = runtime.execute(built, task_manager=task_manager, parameters=run_parameters)
    except BaseException as exc:
        elapsed = time.perf_counter() - started
        if not isinstance(exc, Exception):  # KeyboardInterrupt & co: mirror, never wrap
            _report_failure(mirror, update, type(exc).__name__, first_line(str(exc) or repr(exc)), elapsed)
            raise
        error_type, message = describe_failure(exc, k.package_dir)
        failure = WorkflowExecutionError(
            workflow_name=workflow_name,
            workflow_id=workflow_id,
            run_id=mirror.run_id,
            failed_node=mirror.failed_node,
            error_type=error_type,
            error_message=message,
        )
        _report_failure(mirror, update, error_type, message, elapsed, failure)
        raise failure from exc
    elapsed = time.perf_counter() - started

    run_id = str(run_id or mirror.run_id or uuid.uuid4())
    continued = continued_failures(results)
    if continued:
        node_id = next(iter(continued))  # results are in execution order: the first failure
        cause = continued[node_id].get("_exception")
        if isinstance(cause, BaseException):
            error_type, message = describe_failure(cause, k.package_dir)
        else:
            error_type = str(continued[node_id].get("error_type") or "NodeExecutionError")
            message = first_line(continued[node_id].get("error"))
        mirror.run_id = run_id
        mirror.failed_node = node_id
        failure = WorkflowExecutionError(
            workflow_name=workflow_name,
            workflow_id=workflow_id,
            run_id=run_id,
            failed_node=node_id,
            error_type=error_type,
            error_message=message,
        )
        _report_failure(mirror, update, error_type, message, elapsed, failure)
        raise failure from cause if isinstance(cause, BaseException) else None

    if mirror.update_error is not None:
        error = mirror.update_error
        error.add_note(
            f"raised while mirroring Kailash run {run_id} into the workflow state; the "
            "workflow itself completed, but the state was not fully updated"
        )
        raise error
    node_results = mirror.snapshot()
    update(status="completed", run_id=run_id, node_results=node_results, execution_time=elapsed)
    return WorkflowRun(
        run_id=run_id,
        status="completed",
        results=results,
        execution_time=elapsed,
        node_results=node_results,
    )


def _report_failure(
    mirror: RunMirror,
    update: Callable[..., None],
    error_type: str,
    message: str,
    elapsed: float,
    failure: WorkflowExecutionError | None = None,
) -> None:
    """Send the failed state; the run's own error wins over a broken update()."""
    fields: dict[str, Any] = {
        "status": "failed",
        "error_message": message,
        "error_type": error_type,
        "execution_time": elapsed,
        "node_results": mirror.snapshot(),
    }
    if mirror.run_id:
        fields["run_id"] = mirror.run_id
    if mirror.failed_node:
        fields["failed_node"] = mirror.failed_node
    try:
        update(**fields)
    except Exception as exc:  # noqa: BLE001 - the run's own error is the one to raise
        if failure is not None:
            failure.add_note(f"update() also failed while recording the failure: {type(exc).__name__}: {exc}")
    if failure is not None and mirror.update_error is not None:
        failure.add_note(
            "mirroring node progress into the workflow state also failed: "
            f"{type(mirror.update_error).__name__}: {mirror.update_error}"
        )


def workflow_tool_spec(
    name: str,
    description: str,
    workflow: Any,
    parameters_schema: dict[str, Any] | None = None,
    *,
    update: Callable[..., None],
    runtime: Any = None,
    max_result_chars: int = DEFAULT_RESULT_CHARS,
) -> WorkflowTool:
    """Offer a workflow as an LLM tool: ``(name, description, schema, run)``.

    ``run(**kwargs)`` executes the workflow with the tool call's arguments as
    Kailash workflow-level parameters (a key equal to a node id addresses that
    node), mirrors progress through ``update`` like :func:`execute_workflow`,
    and returns the results as a bounded JSON-safe value for the model. The
    arguments are not validated against the schema here; that is the tool
    framework's job. A WorkflowBuilder is built once, now, so a broken
    workflow fails at definition time.
    """
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise ValueError(f"tool name must be 1-64 letters, digits, '_' or '-', got {name!r}")
    if not isinstance(description, str) or not description.strip():
        raise ValueError("tool description must be a non-empty string")
    if not callable(update):
        raise TypeError(f"update must be callable, got {type(update).__name__}")
    check_chars("max_result_chars", max_result_chars)
    if parameters_schema is None:
        schema: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": True}
    elif not isinstance(parameters_schema, Mapping) or parameters_schema.get("type") != "object":
        raise ValueError('parameters_schema must be a JSON Schema object with "type": "object"')
    else:
        try:
            schema = orjson.loads(orjson.dumps(dict(parameters_schema)))  # orjson refuses non-JSON
        except TypeError as exc:
            raise ValueError(f"parameters_schema must be JSON-serializable: {exc}") from exc
    built = built_workflow(workflow, kailash_modules())

    def run(**kwargs: Any) -> Any:
        """Execute the workflow for one tool call; return JSON-safe results."""
        outcome = execute_workflow(built, kwargs, update=update, runtime=runtime)
        return json_safe_summary(outcome.results, max_result_chars)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = description
    return WorkflowTool(name, description, schema, run)


def _optional_text(value: Any) -> str | None:
    return str(value) if value is not None and str(value) else None


