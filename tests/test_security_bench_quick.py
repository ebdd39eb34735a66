"""`scripts/bench_security.py --quick` runs the cheat library against the real checks on a small task and
meets its targets: every cheat caught often enough not to pay, no damage past 2 points, no honest trainer
rejected, every real cross-check agreeing with the seeds' composition; its JSON has the agreed shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_quick_security_bench_meets_its_targets(tmp_path: Path) -> None:
    out = tmp_path / "security.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_security.py"), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    cheats = {c["name"]: c for c in result["cheats"] if c["role"] == "trainer"}
    assert set(cheats) == {"nan-state", "poisoned-step", "fabricated-rollouts", "gate-tuned-reverse"}
    others = {c["name"]: c for c in result["cheats"] if c["role"] != "trainer"}
    assert {c["role"] for c in others.values()} == {"validator", "keeper"}
    assert {"lazy validator", "copy-vote validator", "wrong-vote validator", "no-vote validator",
            "non-revealing validator", "early finaliser", "seat squatter"} < set(others)  # fmt: skip
    assert others["lazy validator"]["expected_profit"] < 0  # the demo's honeypots slash it
    assert others["non-revealing validator"]["expected_profit"] < 0
    assert others["seat squatter"]["expected_profit"] < 0
    assert [o for o in result["open"] if "colluding" in o]  # not answered without a court: said, not hidden
    assert others["colluding pair, appealed (2 of 3 seats, 1/3 of the stake)"]["expected_profit"] < 0
    assert {a["appeal_draws"] for a in result["appeals"]} >= {101, 201}
    for c in cheats.values():
        assert {"name", "role", "detection_probability", "expected_profit", "damage_points"} <= set(c)
        assert c["role"] == "trainer"
        assert c["expected_profit"] < 0
        assert c["damage_points"] <= 2
    assert cheats["fabricated-rollouts"]["detection_probability"] == 1.0  # every rollout is replayed
    assert cheats["nan-state"]["detection_probability"] == 1.0
    assert cheats["poisoned-step"]["detection_probability"] == 1.0  # re-execution, else the quality gate
    reverse = cheats["gate-tuned-reverse"]
    assert reverse["detection_probability"] >= reverse["closed_form"] - 0.25  # s/H = 1/2 over 12 seeds
    assert result["honest"]
    for h in result["honest"]:
        assert h.get("false_rejections", 0) == 0
        assert h["expected_profit"] > 0
    assert result["mismatches"] == []
    collusion = {(c["pool"], c["committee"]): c for c in result["collusion"]}
    for pool in (3, 10, 100):
        assert collusion[pool, pool]["p_decides"] == 0.0  # a third of the seats never decides alone
        assert collusion[pool, pool]["cartel_stake_share"] == pytest.approx(1 / 3)
    assert 0 < collusion[100, 10]["p_decides"] < collusion[10, 3]["p_decides"]
