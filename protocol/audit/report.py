"""The audit's outputs: a JSON summary, a rich terminal summary, and a self-contained HTML page.

`summarize(result)` is the single source of every number shown: the JSON is it verbatim, the terminal and
the HTML render it. The HTML page carries its CSS and its charts (inline SVG from `protocol.audit.svg`);
it loads nothing, so it opens anywhere, offline.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from protocol.audit.discrepancy import fmt
from protocol.audit.model import TaskRecord
from protocol.audit.svg import Series, bar_chart, line_chart
from protocol.contracts import CreditReason, Role, ValidatorOutcome, Verdict

if TYPE_CHECKING:
    from rich.console import Console

    from protocol.audit.runner import AuditResult

__all__ = ["COLORS", "render_html", "render_terminal", "summarize", "write_html", "write_json"]

COLORS = {
    "accept": "#2e9d5b",
    "reject": "#d1453b",
    "unavailable": "#e0a030",
    "undecided": "#9a9a9a",
    "reward": "#2e7dd1",
    "slash": "#b8336a",
    "gas": "#7a5cc7",
    "accuracy": "#0f8a8a",
}
"""Chart colours, one set per chart, so that a screenshot shows which chart rendered."""


def _short_cid(cid: str | None) -> str:
    if not cid:
        return "-"
    return cid if len(cid) <= 24 else f"{cid[:14]}…{cid[-6:]}"


def _tokens(amount: int, decimals: int) -> str:
    """An amount in whole tokens with up to 4 decimals (exact amounts are in the JSON)."""
    if decimals == 0:
        return f"{amount:,}"
    return f"{amount / 10**decimals:,.4f}"


def _round_summary(result: AuditResult, task: TaskRecord, number: int) -> dict[str, Any]:
    rnd = task.rounds[number]
    decisions = Counter(s.decision for s in rnd.submissions)
    f = rnd.finalization
    trainer_rewards = sum(s.reward or 0 for s in rnd.submissions)
    validator_rewards = sum(
        v.amount for v in rnd.validator_settlements.values() if v.outcome == ValidatorOutcome.REWARDED
    )
    slashed = sum(s.slashed or 0 for s in rnd.submissions) + sum(
        v.amount for v in rnd.validator_settlements.values() if v.outcome == ValidatorOutcome.SLASHED
    )
    out: dict[str, Any] = {
        "round": number,
        "base": fmt(rnd.base),
        "submissions": len(rnd.submissions),
        "accepted": decisions[Verdict.ACCEPT],
        "rejected": decisions[Verdict.REJECT],
        "unavailable": decisions[Verdict.UNAVAILABLE],
        "undecided": decisions[Verdict.NONE],
        "decisions": [s.decision.name for s in rnd.submissions],
        "validators_expected": len(rnd.expected_validators),
        "revealed": len(rnd.reveals),
        "seed": fmt(rnd.seed) if rnd.seed is not None else None,
        "agreed_model": fmt(rnd.agreed[0]) if rnd.agreed else None,
        "agreed_cid": rnd.agreed[1] if rnd.agreed else None,
        "finalized": f is not None,
        "accepted_work": f.accepted_work if f else None,
        "budget": f.budget if f else None,
        "rate": f.rate if f else None,
        "validator_share": f.share if f else None,
        "carry": f.carry if f else None,
        "next_base": fmt(f.next_base) if f else None,
        "trainer_rewards": trainer_rewards,
        "validator_rewards": validator_rewards,
        "slashed": slashed,
        "gas_used": rnd.gas_used,
        "heldout_accuracy": None,
    }
    if result.reverify is not None:
        curve = result.reverify.accuracy.get(task.id, [])
        if number + 1 < len(curve):
            out["heldout_accuracy"] = curve[number + 1]
        checks = [c for c in result.reverify.submissions if c.task == task.id and c.round == number]
        out["reverified"] = len(checks)
        out["auditor_verdicts"] = [
            {"index": c.index, "chain": c.chain.name, "auditor": c.auditor.name if c.auditor else None}
            for c in checks
        ]
        agg = [a for a in result.reverify.aggregates if a.task == task.id and a.round == number]
        out["aggregate"] = agg[0].status if agg else None
    return out


def _participants(result: AuditResult, task: TaskRecord) -> list[dict[str, Any]]:
    rows = []
    for address, (role, first) in task.participants.items():
        subs = [s for r in task.rounds.values() for s in r.submissions if s.trainer == address]
        settlements = [
            r.validator_settlements[address]
            for r in task.rounds.values()
            if address in r.validator_settlements
        ]
        rewards = sum(s.reward or 0 for s in subs) + sum(
            v.amount for v in settlements if v.outcome == ValidatorOutcome.REWARDED
        )
        slashed = sum(s.slashed or 0 for s in subs) + sum(
            v.amount for v in settlements if v.outcome == ValidatorOutcome.SLASHED
        )
        forfeited = sum(v.amount for v in settlements if v.outcome == ValidatorOutcome.FORFEITED)
        rows.append(
            {
                "address": address,
                "role": role.name.lower(),
                "from_round": first,
                "submissions": len(subs),
                "accepted": sum(1 for s in subs if s.decision == Verdict.ACCEPT),
                "rejected": sum(1 for s in subs if s.decision in (Verdict.REJECT, Verdict.UNAVAILABLE)),
                "rounds_rewarded": sum(1 for v in settlements if v.outcome == ValidatorOutcome.REWARDED),
                "rounds_forfeited": sum(1 for v in settlements if v.outcome == ValidatorOutcome.FORFEITED),
                "rewards": rewards,
                "slashed": slashed,
                "forfeited": forfeited,
            }
        )
    rows.sort(key=lambda r: (r["role"] != Role.TRAINER.name.lower(), r["address"]))
    return rows


def _task_summary(result: AuditResult, task: TaskRecord) -> dict[str, Any]:
    refund_credits = task.credited.get(CreditReason.REFUND, 0)
    out = {
        "id": task.id,
        "initiator": task.initiator,
        "status": task.status.name,
        "num_rounds": task.num_rounds,
        "rounds_finalized": sum(1 for r in task.rounds.values() if r.finalization is not None),
        "deposit": task.deposit,
        "reward_per_round": task.param("rewardPerRound"),
        "refunded": task.refunded,
        "refund_credits_to_initiator": refund_credits,
        "remaining": task.remaining,
        "reserved": task.reserved,
        "spec_cid": str(task.params["specCid"]),
        "initial_model": fmt(bytes(task.params["initialModelHash"])),
        "final_model": fmt(task.base),
        "rounds": [_round_summary(result, task, n) for n in sorted(task.rounds)],
        "participants": _participants(result, task),
        "gas": result.gas_by_round(task.id),
        "heldout_accuracy": result.reverify.accuracy.get(task.id) if result.reverify else None,
    }
    rounds = out["rounds"]
    assert isinstance(rounds, list)
    out["trainer_rewards"] = sum(r["trainer_rewards"] for r in rounds)
    out["validator_rewards"] = sum(r["validator_rewards"] for r in rounds)
    out["slashed"] = sum(r["slashed"] for r in rounds)
    out["decisions"] = {
        name: sum(r[name] for r in rounds) for name in ("accepted", "rejected", "unavailable", "undecided")
    }
    return out


def summarize(result: AuditResult) -> dict[str, Any]:
    """Every number of the audit as JSON-able data (amounts in token base units, exact)."""
    ledger = result.ledger
    discrepancies = result.discrepancies
    timings = dict(result.timings)
    wall = timings.get("audit_wall_s") or 0.0
    accounts = []
    for address, book in sorted(ledger.accounts.items()):
        accounts.append(
            {
                "address": address,
                "bonded": book.bonded,
                "allocated": book.allocated,
                "unbonding": book.unbonding,
                "credit": book.credit,
                "staked": book.staked,
                "withdrawn": book.withdrawn,
                "slashed": book.slashed,
                "deposited": book.deposited,
                "claimed": book.claimed,
                "credited": {reason.name.lower(): amount for reason, amount in sorted(book.credited.items())},
            }
        )
    return {
        "ok": not discrepancies,
        "discrepancies": [d.model_dump(mode="json") for d in discrepancies],
        "discrepancy_count": len(discrepancies),
        "discrepancy_kinds": dict(sorted(Counter(d.kind.value for d in discrepancies).items())),
        "verified": result.verified,
        "deployment": result.addresses.model_dump(),
        "task": result.task,
        "blocks": {"from": result.from_block, "to": result.to_block},
        "events": len(result.events),
        "transactions": len({e.tx_hash for e in result.events}),
        "events_per_s": len(result.events) / wall if wall > 0 else None,
        "token_decimals": result.token_decimals,
        "tasks": [_task_summary(result, ledger.tasks[t]) for t in result.task_ids()],
        "accounts": accounts,
        "totals": {
            "stake": ledger.total_stake(),
            "escrowed": ledger.escrowed,
            "credits": ledger.total_credits(),
            "burned": ledger.burned,
            "gas_used": sum(c.gas_used for c in result.costs.values()),
        },
        "reverified": {
            "submissions": len(result.reverify.submissions),
            "aggregates": len(result.reverify.aggregates),
            "verify_s": result.reverify.verify_s,
        }
        if result.reverify
        else None,
        "timings": timings,
    }


def write_json(summary: Mapping[str, Any], path: Path) -> None:
    """Write the summary as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------- terminal


