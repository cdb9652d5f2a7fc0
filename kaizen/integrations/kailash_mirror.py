"""Mirror a real Kailash workflow run into an agent's workflow state: the runtime side
(``kailash.py`` holds the functions an agent calls; this module, what they hand the runtime).

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
import threading
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from kaizen.core.values import is_number, json_copy

from .errors import KailashNotInstalledError
from .summary import json_safe_summary

MAX_ERROR_CHARS = 500


@functools.cache
def kailash_modules() -> SimpleNamespace:
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


def built_workflow(workflow: Any, k: SimpleNamespace) -> Any:
    """Accept a built Workflow or a WorkflowBuilder (built here)."""
    if isinstance(workflow, k.WorkflowBuilder):
        return workflow.build()
    if isinstance(workflow, k.Workflow):
        return workflow
    raise TypeError(
        f"workflow must be a kailash Workflow or WorkflowBuilder, got {type(workflow).__name__}"
    )


def status_text(status: Any) -> str:
    return str(getattr(status, "value", status))


def first_line(text: Any, limit: int = MAX_ERROR_CHARS) -> str:
    """One bounded line: Kailash embeds whole tracebacks in node error strings."""
    line = str(text).strip().split("\n", 1)[0].strip()
    return line if len(line) <= limit else line[: limit - 1] + "…"


class RunMirror:
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
            copied: dict[str, dict[str, Any]] = json_copy(self.node_results)
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
        status = status_text(task.status)
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
            self._send(node_results=json_copy(self.node_results))

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
            entry["error"] = first_line(task.error)
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
        seconds = float(raw) if is_number(raw) else None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
