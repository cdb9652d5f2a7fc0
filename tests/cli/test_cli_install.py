"""A plain install (a fresh venv, the package and its declared dependencies only) has a working
`kaizen` command: every module the CLI and the demo import is declared in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would let the venv see this checkout or our packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KAIZEN_STORE")}
    env.update(extra)
    return env


@pytest.mark.slow
def test_bare_install_in_a_fresh_venv_runs_the_command(tmp_path):
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    python, kaizen = env_dir / "bin" / "python", env_dir / "bin" / "kaizen"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              str(REPO)], capture_output=True, text=True, env=clean_env(), timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr

    work = tmp_path / "work"
    work.mkdir()
    for args in (["--help"], ["demo", "--help"]):
        shown = subprocess.run([str(kaizen), *args], capture_output=True, text=True, env=clean_env(), cwd=work,
                               timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("Usage: kaizen"), shown.stdout
        assert shown.stderr == ""
    # the demo imports the agent, its tools and providers: all of it must come with the install
    ran = subprocess.run([str(kaizen), "demo", "--yes", "--no-workflow", "--agent-id", "fresh"],
                         capture_output=True, text=True, env=clean_env(COLUMNS="120"), cwd=work, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "completed after 5 cycles" in ran.stdout
    where = subprocess.run([str(python), "-c", "import kaizen, click; print(kaizen.__file__)"],
                           capture_output=True, text=True, env=clean_env(), cwd=work, timeout=60)
    assert str(env_dir) in where.stdout, "the venv imported kaizen from somewhere else"
    assert sys.prefix not in where.stdout