def render_terminal(summary: Mapping[str, Any], console: Console, *, max_discrepancies: int = 40) -> None:
    """Rich tables: the verdict, what was verified, each task's rounds and participants, the discrepancies."""
    from rich.panel import Panel
    from rich.table import Table

    decimals = int(summary["token_decimals"])
    ok = bool(summary["ok"])
    blocks = summary["blocks"]
    verdict = "NO DISCREPANCY" if ok else f"{summary['discrepancy_count']} DISCREPANCIES"
    head = (
        f"[bold {'green' if ok else 'red'}]{verdict}[/] — {summary['events']} events in "
        f"{summary['transactions']} transactions, blocks {blocks['from']}..{blocks['to']}"
    )
    console.print(Panel(head, title="trustrl audit", expand=False))

    verified = Table(title="verified", show_header=True)
    verified.add_column("what")
    verified.add_column("count", justify="right")
    for key, value in summary["verified"].items():
        verified.add_row(key, str(value))
    console.print(verified)

    for task in summary["tasks"]:
        rounds = Table(
            title=f"task {task['id']} — {task['status']}, {task['rounds_finalized']}/{task['num_rounds']} "
            f"rounds finalised"
        )
        for col in (
            "round",
            "subs",
            "A/R/U/-",
            "revealed",
            "accepted work",
            "rate",
            "rewards",
            "slashed",
            "gas",
            "accuracy",
            "reverified",
            "aggregate",
        ):
            rounds.add_column(col, justify="right" if col not in ("A/R/U/-", "aggregate") else "left")
        for r in task["rounds"]:
            acc = r["heldout_accuracy"]
            verdicts = r.get("auditor_verdicts")
            agree = None if verdicts is None else sum(1 for v in verdicts if v["auditor"] == v["chain"])
            rounds.add_row(
                str(r["round"]),
                str(r["submissions"]),
                f"{r['accepted']}/{r['rejected']}/{r['unavailable']}/{r['undecided']}",
                str(r["revealed"]),
                "-" if r["accepted_work"] is None else f"{r['accepted_work']:,}",
                "-" if r["rate"] is None else f"{r['rate']:,}",
                _tokens(r["trainer_rewards"] + r["validator_rewards"], decimals),
                _tokens(r["slashed"], decimals),
                f"{r['gas_used']:,}",
                "-" if acc is None else f"{acc:.3f}",
                "-" if verdicts is None else f"{agree}/{len(verdicts)} agree",
                r.get("aggregate") or "-",
            )
        console.print(rounds)
        people = Table(title=f"task {task['id']} participants")
        for col in ("address", "role", "subs", "accepted", "rewards", "slashed", "forfeited"):
            people.add_column(col, justify="left" if col in ("address", "role") else "right")
        for p in task["participants"]:
            people.add_row(
                p["address"],
                p["role"],
                str(p["submissions"]),
                str(p["accepted"]),
                _tokens(p["rewards"], decimals),
                _tokens(p["slashed"], decimals),
                _tokens(p["forfeited"], decimals),
            )
        console.print(people)

    found = summary["discrepancies"]
    if found:
        table = Table(title="discrepancies", show_lines=False)
        for col in ("kind", "task", "round", "subject", "expected", "actual", "evidence"):
            table.add_column(col, overflow="fold")
        for d in found[:max_discrepancies]:
            table.add_row(
                d["kind"],
                str(d["task"] if d["task"] is not None else "-"),
                str(d["round"] if d["round"] is not None else "-"),
                d["subject"],
                d["expected"][:80],
                d["actual"][:80],
                d["evidence"],
            )
        console.print(table)
        if len(found) > max_discrepancies:
            console.print(f"… and {len(found) - max_discrepancies} more (see --json or --report)")


