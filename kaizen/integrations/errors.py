"""Errors of kaizen's integrations with other agent and workflow frameworks.

Each error names what failed (package, workflow, node) so a user can act on it
without reading our source. A missing optional package subclasses the built-in
``ImportError`` so generic ``except ImportError`` handlers keep working.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Base class of every error raised by ``kaizen.integrations``."""


class MissingExtraError(IntegrationError, ImportError):
    """An optional dependency is needed but not installed; the message says which extra brings it."""

    needs = ""  # what is missing, as a sentence fragment
    extra = ""  # the kaizen-state extra that installs it
    name_of_module = ""

    def __init__(self, detail: str | None = None) -> None:
        them = "them" if " and " in self.needs else "it"
        message = f'{self.needs}; install {them} with: pip install "kaizen-state[{self.extra}]"'
        if detail:
            message = f"{message} ({detail})"
        super().__init__(message, name=self.name_of_module)


class KailashNotInstalledError(MissingExtraError):
    """The optional ``kailash`` package is needed but not installed."""

    needs = 'the Kailash integration needs the "kailash" package'
    extra = name_of_module = "kailash"


class WorkflowExecutionError(IntegrationError):
    """A Kailash workflow run failed; the runtime's exception is ``__cause__``.

    Attributes carry what the agent's workflow state was told, so a handler can
    report or retry without parsing the message.
    """

    def __init__(
        self,
        *,
        workflow_name: str | None,
        workflow_id: str | None = None,
        run_id: str | None = None,
        failed_node: str | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
    ) -> None:
        where = f"at node {failed_node!r}" if failed_node else "before or outside any node"
        label = repr(workflow_name) if workflow_name else "(unnamed)"
        if workflow_id and workflow_id != workflow_name:
            label = f"{label} (id {workflow_id})"
        what = ": ".join(part for part in (error_type, error_message) if part) or "unknown error"
        super().__init__(f"Kailash workflow {label} failed {where}: {what}")
        self.workflow_name = workflow_name
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.failed_node = failed_node
        self.error_type = error_type
        self.error_message = error_message
