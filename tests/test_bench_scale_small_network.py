"""`scripts/bench_scale.py` on a real anvil at 3 trainers x 2 validators, one round, in its driver mode: every
protocol transaction succeeds, the task completes with every submission accepted, the audit agrees, and the
JSON has the agreed keys with gas that adds up (the per-call rows are the rounds' total), each round settled
in one `settleRound` and every participant paid once, at the end, in one `claimFor`; with committees, each
validator judges only the submissions it is drawn for. `slow`: the same
with real role processes (2 x 2, IPFS), every check passing, the audit re-verifying every submission, and
memory and verify CPU read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
KEYS = {
    "mode", "trainers", "validators", "rounds", "gas_per_round", "failed_transactions", "reverted_gas_share",
    "max_gas_by_call", "wall_s_per_round", "verify_cpu_s_per_validator_round", "rss_mb_per_process",
    "checks", "audit", "committee_draws", "submissions_checked_per_validator_round",
}  # fmt: skip
ROUND_CALLS = {
    "submitWork", "drawSeed", "commitVerdicts", "revealVerdicts", "commitModelVote", "voteModel",
    "finalizeRound", "settleRound",
}  # fmt: skip


def _driver(tmp_path: Path, *extra: str) -> dict[str, Any]:
    """bench_scale's driver at 3 x 2, one round, 0.25-second blocks; its JSON."""
    out = tmp_path / "scale.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [
        "--trainers",
        "3",
        "--validators",
        "2",
        "--rounds",
        "1",
        "--block-time",
        "0.25",
        "--json",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_scale.py"), *argv, *extra],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.chain
def test_the_scale_bench_drives_a_small_network_without_a_failed_transaction(tmp_path: Path) -> None:
    result = _driver(tmp_path)
    assert set(result) >= KEYS
    assert (result["mode"], result["trainers"], result["validators"], result["rounds"]) == ("driver", 3, 2, 1)
    assert result["failed_transactions"] == 0
    assert result["reverted_gas_share"] == 0.0
    assert all(result["checks"].values()), result["checks"]
    assert result["audit"]["ok"]
    assert result["audit"]["discrepancies"] == 0
    gas = result["gas_per_round"]
    assert set(gas["by_call"]) == ROUND_CALLS
    assert gas["by_call"]["submitWork"]["count_per_round"] == 3
    assert gas["by_call"]["revealVerdicts"]["count_per_round"] == 2
    assert gas["by_call"]["drawSeed"]["count_per_round"] == 1  # one keeper in turn, no race
    assert gas["by_call"]["settleRound"]["count_per_round"] == 1  # the round's settlement, in one batch
    # Everyone is paid once, at the task's end (the initiator: its refund), in one claimFor, not every round.
    end = gas["end_of_task"]
    assert (end["claims"], end["by_call"], end["accounts_paid"], end["failed"]) == (1, {"claimFor": 1}, 6, 0)
    assert gas["max_with_end_share"] == round(gas["max"] + end["gas"] / 1)
    assert gas["rounds_with_end_share"] == [gas["max_with_end_share"]]
    assert gas["meets_target"] == (gas["max_with_end_share"] <= gas["target"])
    assert sum(row["gas_per_round"] for row in gas["by_call"].values()) == pytest.approx(gas["mean"], abs=10)
    maxima = {name: row["max"] for name, row in gas["by_call"].items()}
    assert result["max_gas_by_call"] == {**maxima, "claimFor": end["max"]}
    assert result["committee_draws"] == 0
    assert result["submissions_checked_per_validator_round"] == {"mean": 3.0, "max": 3.0, "n": 2}
    assert 0 < gas["max"] <= gas["l2_gas_limit"]
    assert len(result["wall_s_per_round"]) == 1
    assert result["verify_cpu_s_per_validator_round"] is None
    assert result["verify_cpu_note"]
    assert result["rss_mb_per_process"] is None
    assert result["rss_note"]


@pytest.mark.chain
def test_with_committees_each_validator_judges_only_its_draws(tmp_path: Path) -> None:
    result = _driver(tmp_path, "--committee-draws", "2")
    assert result["committee_draws"] == 2
    assert all(result["checks"].values()), result["checks"]
    assert result["audit"]["ok"]
    judged = result["submissions_checked_per_validator_round"]
    # 3 submissions x 2 draws over 2 validators: each judges those it is drawn for, every one judged.
    assert judged["n"] == 2
    assert judged["max"] <= 3
    assert 3 <= judged["mean"] * 2 <= 6
    assert result["expected_checked_per_validator_round"] == 2.25


@pytest.mark.slow
@pytest.mark.chain
@pytest.mark.ipfs
def test_the_scale_bench_runs_real_role_processes_with_every_check_passing(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [
        "--mode",
        "processes",
        "--trainers",
        "2",
        "--validators",
        "2",
        "--rounds",
        "1",
        "--json",
        str(out),
    ]
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench_scale.py"), *argv],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) >= KEYS
    assert result["mode"] == "processes"
    assert all(result["checks"].values()), result["checks"]
    assert result["audit"]["ok"]
    assert result["audit"]["reverified"]
    assert set(result["gas_per_round"]["by_call"]) >= ROUND_CALLS
    rss = result["rss_mb_per_process"]
    for role, count in (("initiator", 1), ("trainer", 2), ("validator", 2)):
        assert rss[role]["n"] == count
        assert 50 < rss[role]["max"] < 4_000  # a peak RSS read from /proc, in MB
    assert result["verify_cpu_s_per_validator_round"]["n"] == 2
    assert result["verify_cpu_s_per_validator_round"]["mean"] > 0
    assert len(result["wall_s_per_round"]) == 1
