"""`trustrl demo --keep` leaves a deployment that can be served again, queried and audited: anvil's state is
dumped when it stops, and `trustrl demo --resume DIR` restarts anvil from it and IPFS from the kept repo
until Ctrl-C. The demo also shows the initiator's warm start while it runs. Real processes throughout: a
1-round demo (~2-4 min on 2 cores), then `task status` and `audit` against the served directory."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netharness import REPO, cli_env

from protocol.audit.cli import EXIT_DISCREPANCIES

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.ipfs]


def _cli(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "protocol.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
    )


def test_a_kept_demo_is_served_again_queried_and_audited(tmp_path: Path) -> None:
    env = {**cli_env(), "TMPDIR": str(tmp_path)}  # the demo's directory lands in this test's tmp_path
    summary = tmp_path / "demo.json"
    ran = _cli("demo", "--rounds", "1", "--keep", "--no-audit", "--json", str(summary), env=env, timeout=1200)
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-2000:]
    out = " ".join(ran.stdout.split())
    assert re.search(r"initiator: warm start \(to accuracy 0.3, at most 2000 steps\): started", out), out
    assert re.search(r"initiator: warm start: \d+ steps, accuracy ", out), out
    kept = Path(re.findall(r"kept (\S+): logs in", out)[0])
    assert (kept / "anvil-state.json").stat().st_size > 0
    per_round = json.loads(summary.read_text())["per_round"]
    assert [r["round"] for r in per_round] == [0]  # rounds are numbered from 0, as on chain

    serving = subprocess.Popen(
        [sys.executable, "-m", "protocol.cli", "demo", "--resume", str(kept)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=REPO,
        text=True,
        start_new_session=True,
    )
    try:
        assert serving.stdout is not None
        deadline = time.monotonic() + 180
        seen = ""
        while "Ctrl-C stops both" not in seen:
            assert time.monotonic() < deadline, seen
            assert serving.poll() is None, seen
            seen += serving.stdout.readline()
        network = str(kept / "network.json")
        status = _cli("task", "status", "1", "--network", network, "--json", env=env)
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["status"] == "COMPLETED"
        [row] = report["rounds"]
        # 3 honest trainers, the cheater and the honeypot; the cheater and the honeypot rejected.
        assert (row["submissions"], row["accepted"], row["rejected"], row["unavailable"]) == (5, 3, 2, 0)
        audit_json = str(tmp_path / "audit.json")
        audited = _cli("audit", "--task", "1", "--network", network, "--json", audit_json, env=env)
        # The demo's lazy validator accepted the honeypot: the audit flags it (exit 3), and nothing else.
        assert audited.returncode == EXIT_DISCREPANCIES, audited.stdout[-3000:] + audited.stderr[-2000:]
        kinds = json.loads(Path(audit_json).read_text())["discrepancy_kinds"]
        assert kinds == {"lazy_validator": 1}, kinds
        os.kill(serving.pid, signal.SIGINT)
        rest, _ = serving.communicate(timeout=60)
    finally:
        if serving.poll() is None:
            os.kill(serving.pid, signal.SIGKILL)
            serving.wait()
    assert serving.returncode == 0, seen + rest
    assert "stopped; the chain is dumped again" in rest
