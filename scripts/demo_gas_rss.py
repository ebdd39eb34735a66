"""Run `trustrl demo` (no audit) and measure, before it stops its chain: the gas of every transaction of the
run by function, the gas of the reverted ones and their share, and the peak resident memory (VmHWM) of each
role process.

    python scripts/demo_gas_rss.py --rounds 3 --json out/demo_gas_rss.json

Prints a table and writes JSON: `total_gas`, `reverted_gas`, `reverted_share`, `reverted` (count),
`by_function` ({name: {"count", "gas", "reverted", "reverted_gas"}}), `rss_mb` ({process: peak MB}),
`rounds`, `wall_s`. Transactions of the set-up (deployment, mints, stakes) are counted too; they never revert.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console


def _peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _gas_by_function(client: Any, contracts: list[Any], first: int, last: int) -> dict[str, dict[str, int]]:
    from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector

    selectors: dict[bytes, str] = {}
    for contract in contracts:
        for entry in contract.abi:
            if entry.get("type") == "function":
                selector = function_signature_to_4byte_selector(abi_to_signature(entry))
                selectors[selector] = str(entry["name"])
    out: dict[str, dict[str, int]] = {}
    w3 = client.w3
    for number in range(first, last + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            data = bytes(tx["input"])
            name = selectors.get(data[:4], "create" if tx.get("to") is None else "other")
            row = out.setdefault(name, {"count": 0, "gas": 0, "reverted": 0, "reverted_gas": 0})
            row["count"] += 1
            row["gas"] += int(receipt["gasUsed"])
            if receipt["status"] != 1:
                row["reverted"] += 1
                row["reverted_gas"] += int(receipt["gasUsed"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from protocol.demo import Demo

    console = Console(width=120)
    demo = Demo(rounds=args.rounds, console=console, keep=False, audit=False)
    peaks: dict[str, float] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            for p in demo.people:
                if p.proc is not None and p.proc.poll() is None:
                    mb = _peak_rss_mb(p.proc.pid)
                    if mb is not None:
                        peaks[p.name] = max(peaks.get(p.name, 0.0), mb)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    try:
        demo._start_infrastructure()
        demo._deploy_and_fund()
        sampler.start()
        demo._launch()
        demo._monitor()
        wall = time.monotonic() - started
        stop.set()
        from protocol.chain import ChainClient

        client = ChainClient(demo.anvil.rpc_url, demo._monitor_key)
        d = demo.session.proto.deployment
        contracts = [d.token, d.stake_manager, d.task_escrow, d.attestation_registry, d.reward_distributor]
        rows = _gas_by_function(client, contracts, 1, client.block_number())
    finally:
        stop.set()
        demo._stop()
    total = sum(r["gas"] for r in rows.values())
    reverted = sum(r["reverted_gas"] for r in rows.values())
    summary = {
        "rounds": args.rounds,
        "wall_s": round(wall, 1),
        "total_gas": total,
        "reverted_gas": reverted,
        "reverted_share": reverted / total if total else 0.0,
        "reverted": sum(r["reverted"] for r in rows.values()),
        "by_function": dict(sorted(rows.items())),
        "rss_mb": {k: round(v, 1) for k, v in sorted(peaks.items())},
    }
    print(f"{'function':<20}{'txs':>6}{'gas':>12}{'reverted':>10}{'reverted gas':>14}")
    for name, r in summary["by_function"].items():
        print(f"{name:<20}{r['count']:>6}{r['gas']:>12,}{r['reverted']:>10}{r['reverted_gas']:>14,}")
    print(f"total gas {total:,}; reverted {reverted:,} ({100 * summary['reverted_share']:.2f}%)")
    for name, mb in summary["rss_mb"].items():
        print(f"peak RSS {name:<14}{mb:>8.1f} MB")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
