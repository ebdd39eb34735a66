"""`trustrl account new|import|dev` never overwrites a keystore: a second write to the same file fails with
one line naming the address it holds and leaves the file as it was; `--force` replaces it. Keystores are
mode 0600. Through the real CLI as a subprocess (no chain needed)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from netharness import REPO, cli_env

DEV_1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # anvil's dev account 1


def _account(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol.cli", "account", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=cli_env(),
        cwd=REPO,
        timeout=120,
    )


def _address(path: Path) -> str:
    return "0x" + str(json.loads(path.read_text())["address"]).lower()


def test_account_new_twice_keeps_the_first_key(tmp_path: Path) -> None:
    key = tmp_path / "k.json"
    first = _account("new", str(key))
    assert first.returncode == 0, first.stderr
    address = first.stdout.split(" -> ")[0].strip()
    assert _address(key) == address.lower()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()

    second = _account("new", str(key))
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    [line] = second.stderr.strip().splitlines()
    assert line.startswith(f"error: keystore {key} exists (it holds {address}): not overwritten"), line
    assert "--force" in line
    assert key.read_bytes() == before  # the first key is still there

    forced = _account("new", str(key), "--force")
    assert forced.returncode == 0, forced.stderr
    assert key.read_bytes() != before
    assert _address(key) == forced.stdout.split(" -> ")[0].strip().lower() != address.lower()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]  # no temporary file left behind


@pytest.mark.parametrize("command", ["import", "dev"])
def test_import_and_dev_refuse_an_existing_file(tmp_path: Path, command: str) -> None:
    key = tmp_path / "k.json"
    key.write_text('{"address": "abc", "crypto": {}}')
    args = ["dev", "1", str(key)] if command == "dev" else ["import", str(key)]
    stdin = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d\n"  # dev key 1
    refused = _account(*args, stdin=stdin)
    assert refused.returncode == 1, refused.stdout
    assert "exists" in refused.stderr
    assert key.read_text() == '{"address": "abc", "crypto": {}}'
    forced = _account(*args, "--force", stdin=stdin)
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.startswith(DEV_1)
    assert _address(key) == DEV_1.lower()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_the_library_refuses_too_and_names_the_address(tmp_path: Path) -> None:
    """`save_keystore_account` is exclusive by itself (the demo and the tests write keystores with it)."""
    from protocol.chain import save_keystore_account
    from protocol.errors import ConfigError

    key = tmp_path / "k.json"
    save_keystore_account("0x" + "11" * 32, key, "pw", iterations=2)
    held = r"(?i)exists \(it holds 0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a\)"
    with pytest.raises(ConfigError, match=held):
        save_keystore_account("0x" + "22" * 32, key, "pw", iterations=2)
