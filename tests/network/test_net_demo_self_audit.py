"""`trustrl demo` audits its own history at the end (`--audit`, the default): the auditor replays the chain's
events and re-verifies every submission from IPFS before the demo stops its nodes, prints a one-line verdict,
and the exit status says whether it found a discrepancy (3, as `trustrl audit`).

The slow test runs a real 1-round demo through the command (in this process, so that it can reach into the
end of the run): the audit of the real history is clean, then a token minted straight to the
RewardDistributor (money no event explains) makes a second audit of the same history find it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import protocol.demo
from protocol.audit.cli import EXIT_DISCREPANCIES
from protocol.cli import app
from protocol.demo import Demo, exit_status

CHECKS_OK = {"every balance reconciles": True, "tokens conserved": True}


@pytest.mark.parametrize(
    ("summary", "status"),
    [
        ({"ok": True, "checks": CHECKS_OK}, 0),
        ({"ok": True, "checks": CHECKS_OK, "audit": {"ok": True}}, 0),
        ({"ok": False, "checks": {**CHECKS_OK, "tokens conserved": False}}, 1),
        (
            {"ok": False, "checks": CHECKS_OK, "audit": {"ok": False, "discrepancy_count": 2}},
            EXIT_DISCREPANCIES,
        ),
        ({"ok": False, "checks": {"tokens conserved": False}, "audit": {"ok": False}}, 1),  # checks first
        ({"ok": False, "checks": CHECKS_OK, "audit": {"ok": False, "error": "IPFS down"}}, 1),  # did not run
    ],
)
def test_exit_status(summary: dict[str, Any], status: int) -> None:
    assert exit_status(summary) == status


def test_audit_flag_reaches_the_demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[bool] = []

    def fake_run_demo(*, rounds: int, console: Any, keep: bool, audit: bool, stay: bool) -> dict[str, Any]:
        seen.append(audit)
        return {"ok": True, "checks": CHECKS_OK}

    monkeypatch.setattr(protocol.demo, "run_demo", fake_run_demo)
    runner = CliRunner()
    assert runner.invoke(app, ["demo", "--no-audit"]).exit_code == 0
    assert runner.invoke(app, ["demo", "--audit"]).exit_code == 0
    assert seen == [False, True]
    found = {"ok": False, "checks": CHECKS_OK, "audit": {"ok": False, "discrepancy_count": 1}}
    monkeypatch.setattr(protocol.demo, "run_demo", lambda **kw: found)
    assert runner.invoke(app, ["demo"]).exit_code == EXIT_DISCREPANCIES


@pytest.mark.slow
@pytest.mark.chain
@pytest.mark.ipfs
def test_demo_audits_its_history_and_exits_3_on_a_discrepancy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean: list[dict[str, Any]] = []
    real_audit = Demo._audit

    def audit_twice(self: Demo, summary: dict[str, Any]) -> dict[str, Any]:
        clean.append(real_audit(self, summary))
        proto = self.session.proto
        self.session.client.transact(proto.token.functions.mint(self.config.deployment.reward_distributor, 1))
        return real_audit(self, summary)

    monkeypatch.setattr(Demo, "_audit", audit_twice)
    out = tmp_path / "demo.json"
    result = CliRunner().invoke(app, ["demo", "--rounds", "1", "--json", str(out)])
    summary = json.loads(out.read_text()) if out.exists() else {}
    assert result.exit_code == EXIT_DISCREPANCIES, result.output

    # The demo's own checks passed; the first audit of the real history found nothing and reproduced the
    # demo's numbers, re-checking every verdict (the cheater's and the honeypot's REJECT included) and the
    # aggregate.
    assert all(summary["checks"].values()), summary["checks"]
    [first] = clean
    assert first["ok"], first
    assert (first["discrepancy_count"], first["mismatches"]) == (0, [])
    assert first["verdicts_rechecked"] == first["verdicts_agree"] == 5  # 3 honest, the cheater, the honeypot
    assert first["aggregates_recomputed"] == first["aggregates_match"] == 1
    assert first["events"] > 0
    assert first["wall_s"] < 120
    assert " ✓ audit: no discrepancy in " in result.output

    # The token nobody accounted for: the second audit reports it, the summary carries it, exit status 3.
    audit = summary["audit"]
    assert not audit["ok"]
    assert summary["ok"] is False
    assert audit["discrepancy_kinds"] == {"balance": 1}, audit["discrepancies"]
    assert " ✗ audit: 1 discrepancy in " in result.output
    assert audit["discrepancies"][0] in result.output.replace("\n", "") or "[balance]" in result.output
