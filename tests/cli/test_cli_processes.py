"""The `kaizen` command as separate processes: one agent never runs in two processes at once,
and Ctrl-C at any moment ends with one line, exit 130, and an agent that `kaizen resume` continues."""

from __future__ import annotations

import os
import random
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kaizen.core.autonomy.state.sync_manager import SyncStateManager
from kaizen.demo import auto_approver, build_demo_agent

REPO = Path(__file__).resolve().parents[2]
EXIT_BUSY, EXIT_INTERRUPTED = 75, 130


def kaizen_process(*args: str, cwd: Path, stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env.update({"COLUMNS": "200", "PYTHONPATH": str(REPO), "TMPDIR": str(cwd)})
    return subprocess.Popen([sys.executable, "-m", "kaizen.cli", *args], cwd=cwd, env=env, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kaizen(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    process = kaizen_process(*args, cwd=cwd)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def read_until(stream, needle: str, timeout: float) -> str:
    """Read ``stream`` (a pipe of a running process) until ``needle`` shows up."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    seen, deadline = "", time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} did not appear within {timeout}s; got {seen!r}"
        if selector.select(left):
            chunk = os.read(stream.fileno(), 4096).decode()
            assert chunk, f"the process closed the stream before {needle!r}; got {seen!r}"
            seen += chunk
    return seen


@pytest.mark.slow
def test_resume_refuses_an_agent_waiting_at_an_approval_prompt_in_another_process(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    first = kaizen_process("demo", "--agent-id", "shared", "--no-workflow", "--workdir", "ws", "--store", store,
                           cwd=tmp_path, stdin=subprocess.PIPE)
    try:
        read_until(first.stderr, "[a]pprove once", timeout=120)  # waiting for the user, lease held
        second = kaizen("resume", "shared", "--yes", "--store", store, cwd=tmp_path)
        assert second.returncode == EXIT_BUSY, second.stderr
        assert "shared" in second.stderr and str(first.pid) in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        # the first process was not disturbed: it takes its answers and completes
        out, err = first.communicate("A\nA\n", timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert "completed after 5 cycles" in out
    assert "conflict" not in err and "another writer" not in err
    assert (tmp_path / "ws" / "report.md").is_file()


def test_resume_names_the_worker_that_holds_the_agent(tmp_path):
    store = f"sqlite:///{tmp_path / 'state.db'}"
    agent = build_demo_agent(store, tmp_path / "ws", "held", auto_approver(), with_workflow=False)
    agent.hooks.register("post_tool_use", stop_after_the_first_tool)
    with pytest.raises(KeyboardInterrupt):
        agent.run(task="checkpoints and approvals")
    agent.state_manager.close()
    manager = SyncStateManager(store)
    with manager.claim("held", "build-7:4242@2026-01-31T12:00:00Z", ttl=60):
        refused = kaizen("resume", "held", "--yes", "--store", store, cwd=tmp_path)
    manager.close()
    assert refused.returncode == EXIT_BUSY
    assert refused.stdout == ""  # no "resuming held ..." before the refusal: nothing was resumed
    assert refused.stderr.startswith("error: held is running in worker build-7:4242@2026-01-31T12:00:00Z "
                                     "(pid 4242 on host build-7) since 2026-01-31T12:00:00Z"), refused.stderr


def stop_after_the_first_tool(context):  # stands in for Ctrl-C
    raise KeyboardInterrupt


INTERRUPTED = re.compile(
    r"interrupted: (saved checkpoint (?P<checkpoint>ckpt_[0-9a-f]{12}) of (?P<agent>c\d+) \(step \d+\); "
    r"continue with: kaizen resume (?P=agent) --store '\S+'"
    r"|(?P<early>c\d+) saved no checkpoint yet; nothing to resume \(start it again\)"
    r"|the run of (?P<ended>c\d+) had already ended \(completed, checkpoint ckpt_[0-9a-f]{12}\); nothing to resume)"
)


@pytest.mark.slow
def test_ctrl_c_at_random_moments_of_the_demo(tmp_path):
    """SIGINT at random delays into `kaizen demo --yes`: each interrupted run ends with the same one
    line and exit 130 (never a traceback, "Aborted!" or a conflict), and resumes to completion."""
    seed = int(os.environ.get("KAIZEN_CTRL_C_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    store = f"sqlite:///{tmp_path / 'state.db'}"
    # how long a run lasts from its first line to its end, so delays cover all of it
    timing = kaizen_process("demo", "--yes", "--no-workflow", "--agent-id", "timing", "--store", store, cwd=tmp_path)
    read_until(timing.stdout, "kaizen demo agent", timeout=120)
    start = time.monotonic()
    assert timing.wait(timeout=120) == 0
    duration = time.monotonic() - start

    interrupted, completed, attempts = [], 0, 0
    while len(interrupted) < 20:
        attempts += 1
        assert attempts <= 80, f"only {len(interrupted)} of {attempts} runs were interrupted (seed {seed})"
        agent = f"c{attempts}"
        process = kaizen_process("demo", "--yes", "--no-workflow", "--agent-id", agent, "--workdir", f"ws-{agent}",
                                 "--store", store, cwd=tmp_path)
        read_until(process.stdout, "kaizen demo agent", timeout=120)
        delay = rng.uniform(0, duration)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        where = f"(seed {seed}, run {agent}, SIGINT after {delay:.3f}s)"
        if process.returncode == 0 and "completed after" in out:
            completed += 1  # the signal came after the process had finished its work
            continue
        assert process.returncode == EXIT_INTERRUPTED, f"{where} exit {process.returncode}: {err}"
        assert "Traceback" not in err and "Aborted" not in err and "another writer" not in err, f"{where} {err}"
        lines = err.splitlines()
        assert len(lines) == 1 and INTERRUPTED.fullmatch(lines[0]), f"{where} stderr: {err!r}"
        interrupted.append((agent, INTERRUPTED.fullmatch(lines[0]), where))

    for agent, line, where in interrupted:
        if line.group("early"):
            continue
        resumed = kaizen("resume", agent, "--yes", "--store", store, cwd=tmp_path)
        assert resumed.returncode == 0, f"{where} resume: {resumed.stderr}"
        assert "completed after" in resumed.stdout or "already ended with status completed" in resumed.stdout, \
            f"{where} resume: {resumed.stdout}"
    print(f"seed {seed}: {len(interrupted)} interrupted, {completed} finished first, run {duration:.2f}s")
