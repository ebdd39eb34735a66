"""Compare the audit of a `trustrl demo` history with the demo's own numbers.

The demo stops its anvil and IPFS daemon when it ends, so it audits its history itself, before it stops
them (`Demo(audit=True)`, `trustrl demo --audit`), and calls this on the two summaries:

    mismatches = compare_with_demo(demo_summary, summarize(demo.audit_result))   # [] when all agree
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol.contracts import CreditReason

__all__ = ["compare_with_demo"]


def compare_with_demo(demo: Mapping[str, Any], audit: Mapping[str, Any], *, task: int = 1) -> list[str]:
    """Every number of the demo's summary that the audit's summary does not reproduce (empty: all agree)."""
    out: list[str] = []

    def same(what: str, want: Any, got: Any) -> None:
        if want != got:
            out.append(f"{what}: the demo says {want!r}, the audit {got!r}")

    tasks = {t["id"]: t for t in audit["tasks"]}
    if task not in tasks:
        return [f"the audit has no task {task}"]
    t = tasks[task]
    same("rounds finalised", demo["rounds"], t["rounds_finalized"])
    same("deposit", demo["deposit"], t["deposit"])
    curve = t["heldout_accuracy"] or []
    if len(curve) != len(demo["accuracy"]):
        out.append(f"held-out accuracy: the demo has {len(demo['accuracy'])} points, the audit {len(curve)}")
    else:
        for k, (want, got) in enumerate(zip(demo["accuracy"], curve, strict=True)):
            if got is None or abs(float(want) - float(got)) > 1e-9:
                out.append(f"held-out accuracy {k}: the demo says {want}, the audit {got}")
    rounds = {r["round"]: r for r in t["rounds"]}
    for row in demo["per_round"]:
        r = rounds.get(int(row["round"]))
        if r is None:
            out.append(f"round {row['round']} of the demo is not in the audit")
            continue
        mine = {
            "submissions": r["submissions"], "accepted": r["accepted"],
            "rejected": r["rejected"], "unavailable": r["unavailable"], "undecided": r["undecided"],
            "paid": r["trainer_rewards"] + r["validator_rewards"], "slashed": r["slashed"],
        }  # fmt: skip
        for key, value in mine.items():
            same(f"round {row['round']} {key}", row[key], value)
    accounts = {a["address"]: a for a in audit["accounts"]}
    rewards = {
        a: acc["credited"].get(CreditReason.TRAINER_REWARD.name.lower(), 0)
        + acc["credited"].get(CreditReason.VALIDATOR_REWARD.name.lower(), 0)
        for a, acc in accounts.items()
    }
    same("paid accounts", dict(demo["paid"]), {a: v for a, v in sorted(rewards.items()) if v > 0})
    refunds = {a: acc["credited"].get(CreditReason.REFUND.name.lower(), 0) for a, acc in accounts.items()}
    same("refunds", dict(demo["refunded"]), {a: v for a, v in refunds.items() if v > 0})
    same(
        "slashed accounts",
        sorted(demo["slashed"]),
        sorted(a for a, acc in accounts.items() if acc["slashed"] > 0),
    )
    for address, b in demo["balances"].items():
        acc = accounts.get(address)
        if acc is None:
            if any(b[k] for k in ("staked", "unclaimed", "slashed", "rewards", "refund", "deposited")):
                out.append(f"{b['name']} {address}: in the demo's balances, not in the audit")
            continue
        mine = {
            "staked": acc["bonded"], "unbonding": acc["unbonding"], "allocated": acc["allocated"],
            "unclaimed": acc["credit"], "slashed": acc["slashed"], "rewards": rewards.get(address, 0),
            "refund": refunds.get(address, 0), "deposited": acc["deposited"],
        }  # fmt: skip
        for key, value in mine.items():
            same(f"{b['name']} {key}", b[key], value)
    return out
