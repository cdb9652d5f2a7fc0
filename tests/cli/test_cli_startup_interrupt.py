"""Ctrl-C while the `kaizen` command is still loading its modules ends it like any other Ctrl-C:
one line on stderr and exit code 130, never a Python traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Runs the console script's function with a Ctrl-C arriving while one of the CLI's modules loads
# (deterministic, unlike a signal sent after a delay).
INTERRUPTED_IMPORT = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "kaizen.cli.log":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["kaizen", "agents"]
from kaizen.console import main
main()
"""


def test_ctrl_c_while_the_command_loads_is_one_line_and_exit_130(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run([sys.executable, "-c", INTERRUPTED_IMPORT], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "KeyboardInterrupt" not in done.stderr
    assert done.stderr.startswith("interrupted") and done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_the_console_script_is_the_guarded_entry_point():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["kaizen"] == "kaizen.console:main"


def test_importing_the_package_loads_nothing_else_and_still_knows_its_version():
    """`kaizen` starts by importing the package: the less it loads, the shorter the moment in which
    a Ctrl-C cannot yet be turned into the command's one line."""
    env = {k: v for k, v in os.environ.items() if k != "KAIZEN_STORE"}
    env["PYTHONPATH"] = str(REPO)
    probe = ("import sys; before = set(sys.modules); import kaizen; "
             "print(sorted(set(sys.modules) - before)); print(kaizen.__version__)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    loaded, version = done.stdout.splitlines()
    assert loaded == "['kaizen']", loaded
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", version), version
