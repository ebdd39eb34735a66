#!/usr/bin/env python3
"""Benchmark of the auditor: make a `trustrl demo` history, audit it (events, balances, re-verification of
every submission and aggregate, held-out accuracy), print a table and write JSON.

    python scripts/bench_audit.py --json audit-bench.json [--rounds 2] [--report out.html]

Reports at least `discrepancies` (count; 0 expected, apart from `lazy_flags`: the demo's lazy validator
flagged for each honeypot it accepted, which the audit must report), `events_per_s` (events per second of
the whole audit; `ledger_events_per_s`: fetching and replaying only), `audit_wall_s` (the audit, end to end),
`validators_verify_s` (seconds spent in the validators' re-checks from `trainer.verify` during the
audit), and whether every number of the demo's own summary was reproduced (`demo_numbers_match`).
Exits 1 when the audit found a discrepancy or a number disagrees.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the demo task (default 2)")
    parser.add_argument("--report", type=Path, help="also write the audit's HTML report here")
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from protocol.audit import Kind
    from protocol.audit.demo_history import compare_with_demo
    from protocol.audit.report import summarize, write_html
    from protocol.demo import Demo

    console = Console(stderr=True)
    run = Demo(rounds=args.rounds, console=console, audit=True)
    demo = run.run()
    result = run.audit_result
    if result is None:
        console.print(f"[red]the audit did not run:[/] {demo['audit'].get('error')}")
        return 1
    summary = summarize(result)
    mismatches = compare_with_demo(demo, summary)
    lazy = [d for d in result.discrepancies if d.kind == Kind.LAZY_VALIDATOR]
    found = [d for d in result.discrepancies if d.kind != Kind.LAZY_VALIDATOR]
    timings = result.timings
    reverify = result.reverify
    out = {
        "discrepancies": len(found),
        "lazy_flags": len(lazy),
        "discrepancy_list": summary["discrepancies"],
        "events": len(result.events),
        "transactions": summary["transactions"],
        "events_per_s": summary["events_per_s"],
        "ledger_events_per_s": len(result.events) / (timings["fetch_events_s"] + timings["replay_s"]),
        "audit_wall_s": timings.get("audit_wall_s"),
        "validators_verify_s": reverify.verify_s if reverify else None,
        "submissions_reverified": len(reverify.submissions) if reverify else 0,
        "aggregates_recomputed": len(reverify.aggregates) if reverify else 0,
        "timings": timings,
        "verified": summary["verified"],
        "demo_numbers_match": not mismatches,
        "demo_mismatches": mismatches,
        "demo_wall_s": demo.get("wall_s"),
        "demo_ok": demo.get("ok"),
        "rounds": args.rounds,
    }
    table = Table(title="trustrl audit of a demo history")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "discrepancies",
        "events",
        "transactions",
        "events_per_s",
        "audit_wall_s",
        "validators_verify_s",
        "submissions_reverified",
        "aggregates_recomputed",
        "demo_numbers_match",
        "demo_wall_s",
    ):
        value = out[key]
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    for key, value in timings.items():
        table.add_row(f"  {key}", f"{value:.3f}")
    Console().print(table)
    for line in mismatches:
        console.print(f"[red]mismatch:[/] {line}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, sort_keys=True, default=str) + "\n")
    if args.report is not None:
        write_html(summary, args.report)
    return 0 if not found and lazy and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