# ---------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222;
       background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px 0; } h2 { font-size: 17px; margin: 28px 0 8px 0; }
.verdict { display: inline-block; padding: 6px 14px; border-radius: 6px; font-weight: 700; color: #fff; }
.ok { background: #1f7a45; } .bad { background: #c0392b; }
.meta { color: #555; font-size: 13px; margin: 6px 0 14px 0; }
table { border-collapse: collapse; font-size: 12.5px; background: #fff; margin-bottom: 8px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: right; vertical-align: top; }
th { background: #f0f0f0; } td.l, th.l { text-align: left; } td.mono { font-family: ui-monospace, monospace; }
.charts { display: grid; grid-template-columns: repeat(2, 560px); gap: 12px; }
.chart { border: 1px solid #ddd; background: #fff; }
.disc td { text-align: left; word-break: break-all; max-width: 340px; }
"""


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: Sequence[int] = (0,), css: str = ""
) -> str:
    head = "".join(f'<th class="{"l" if i in left else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"l" if i in left else ""}">{escape(c)}</td>' for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _charts(task: Mapping[str, Any], decimals: int) -> str:
    rounds = task["rounds"]
    labels = [str(r["round"]) for r in rounds]
    curve = task.get("heldout_accuracy") or []
    acc_labels = ["init", *labels]
    acc_values = [curve[k] if k < len(curve) else None for k in range(len(acc_labels))]
    accuracy = line_chart(
        "Held-out accuracy of the global model",
        acc_labels,
        [Series("accuracy", acc_values, COLORS["accuracy"])],
        y_label="accuracy",
        y_max=1.0,
        chart_id=f"accuracy-{task['id']}",
    )
    verdicts = bar_chart(
        "Verdicts per round",
        labels,
        [
            Series(name, [float(r[name]) for r in rounds], COLORS[key])
            for name, key in (
                ("accepted", "accept"),
                ("rejected", "reject"),
                ("unavailable", "unavailable"),
                ("undecided", "undecided"),
            )
        ],
        y_label="submissions",
        stacked=True,
        chart_id=f"verdicts-{task['id']}",
    )
    people = task["participants"]
    scale = 10**decimals
    payouts = bar_chart(
        "Rewards and slashes per participant (tokens)",
        [f"{p['role'][0].upper()} {p['address'][2:6]}" for p in people],
        [
            Series("rewards", [p["rewards"] / scale for p in people], COLORS["reward"]),
            Series("slashed", [p["slashed"] / scale for p in people], COLORS["slash"]),
        ],
        y_label="tokens",
        chart_id=f"payouts-{task['id']}",
    )
    gas = bar_chart(
        "Gas spent per round",
        labels,
        [Series("gas used", [float(r["gas_used"]) for r in rounds], COLORS["gas"])],
        y_label="gas",
        chart_id=f"gas-{task['id']}",
    )
    return f'<div class="charts">{accuracy}{payouts}{verdicts}{gas}</div>'


def render_html(summary: Mapping[str, Any]) -> str:
    """The self-contained HTML report of a summary."""
    decimals = int(summary["token_decimals"])
    ok = bool(summary["ok"])
    blocks = summary["blocks"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>trustrl audit</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>trustrl audit</h1>",
        f'<span class="verdict {"ok" if ok else "bad"}" id="verdict">'
        f"{'no discrepancy' if ok else str(summary['discrepancy_count']) + ' discrepancies'}</span>",
        f'<div class="meta">TaskEscrow {escape(summary["deployment"]["task_escrow"])} on chain '
        f"{summary['deployment']['chain_id']} — blocks {blocks['from']}..{blocks['to']}, "
        f"{summary['events']} events in {summary['transactions']} transactions"
        + (f", task {summary['task']}" if summary["task"] is not None else "")
        + "</div>",
    ]
    found = summary["discrepancies"]
    parts.append(f'<h2 id="discrepancies">Discrepancies ({len(found)})</h2>')
    if found:
        rows = [
            [
                d["kind"],
                "-" if d["task"] is None else str(d["task"]),
                "-" if d["round"] is None else str(d["round"]),
                d["subject"],
                d["expected"],
                d["actual"],
                d["evidence"],
                d["detail"],
            ]
            for d in found
        ]
        parts.append(
            _table(
                ["kind", "task", "round", "subject", "expected", "actual", "transaction / CID", "detail"],
                rows,
                left=range(8),
                css="disc",
            )
        )
    else:
        parts.append(
            "<p>Every event, payout, slash and balance agrees with the rules"
            + (" and with the re-verified work." if summary.get("reverified") else ".")
            + "</p>"
        )
    for task in summary["tasks"]:
        parts.append(f"<h2>Task {task['id']} — {escape(task['status'])}</h2>")
        parts.append(
            f'<div class="meta">initiator {escape(task["initiator"])}, '
            f"deposit {_tokens(task['deposit'], decimals)}, "
            f"refunded {_tokens(task['refund_credits_to_initiator'], decimals)}, "
            f"spec {escape(task['spec_cid'])}</div>"
        )
        parts.append(_charts(task, decimals))
        rows = []
        for r in task["rounds"]:
            acc = r["heldout_accuracy"]
            rows.append(
                [
                    str(r["round"]),
                    str(r["submissions"]),
                    f"{r['accepted']}/{r['rejected']}/{r['unavailable']}/{r['undecided']}",
                    str(r["revealed"]),
                    "-" if r["accepted_work"] is None else f"{r['accepted_work']:,}",
                    "-" if r["budget"] is None else _tokens(r["budget"], decimals),
                    _tokens(r["trainer_rewards"], decimals),
                    _tokens(r["validator_rewards"], decimals),
                    _tokens(r["slashed"], decimals),
                    f"{r['gas_used']:,}",
                    "-" if acc is None else f"{acc:.3f}",
                    r.get("aggregate") or "-",
                    _short_cid(r["agreed_cid"]),
                ]
            )
        parts.append(
            _table(
                [
                    "round",
                    "subs",
                    "A/R/U/-",
                    "revealed",
                    "accepted work",
                    "budget",
                    "trainer rewards",
                    "validator rewards",
                    "slashed",
                    "gas",
                    "accuracy",
                    "aggregate",
                    "agreed CID",
                ],
                rows,
                left=(2, 11, 12),
            )
        )
        people = [
            [
                p["address"],
                p["role"],
                str(p["submissions"]),
                str(p["accepted"]),
                _tokens(p["rewards"], decimals),
                _tokens(p["slashed"], decimals),
                _tokens(p["forfeited"], decimals),
            ]
            for p in task["participants"]
        ]
        parts.append(
            _table(
                ["participant", "role", "submissions", "accepted", "rewards", "slashed", "forfeited"],
                people,
                left=(0, 1),
            )
        )
    parts.append("<h2>Verified</h2>")
    parts.append(_table(["what", "count"], [[k, str(v)] for k, v in summary["verified"].items()]))
    parts.append("<h2>Accounts</h2>")
    amounts = ("bonded", "allocated", "unbonding", "credit", "staked", "withdrawn", "slashed", "claimed")
    parts.append(
        _table(
            ["account", *amounts],
            [[a["address"], *(_tokens(a[k], decimals) for k in amounts)] for a in summary["accounts"]],
        )
    )
    timings = summary["timings"]
    parts.append('<div class="meta">' + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()) + "</div>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(summary: Mapping[str, Any], path: Path) -> None:
    """Write the HTML report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(summary), encoding="utf-8")
