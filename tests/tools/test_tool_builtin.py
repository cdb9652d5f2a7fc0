"""Built-in Read/Write/Bash against real files and real subprocesses."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kaizen.tools import InvalidToolError, PathOutsideWorkdirError, ToolRegistry, builtin_tools
from kaizen.tools.paths import resolve_inside


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    root = tmp_path / "work"
    root.mkdir()
    return root


@pytest.fixture
def registry(workdir: Path) -> ToolRegistry:
    return ToolRegistry(builtin_tools(workdir, bash_timeout=5.0, max_output_chars=200))


def test_builtin_tools_and_their_danger(workdir):
    tools = {tool.name: tool for tool in builtin_tools(workdir)}
    assert list(tools) == ["Read", "Write", "Bash"]
    assert tools["Read"].danger == "read_only" and tools["Read"].rerunnable
    assert tools["Write"].danger == tools["Bash"].danger == "side_effect"
    assert not tools["Write"].rerunnable and not tools["Bash"].rerunnable
    assert tools["Read"].parameters["required"] == ["path"]


def test_builtin_tools_validate_their_configuration(tmp_path):
    with pytest.raises(InvalidToolError, match="does not exist"):
        builtin_tools(tmp_path / "missing")
    with pytest.raises(InvalidToolError, match="bash_timeout"):
        builtin_tools(tmp_path, bash_timeout=0)
    with pytest.raises(InvalidToolError, match="max_output_chars"):
        builtin_tools(tmp_path, max_output_chars=0)


# -- Write ---------------------------------------------------------------


def test_write_creates_parents_and_reads_back(registry, workdir):
    result = registry.execute("Write", {"path": "deep/er/notes.txt", "content": "héllo\nworld\n"})
    assert result.ok and result.output == "wrote 13 bytes to deep/er/notes.txt"
    assert (workdir / "deep/er/notes.txt").read_text(encoding="utf-8") == "héllo\nworld\n"
    assert registry.execute("Read", {"path": "deep/er/notes.txt"}).output == "héllo\nworld\n"


def test_write_replaces_atomically_and_keeps_mode(registry, workdir):
    target = workdir / "script.sh"
    target.write_text("old")
    target.chmod(0o750)
    assert registry.execute("Write", {"path": "script.sh", "content": "new"}).ok
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert sorted(p.name for p in workdir.iterdir()) == ["script.sh"]  # no temp file left behind


def test_write_through_inside_symlink_updates_target(registry, workdir):
    (workdir / "real.txt").write_text("a")
    (workdir / "link.txt").symlink_to("real.txt")
    assert registry.execute("Write", {"path": "link.txt", "content": "b"}).ok
    assert (workdir / "link.txt").is_symlink() and (workdir / "real.txt").read_text() == "b"


def test_write_to_a_directory_is_an_error(registry, workdir):
    (workdir / "d").mkdir()
    for path in ("d", "."):
        result = registry.execute("Write", {"path": path, "content": "x"})
        assert not result.ok and result.error.startswith("IsADirectoryError") and repr(path) in result.error


# -- confinement -------------------------------------------------------


def escape_attempts(workdir: Path, outside: Path) -> list[str]:
    (workdir / "escape").symlink_to(outside)  # directory symlink pointing out
    (workdir / "escape_file").symlink_to(outside / "secret.txt")  # file symlink pointing out
    return [
        "../secret.txt",
        "sub/../../secret.txt",
        str(outside / "secret.txt"),
        "/etc/passwd",
        "escape/secret.txt",
        "escape_file",
        "escape/new_dir/new.txt",
    ]


@pytest.mark.parametrize("tool", ["Read", "Write"])
def test_paths_outside_the_workdir_are_rejected(registry, workdir, tmp_path, tool):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("top secret")
    for path in escape_attempts(workdir, outside):
        arguments = {"path": path} if tool == "Read" else {"path": path, "content": "pwned"}
        result = registry.execute(tool, arguments)
        assert not result.ok, path
        assert result.error.startswith("PathOutsideWorkdirError: path ") and repr(path) in result.error
    assert (outside / "secret.txt").read_text() == "top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]  # nothing created outside


def test_absolute_path_inside_and_dotdot_staying_inside_are_allowed(registry, workdir):
    (workdir / "a").mkdir()
    (workdir / "f.txt").write_text("inside")
    assert registry.execute("Read", {"path": str(workdir / "f.txt")}).output == "inside"
    assert registry.execute("Read", {"path": "a/../f.txt"}).output == "inside"


def test_symlink_loop_is_reported(registry, workdir):
    (workdir / "loop").symlink_to("loop")
    result = registry.execute("Read", {"path": "loop"})
    assert not result.ok and "'loop'" in result.error


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(["..", ".", "a", "b", "", "/", "link", "c.txt"]), max_size=8))
def test_resolved_paths_are_inside_or_rejected(tmp_path, parts):
    root = (tmp_path / "root").resolve()
    root.mkdir(exist_ok=True)
    (root / "a").mkdir(exist_ok=True)
    if not (root / "link").is_symlink():
        (root / "link").symlink_to(tmp_path)
    path = "/".join(parts) or "."
    try:
        resolved = resolve_inside(root, path)
    except PathOutsideWorkdirError as exc:
        assert repr(path) in str(exc)
    else:
        assert resolved == root or resolved.is_relative_to(root)


# -- Read ----------------------------------------------------------------


def test_read_offset_and_limit(registry, workdir):
    (workdir / "lines.txt").write_text("".join(f"line {i}\n" for i in range(1, 11)))
    assert registry.execute("Read", {"path": "lines.txt", "offset": 3, "limit": 2}).output == "line 3\nline 4\n"
    assert registry.execute("Read", {"path": "lines.txt", "offset": 10}).output == "line 10\n"
    past = registry.execute("Read", {"path": "lines.txt", "offset": 20}).output
    assert "has 10 lines" in past and "offset 20" in past
    bad = registry.execute("Read", {"path": "lines.txt", "offset": 0})
    assert not bad.ok and "argument 'offset' must be >= 1" in bad.error


def test_read_truncates_with_a_note(registry, workdir):
    (workdir / "big.txt").write_text("".join(f"{i:04d}" + "x" * 45 + "\n" for i in range(100)))  # 5000 chars
    output = registry.execute("Read", {"path": "big.txt"}).output
    assert output.startswith("0000")
    assert "4800 of 5000 characters cut" in output and "continue with offset=5" in output


def test_read_errors_name_the_path(registry, workdir):
    missing = registry.execute("Read", {"path": "nope.txt"})
    assert not missing.ok and missing.error.startswith("FileNotFoundError") and "nope.txt" in missing.error
    (workdir / "blob.bin").write_bytes(b"\x00\x01\x02")
    binary = registry.execute("Read", {"path": "blob.bin"})
    assert not binary.ok and "'blob.bin' looks like a binary file" in binary.error


# -- Bash ----------------------------------------------------------------


def test_bash_runs_in_workdir_and_reports_exit_code(registry, workdir):
    result = registry.execute("Bash", {"command": "pwd; echo oops >&2; exit 3"})
    assert result.ok
    assert result.output == {"exit_code": 3, "stdout": f"{workdir}\n", "stderr": "oops\n", "timed_out": False}


def test_bash_truncates_output_keeping_both_ends(registry):
    result = registry.execute("Bash", {"command": "echo START; head -c 5000 /dev/zero | tr '\\0' x; echo; echo END"})
    stdout = result.output["stdout"]
    assert stdout.startswith("START") and stdout.rstrip().endswith("END")
    assert "characters cut" in stdout and len(stdout) < 300
    cut = int(stdout.split("[... ")[1].split(" of ")[0])
    assert cut == len("START\n") + 5000 + len("\nEND\n") - 200


def test_bash_huge_output_stays_bounded(workdir):
    (tool,) = [t for t in builtin_tools(workdir, max_output_chars=100) if t.name == "Bash"]
    result = ToolRegistry([tool]).execute("Bash", {"command": "head -c 3000000 /dev/zero | tr '\\0' y; echo TAIL"})
    stdout = result.output["stdout"]
    assert stdout.startswith("y" * 50) and stdout.endswith("TAIL\n") and "bytes cut" in stdout


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def test_bash_timeout_kills_the_whole_process_group(workdir):
    (tool,) = [t for t in builtin_tools(workdir, bash_timeout=0.5) if t.name == "Bash"]
    registry = ToolRegistry([tool])
    started = time.monotonic()
    result = registry.execute("Bash", {"command": "sleep 30 & echo $! > child.pid; echo started; sleep 30"})
    elapsed = time.monotonic() - started

    assert elapsed < 3
    assert result.ok and result.output["timed_out"] is True
    assert result.output["exit_code"] < 0 and result.output["stdout"] == "started\n"
    assert "timed out after 0.5 s" in result.output["note"]
    child = int((workdir / "child.pid").read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "background child of the timed-out command survived"


def test_bash_does_not_wait_for_stdin(registry):
    result = registry.execute("Bash", {"command": "cat; echo done"})
    assert result.output["stdout"] == "done\n"
