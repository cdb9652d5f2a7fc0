"""``AutonomousConfig``: every knob of an autonomous agent, checked when it is made."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

from kaizen.core.values import is_int
from kaizen.core.autonomy.permissions.pending import APPROVAL_MODES, ApprovalMode
from kaizen.core.autonomy.permissions.policy import POLICIES, Policy
from kaizen.core.autonomy.state.redaction import DEFAULT_SUMMARY_LIMIT
from kaizen.core.autonomy.state.storage.base import DEFAULT_STORE_URL
from kaizen.providers.toolchoice import ToolChoice, as_tool_choice

from .errors import ConfigError

if TYPE_CHECKING:
    from kaizen.core.autonomy.state.storage.base import CheckpointStore

ProviderName = Literal["ollama", "openai", "anthropic", "scripted"]
OnDenial = Literal["stop", "continue"]
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
APPROVAL_POLICIES: tuple[Policy, ...] = POLICIES
ON_DENIAL: tuple[OnDenial, ...] = get_args(OnDenial)
DEFAULT_STORE = DEFAULT_STORE_URL


@dataclass
class AutonomousConfig:
    """Configuration of ``BaseAutonomousAgent``.

    ``storage`` is a store URL (``sqlite:///path``, ``file:///dir``,
    ``postgresql://...``, ``memory://``) or a store object; the embedded SQLite
    file under ``./.kaizen/`` is the default and is only opened on first use.
    A checkpoint is saved every ``checkpoint_frequency`` cycles and, with
    ``checkpoint_tool_calls``, around every tool call (each save writes only what
    changed, so this is cheap), which is what lets a killed run resume without
    repeating a call. With ``worker_id`` set, ``run`` holds an expiring lease on
    the agent (renewed while running) so two workers never run it at once.
    ``on_denial``: "stop" ends the run with status "denied";
    "continue" tells the model and goes on. ``approval_mode``: "inline" asks the approval
    callback in this process; "defer" ends the run with status "awaiting_approval" instead,
    the waiting calls saved in the checkpoint for any process to decide
    (``approve``/``deny``) before ``run(resume=True)`` continues (docs/approvals-and-hooks.md);
    ``approval_deadline_seconds``: a waiting call not decided that long is denied on resume.

    The original's names, with its meaning: ``planning_enabled`` (default True) asks the model
    to lay out a short plan before acting and to keep it up to date; ``resume_from_checkpoint``
    makes every ``run`` continue the agent from its latest checkpoint when it has one
    (``run(resume=True)``); ``checkpoint_interval_seconds`` also saves at the end of a cycle
    once that many seconds passed since the last save (besides ``checkpoint_frequency``).
    ``tool_choice`` ("auto", "none", "required", ``NamedTool(name)`` or ``{"name": ...}``) is
    sent with every model call; None leaves it to the server (see docs/agent-loop.md).
    """

    max_cycles: int = 20
    llm_provider: ProviderName = "ollama"
    model: str = "llama3.2"
    temperature: float | None = None
    tool_choice: ToolChoice | None = None
    base_url: str | None = None
    api_key: str | None = None
    provider_options: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    system_prompt: str | None = None
    # checkpoints
    storage: str | CheckpointStore | None = None
    checkpoint_frequency: int = 1
    checkpoint_interval_seconds: float = 60.0
    resume_from_checkpoint: bool = False
    checkpoint_tool_calls: bool = True
    encryption_key: str | None = None
    retention_count: int | None = None
    worker_id: str | None = None
    lease_ttl: float = 30.0
    # approvals and tools
    approval_policy: Policy = "ask"
    approval_mode: ApprovalMode = "inline"
    approval_deadline_seconds: float | None = None
    on_denial: OnDenial = "stop"
    workdir: str | None = None
    bash_timeout: float = 30.0
    summary_limit: int = DEFAULT_SUMMARY_LIMIT
    planning_enabled: bool = True
    # cost
    budget_limit_usd: float | None = None
    prices: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print keys
        shown = {k: ("***" if k in ("api_key", "encryption_key") and v else v) for k, v in vars(self).items()}
        return "AutonomousConfig(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    def __post_init__(self) -> None:
        _positive_int(self.max_cycles, "max_cycles")
        _positive_int(self.checkpoint_frequency, "checkpoint_frequency")
        if self.retention_count is not None:
            _positive_int(self.retention_count, "retention_count")
        if self.llm_provider not in PROVIDERS:
            raise ConfigError(f"llm_provider {self.llm_provider!r} is not one of {', '.join(PROVIDERS)}")
        try:
            self.tool_choice = as_tool_choice(self.tool_choice)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(self.model, str) or not self.model:
            raise ConfigError("model must be a non-empty str, e.g. 'llama3.2'")
        if self.approval_policy not in APPROVAL_POLICIES:
            raise ConfigError(
                f"approval_policy {self.approval_policy!r} is not one of {', '.join(APPROVAL_POLICIES)}"
            )
        if self.approval_mode not in APPROVAL_MODES:
            raise ConfigError(f"approval_mode {self.approval_mode!r} is not one of {', '.join(APPROVAL_MODES)}")
        deadline = self.approval_deadline_seconds
        if deadline is not None and (isinstance(deadline, bool) or not isinstance(deadline, (int, float))
                                     or not 0 < deadline <= 10 * 365 * 86_400):  # NaN fails too
            raise ConfigError(f"approval_deadline_seconds must be a number of seconds > 0 (at most ten years) "
                              f"or None, got {deadline!r}")
        if self.on_denial not in ON_DENIAL:
            raise ConfigError(f"on_denial must be 'stop' or 'continue', got {self.on_denial!r}")
        if not is_int(self.summary_limit) or self.summary_limit < 16:
            raise ConfigError(f"summary_limit must be an int >= 16, got {self.summary_limit!r}")
        if self.budget_limit_usd is not None and (
            isinstance(self.budget_limit_usd, bool)
            or not isinstance(self.budget_limit_usd, (int, float))
            or not math.isfinite(self.budget_limit_usd)
            or self.budget_limit_usd < 0
        ):
            raise ConfigError(f"budget_limit_usd must be a number >= 0, got {self.budget_limit_usd!r}")
        if not isinstance(self.bash_timeout, (int, float)) or self.bash_timeout <= 0:
            raise ConfigError(f"bash_timeout must be a number > 0, got {self.bash_timeout!r}")
        if (isinstance(self.checkpoint_interval_seconds, bool)
                or not isinstance(self.checkpoint_interval_seconds, (int, float))
                or not self.checkpoint_interval_seconds > 0):  # NaN fails too
            raise ConfigError("checkpoint_interval_seconds must be a number of seconds > 0, "
                              f"got {self.checkpoint_interval_seconds!r}")
        for flag in ("planning_enabled", "resume_from_checkpoint", "checkpoint_tool_calls"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{flag} must be True or False, got {getattr(self, flag)!r}")


def _positive_int(value: object, name: str) -> None:
    if not is_int(value) or value < 1:
        raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
