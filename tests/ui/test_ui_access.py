"""Who may reach the console: loopback only without a token, the token otherwise, and the
``kaizen ui`` command itself (its refusals, the URL it prints, Ctrl-C)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient
from ui_helpers import REPO, default_sigint, run_deferred

from kaizen.ui import create_app
from kaizen.ui.security import TOKEN_COOKIE, check_bind, is_loopback

TOKEN = "t0ken-for-the-console-tests"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("access")
    url = f"sqlite:///{tmp}/state.db"
    run_deferred(url, tmp / "work", "hostile")
    return url


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"])
def test_loopback_binds_need_no_token(host):
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_any_other_bind_needs_a_token_and_the_error_says_how(host):
    assert not is_loopback(host)
    with pytest.raises(ValueError, match="needs a token: pass --token T .*KAIZEN_UI_TOKEN.*--host 127.0.0.1"):
        check_bind(host, None)
    check_bind(host, TOKEN)
    with pytest.raises(ValueError, match="at least 16 characters"):
        check_bind(host, "short")


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765"])
def test_without_a_token_loopback_host_names_are_served(store, host):
    with TestClient(create_app(store), base_url=f"http://{host}") as console:
        assert console.get("/").status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "192.168.1.20:8765"])
def test_without_a_token_other_host_names_are_refused(store, host):
    """A page elsewhere cannot reach a loopback console by pointing its own name at 127.0.0.1."""
    with TestClient(create_app(store), base_url=f"http://{host}") as console:
        page = console.get("/pending")
    assert page.status_code == 403 and "loopback" in page.text and "call_write" not in page.text


def test_with_a_token_each_request_must_carry_it(store):
    app = create_app(store, token=TOKEN)
    with TestClient(app, base_url="http://192.168.1.20:8765") as console:
        refused = console.get("/pending")
        assert refused.status_code == 401 and "call_write" not in refused.text and "?token=" in refused.text
        assert console.get("/pending?token=wrong-token-of-enough-length").status_code == 401
        assert console.get("/", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert console.get("/", headers={"authorization": "Bearer nope-nope-nope-nope"}).status_code == 401
        opened = console.get(f"/pending?token={TOKEN}&x=1", follow_redirects=False)
        assert opened.status_code == 303 and opened.headers["location"] == "/pending?x=1"  # token out of the URL
        cookie = opened.headers["set-cookie"]
        assert f"{TOKEN_COOKIE}={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "call_write" in console.get("/pending").text  # the cookie carries it from now on
    with TestClient(app, base_url="http://192.168.1.20:8765") as stranger:
        assert stranger.get("/static/console.css").status_code == 401


def kaizen(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}
    env.pop("KAIZEN_UI_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "kaizen.cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def test_kaizen_ui_refuses_a_public_bind_without_a_token(store):
    done = kaizen("ui", "--store", store, "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("error: --host 0.0.0.0 makes the console reachable from other machines")
    assert "--token" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_kaizen_ui_refuses_a_missing_store_without_making_one(tmp_path):
    done = kaizen("ui", "--store", f"sqlite:///{tmp_path}/none.db", "--port", "0")
    assert done.returncode == 1 and "no store at" in done.stderr and "kaizen demo" in done.stderr
    assert not (tmp_path / "none.db").exists()


def test_kaizen_ui_serves_the_printed_url_and_ctrl_c_ends_it_with_130(store):
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", "KAIZEN_UI_TOKEN": TOKEN}
    process = subprocess.Popen([sys.executable, "-m", "kaizen.cli", "ui", "--store", store, "--port", "0",
                                "--host", "0.0.0.0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, preexec_fn=default_sigint)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"kaizen console for {store}: http://0.0.0.0:") and line.rstrip().endswith(
            f"/?token={TOKEN}")
        port = int(line.rsplit(":", 1)[1].split("/", 1)[0])
        page = httpx.get(f"http://127.0.0.1:{port}/pending", headers={"authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert page.status_code == 200 and "call_write" in page.text
        assert httpx.get(f"http://127.0.0.1:{port}/pending", timeout=60).status_code == 401
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130 and err.strip() == "console stopped"


def test_read_only_flag_is_printed(store):
    process = subprocess.Popen([sys.executable, "-m", "kaizen.cli", "ui", "--store", store, "--port", "0",
                                "--read-only"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250"}, preexec_fn=default_sigint)
    try:
        assert process.stdout is not None
        assert "(read-only): http://127.0.0.1:" in process.stdout.readline()
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert Path(store[len("sqlite:///"):]).exists()
