"""`kaizen keys generate|rotate` and an encrypted store driven through the CLI."""

from __future__ import annotations

from click.testing import CliRunner

from kaizen.cli import main


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env or {}, catch_exceptions=False)


def test_encrypted_demo_audit_and_rotation(tmp_path):
    store = f"sqlite:///{tmp_path}/enc.db"
    key = run("keys", "generate").output.strip()
    assert len(key) == 44 and run("keys", "generate").output.strip() != key
    env = {"KAIZEN_ENCRYPTION_KEY": key}
    demo = run("demo", "--yes", "--no-workflow", "--agent-id", "enc", "--workdir", tmp_path / "w", "--store", store,
               env=env)
    assert demo.exit_code == 0, demo.output
    assert b"Field notes" not in (tmp_path / "enc.db").read_bytes()
    assert "Write" in run("audit", "enc", "--store", store, env=env).output
    without = run("audit", "enc", "--store", store)
    assert without.exit_code == 1 and "encrypted" in without.output and "Traceback" not in without.output
    new_key = run("keys", "generate").output.strip()
    rotated = run("keys", "rotate", "enc", "--store", store, env={**env, "KAIZEN_NEW_ENCRYPTION_KEY": new_key})
    assert rotated.exit_code == 0 and "re-encrypted" in rotated.output
    old = run("audit", "enc", "--store", store, env=env)
    assert old.exit_code == 1 and "different key" in old.output
    assert run("audit", "verify", "enc", "--store", store, env={"KAIZEN_ENCRYPTION_KEY": new_key}).exit_code == 0


def test_rotate_needs_the_new_key(tmp_path):
    store = f"sqlite:///{tmp_path}/enc.db"
    run("demo", "--yes", "--no-workflow", "--agent-id", "plain", "--workdir", tmp_path / "w", "--store", store)
    result = run("keys", "rotate", "plain", "--store", store)
    assert result.exit_code == 1 and "KAIZEN_NEW_ENCRYPTION_KEY" in result.output
