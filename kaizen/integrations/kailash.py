"""Mirror a real Kailash workflow run into an agent's workflow state.

How nodes are observed (checked against kailash 2.65.0 source):

* ``LocalRuntime.execute(workflow, task_manager=..., parameters=...)`` takes a
  per-call :class:`kailash.tracking.TaskManager`. The runtime calls it at every
  step we need: ``create_run`` before the first node (this is where the run id
  is made), ``create_task`` + ``update_task_status(RUNNING)`` as each node
  starts, and ``update_task_status(COMPLETED | FAILED)`` (with the node's
  outputs or error) as it finishes. The TaskManager writes every one of those
  through its pluggable ``StorageBackend``, so we give it an in-memory backend
  that forwards each save to the mirror. Nothing is written to disk: without a
  caller-supplied TaskManager the runtime's default monitoring persists every
  run to ``~/.kailash/tracking/tracking.db``.
* ``LocalRuntime.on_node_complete`` was the other candidate and was rejected:
  it has no node-start event, in 2.65.0 it fires only for nodes that succeed
  (despite its docstring), it passes redacted outputs, and registering on a
  caller's runtime would leave a subscriber behind on a shared object.

Network: with the defaults used here the runtime makes no network calls.
Tracing and metrics go through OpenTelemetry and are no-ops unless it is
installed *and* configured by the application; security, audit, trust
verification, persistent mode and resource monitoring are off by default.

Kailash is imported lazily, so this module imports without it installed.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, NamedTuple

import orjson

from .errors import KailashNotInstalledError, WorkflowExecutionError
from .summary import DEFAULT_OUTPUT_CHARS, check_chars, json_safe_summary

__all__ = [
    "WorkflowRun",
    "WorkflowTool",
    "execute_workflow",
    "json_safe_summary",
    "workflow_tool_spec",
]

DEFAULT_RESULT_CHARS = 4000
_MAX_ERROR_CHARS = 500
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


# --------------------------------------------------------------------------
# Lazy Kailash import
# --------------------------------------------------------------------------


@functools.cache
def _kailash() -> SimpleNamespace:
    """Import the Kailash pieces we use, once, or say how to install them."""
    try:
        import kailash
        from kailash.runtime.local import LocalRuntime
        from kailash.tracking.manager import TaskManager
        from kailash.tracking.storage.base import StorageBackend
        from kailash.workflow.builder import WorkflowBuilder
        from kailash.workflow.graph import Workflow
    except ModuleNotFoundError as exc:
        if exc.name == "kailash":
            raise KailashNotInstalledError() from exc
        if exc.name and exc.name.startswith("kailash."):
            raise KailashNotInstalledError(
                f"the installed kailash has no {exc.name}; upgrade it"
            ) from exc
        raise
    return SimpleNamespace(
        package_dir=os.path.dirname(os.path.abspath(kailash.__file__)) + os.sep,
        LocalRuntime=LocalRuntime,
        TaskManager=TaskManager,
        StorageBackend=StorageBackend,
        WorkflowBuilder=WorkflowBuilder,
        Workflow=Workflow,
        ObservingStorage=_make_observing_storage(StorageBackend),
    )


def _make_observing_storage(base: type) -> type:
    """Build the in-memory StorageBackend subclass (needs Kailash's base class)."""

    class ObservingStorage(base):  # type: ignore[misc]
        """Keeps tracking records in memory and reports every save to the mirror."""

        def __init__(self, on_run: Callable[[Any], None], on_task: Callable[[Any], None]) -> None:
            self._runs: dict[str, Any] = {}
            self._tasks: dict[str, Any] = {}
            self._on_run = on_run
            self._on_task = on_task

        def save_run(self, run: Any) -> None:
            self._runs[run.run_id] = run
            self._on_run(run)

        def load_run(self, run_id: str) -> Any:
            return self._runs.get(run_id)

        def list_runs(self, workflow_name: str | None = None, status: str | None = None) -> list[Any]:
            return [
                run
                for run in self._runs.values()
                if (workflow_name is None or run.workflow_name == workflow_name)
                and (status is None or run.status == status)
            ]

        def save_task(self, task: Any) -> None:
            self._tasks[task.task_id] = task
            self._on_task(task)

        def load_task(self, task_id: str) -> Any:
            return self._tasks.get(task_id)

        def list_tasks(self, run_id: str, node_id: str | None = None, status: Any = None) -> list[Any]:
            return [
                task
                for task in self._tasks.values()
                if task.run_id == run_id
                and (node_id is None or task.node_id == node_id)
                and (status is None or task.status == status)
            ]

        def clear(self) -> None:
            self._runs.clear()
            self._tasks.clear()

        def export_run(self, run_id: str, output_path: str) -> None:
            raise NotImplementedError("kaizen's run mirror keeps tracking in memory only; nothing to export")

        def import_run(self, input_path: str) -> str:
            raise NotImplementedError("kaizen's run mirror keeps tracking in memory only; nothing to import")

    return ObservingStorage


def _built_workflow(workflow: Any, k: SimpleNamespace) -> Any:
    """Accept a built Workflow or a WorkflowBuilder (built here)."""
    if isinstance(workflow, k.WorkflowBuilder):
        return workflow.build()
    if isinstance(workflow, k.Workflow):
        return workflow
    raise TypeError(
        f"workflow must be a kailash Workflow or WorkflowBuilder, got {type(workflow).__name__}"
    )


# --------------------------------------------------------------------------
# Per-run mirror
# --------------------------------------------------------------------------


def _status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def _first_line(text: Any, limit: int = _MAX_ERROR_CHARS) -> str:
    """One bounded line: Kailash embeds whole tracebacks in node error strings."""
    line = str(text).strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _json_copy(value: Any) -> Any:
    """Independent copy, so the agent state never shares our mutable dicts."""
    return orjson.loads(orjson.dumps(value))


class _RunMirror:
    """Turns the runtime's tracking saves into partial workflow-state updates.

    Hook callbacks run inside the runtime (on its worker thread when
    ``execute`` is called from a running event loop, while the caller waits),
    so they never raise into it: a raising ``update`` would make Kailash mark
    the node failed. The first such error is kept, later node updates are
    skipped, and the error is re-raised (or noted on the failure) after the run.
    """

    def __init__(self, update: Callable[..., None], node_ids: Iterable[str], max_output_chars: int) -> None:
        self._update = update
        self._node_ids = frozenset(node_ids)
        self._max_output_chars = max_output_chars
        self._lock = threading.Lock()
        self._seen: dict[str, str] = {}
        self.run_id: str | None = None
        self.failed_node: str | None = None
        self.node_results: dict[str, dict[str, Any]] = {}
        self.update_error: Exception | None = None

    def _send(self, **fields: Any) -> None:
        if self.update_error is not None:
            return
        try:
            self._update(**fields)
        except Exception as exc:  # noqa: BLE001 - kept and re-raised after the run
            self.update_error = exc

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            copied: dict[str, dict[str, Any]] = _json_copy(self.node_results)
            return copied

    def on_run(self, run: Any) -> None:
        with self._lock:
            try:
                if self.run_id is None and getattr(run, "run_id", None):
                    self.run_id = str(run.run_id)
                    self._send(run_id=self.run_id)
            except Exception as exc:  # noqa: BLE001 - never break the runtime
                self.update_error = self.update_error or exc

    def on_task(self, task: Any) -> None:
        with self._lock:
            try:
                self._on_task(task)
            except Exception as exc:  # noqa: BLE001 - never break the runtime
                self.update_error = self.update_error or exc

    def _on_task(self, task: Any) -> None:
        status = _status_text(task.status)
        # The TaskManager saves a task several times per state (metrics,
        # run linkage); only state changes are news.
        if self._seen.get(task.task_id) == status:
            return
        self._seen[task.task_id] = status
        node_id = self._node_id_of(task)
        if node_id is None:  # cycle-group / iteration bookkeeping tasks
            return
        if status == "running":
            self._send(current_node=node_id)
        elif status in ("completed", "failed", "skipped", "cancelled"):
            self.node_results[node_id] = self._summarize(task, node_id, status)
            if status == "failed":
                self.failed_node = node_id
            self._send(node_results=_json_copy(self.node_results))

    def _node_id_of(self, task: Any) -> str | None:
        """Map a task to a workflow node id (cycle runs use decorated task ids)."""
        task_node = str(task.node_id)
        if task_node in self._node_ids:
            return task_node
        metadata = task.metadata or {}
        if metadata.get("in_cycle"):
            suffix = f"_cycle_{metadata.get('cycle_id')}_iteration_{metadata.get('iteration')}"
            base = task_node[: -len(suffix)] if task_node.endswith(suffix) else None
            if base in self._node_ids:
                return base
        return None

    def _summarize(self, task: Any, node_id: str, status: str) -> dict[str, Any]:
        metadata = task.metadata or {}
        if status == "completed" and metadata.get("skipped"):
            status = "skipped"
        entry: dict[str, Any] = {"status": status, "node_type": str(task.node_type)}
        if status == "completed":
            entry["output"] = json_safe_summary(task.result, self._max_output_chars)
        if task.error:
            entry["error"] = _first_line(task.error)
        duration = _task_duration(task)
        if duration is not None:
            entry["execution_time"] = duration
        if metadata.get("in_cycle") and isinstance(metadata.get("iteration"), int):
            entry["iteration"] = metadata["iteration"]
        return entry


def _task_duration(task: Any) -> float | None:
    started, ended = getattr(task, "started_at", None), getattr(task, "ended_at", None)
    try:
        seconds = float((ended - started).total_seconds()) if started and ended else None
    except (TypeError, AttributeError):
        seconds = None
    if seconds is None:
        raw = (task.metadata or {}).get("execution_time")
        seconds = float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


# --------------------------------------------------------------------------
# Failure description
# --------------------------------------------------------------------------


def _from_kailash(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] == "kailash"


def _raised_outside(exc: BaseException, package_dir: str) -> bool:
    """True if any frame of the exception's traceback is outside Kailash."""
    tb = exc.__traceback__
    while tb is not None:
        if not tb.tb_frame.f_code.co_filename.startswith(package_dir):
            return True
        tb = tb.tb_next
    return False


def _node_exception(exc: BaseException, package_dir: str) -> BaseException:
    """The first exception in the chain not raised by Kailash itself.

    Kailash wraps a node's error in its own exceptions, by ``__cause__`` and,
    for code nodes, implicitly (``__context__``). A context is only followed
    when it was raised outside Kailash: the sync entry point runs every
    workflow inside ``except RuntimeError`` (its event-loop probe), so that
    unrelated RuntimeError sits at the bottom of most chains.
    """
    seen: set[int] = set()
    current = exc
    while _from_kailash(current) and id(current) not in seen:
        seen.add(id(current))
        if current.__cause__ is not None:
            current = current.__cause__
            continue
        context = current.__context__
        if (
            context is not None
            and not current.__suppress_context__
            and _raised_outside(context, package_dir)
        ):
            current = context
            continue
        break
    return current


def _describe(exc: BaseException, package_dir: str) -> tuple[str, str]:
    origin = _node_exception(exc, package_dir)
    return type(origin).__name__, _first_line(str(origin) or repr(origin))


def _continued_failures(results: Mapping[str, Any]) -> dict[str, Any]:
    """Nodes the runtime recorded as failed but ran past (leaf nodes).

    LocalRuntime only raises when a failed node has dependents; a failing node
    without dependents becomes ``{"failed": True, "error": ..., "_exception":
    exc}`` in the results and the run is still reported completed.
    """
    return {
        node_id: output
        for node_id, output in results.items()
        if isinstance(output, Mapping) and output.get("failed") is True and "error" in output
    }


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


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
    tracked in memory only (see the module docstring).
    """
    if not callable(update):
        raise TypeError(f"update must be callable, got {type(update).__name__}")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TypeError(f"parameters must be a dict or None, got {type(parameters).__name__}")
    check_chars("max_output_chars", max_output_chars)
    k = _kailash()
    built = _built_workflow(workflow, k)
    workflow_id = _optional_text(getattr(built, "workflow_id", None))
    workflow_name = _optional_text(getattr(built, "name", None))

    mirror = _RunMirror(update, built.nodes, max_output_chars)
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
            _report_failure(mirror, update, type(exc).__name__, _first_line(str(exc) or repr(exc)), elapsed)
            raise
        error_type, message = _describe(exc, k.package_dir)
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
    continued = _continued_failures(results)
    if continued:
        node_id = next(iter(continued))  # results are in execution order: the first failure
        cause = continued[node_id].get("_exception")
        if isinstance(cause, BaseException):
            error_type, message = _describe(cause, k.package_dir)
        else:
            error_type = str(continued[node_id].get("error_type") or "NodeExecutionError")
            message = _first_line(continued[node_id].get("error"))
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
    mirror: _RunMirror,
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
            schema = _json_copy(dict(parameters_schema))
        except TypeError as exc:
            raise ValueError(f"parameters_schema must be JSON-serializable: {exc}") from exc
    built = _built_workflow(workflow, _kailash())

    def run(**kwargs: Any) -> Any:
        """Execute the workflow for one tool call; return JSON-safe results."""
        outcome = execute_workflow(built, kwargs, update=update, runtime=runtime)
        return json_safe_summary(outcome.results, max_result_chars)

    run.__name__ = run.__qualname__ = name
    run.__doc__ = description
    return WorkflowTool(name, description, schema, run)


def _optional_text(value: Any) -> str | None:
    return str(value) if value is not None and str(value) else None


