"""The must-show of the auditor: on the history a `trustrl demo` run leaves behind (10 processes, real chain,
real IPFS, a cheating trainer, a honeypot and a lazy validator), the audit finds no discrepancy but the lazy
validator's flags and reproduces every number of the demo's own summary (rounds, per-round decisions,
payouts and slashes, held-out accuracy, every balance).

This runs the whole demo (minutes on 2 cores): it is `slow`."""

from __future__ import annotations

import pytest

from protocol.audit import Kind
from protocol.audit.demo_history import compare_with_demo
from protocol.audit.report import summarize
from protocol.demo import Demo

pytestmark = [pytest.mark.slow, pytest.mark.chain, pytest.mark.ipfs]

ROUNDS = 2


def test_demo_history_audits_clean_and_matches_the_demo() -> None:
    from rich.console import Console

    run = Demo(rounds=ROUNDS, console=Console(quiet=True), audit=True)
    demo = run.run()
    result = run.audit_result
    assert result is not None, demo["audit"]
    # The demo's lazy validator accepted every honeypot: the audit flags exactly that, and nothing else.
    lazy = [d for d in result.discrepancies if d.kind == Kind.LAZY_VALIDATOR]
    others = [d for d in result.discrepancies if d.kind != Kind.LAZY_VALIDATOR]
    assert others == [], "\n".join(d.line() for d in others)
    assert lazy, "the lazy validator was not flagged"
    assert all(any(a in d.subject for a in demo["lazy_validators"]) for d in lazy)
    assert demo["ok"], (demo["checks"], demo["audit"]["mismatches"])
    summary = summarize(result)
    assert compare_with_demo(demo, summary) == []
    assert result.reverify is not None
    # Every submission was re-verified and the cheater's poisoned update was rejected by the auditor too.
    cheaters = set(demo["cheaters"])
    checks = result.reverify.submissions
    assert len(checks) == sum(r["submissions"] for r in summary["tasks"][0]["rounds"])
    assert {c.auditor.name for c in checks if c.trainer in cheaters} == {"REJECT"}
    assert all(a.status == "match" for a in result.reverify.aggregates)
