"""The README's Python examples run as written."""

from __future__ import annotations

from pathlib import Path

from spec_blocks import code_blocks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(README)
    assert blocks, "the README has no Python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
    assert namespace["agent"]._get_tool_usage_counts() == {"Read": 5}
    assert namespace["agent"].state_manager.load_checkpoint(namespace["checkpoint_id"]).workflow_run_id == "run_1"
