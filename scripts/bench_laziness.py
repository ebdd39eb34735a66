#!/usr/bin/env python
"""What laziness saves a validator and what the honeypots cost it; prints a table, writes JSON.

    python scripts/bench_laziness.py [--json out/laziness.json] [--seeds 3]

On the demo's task (`protocol.demo.DEMO_TASK`, its warm start; set up as scripts/bench_security.py does),
one honest submission and one honeypot (the trainer node's `--cheat poison`: -4 x its update, the library's
`poison-update`) go through `protocol.verification.verify` with `--seeds` round seeds each: the CPU seconds
(`time.process_time`, one torch thread) and the wall time of one validator's check of one submission,
and the verdicts (the honeypot must be REJECTED for every seed: it is the bait).

Then the arithmetic of docs/protocol.md, "Laziness does not pay", per round and over the demo's task,
under the demo's terms: a validator's share of the round, the lazy slash S = lazySlashBps x its allocation,
honeypot rate h, and the compute a lazy validator saves (k submissions x the measured CPU seconds). The
break-even price of a CPU-second (in tokens) above which laziness would pay is h x (share + S) / (k x
cpu_s). The initiator's price per honeypot is the bait's slash (trainerSlashBps x minTrainerStake).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--seeds", type=int, default=3, help="round seeds per submission (each timed)")
    return p.parse_args(argv)


def measure(seeds: int) -> dict[str, Any]:
    """CPU and wall seconds of one check, and the verdicts, of an honest submission and a honeypot."""
    import torch
    from bench_security import _fetch, _setup

    from protocol.cheats import STRATEGIES, Arena
    from protocol.verification import verify
    from trainer.diloco import load_global_checkpoint

    torch.set_num_threads(1)
    setup = _setup(argparse.Namespace(quick=False, heldout=8, seeds=seeds))
    base_hash = hashlib.sha256(setup.base).digest()
    weights = load_global_checkpoint(setup.base)[0]
    out: dict[str, Any] = {}
    for name, strategy in (("honest", "honest"), ("honeypot", "poison-update")):
        arena = Arena(setup.task, setup.base, 1, setup.accounts[0])
        sub = STRATEGIES[strategy].build(arena)
        fetch = _fetch(sub.artifacts)
        cpu, wall, verdicts = [], [], []
        for seed in setup.seeds:
            c0, w0 = time.process_time(), time.perf_counter()
            checked = verify(fetch, setup.task, sub.commitment, seed, base_hash, weights)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            verdicts.append(checked.verdict.name)
        out[name] = {
            "strategy": strategy,
            "cpu_s": sorted(cpu)[len(cpu) // 2],
            "wall_s": sorted(wall)[len(wall) // 2],
            "verdicts": verdicts,
        }
    return out


def arithmetic(cpu_s: float, *, rate: float = 1.0, lazy_slash_bps: int | None = None) -> dict[str, Any]:
    """Per round and over the demo's task, for a validator with the minimum allocation (see the module
    docstring). Tokens are the demo's."""
    from protocol.contracts import BPS, DEFAULT_LAZY_SLASH_BPS
    from protocol.demo import DEMO_TASK, HONEST_TRAINERS, VALIDATORS

    chain = DEMO_TASK["chain"]
    bps = DEFAULT_LAZY_SLASH_BPS if lazy_slash_bps is None else lazy_slash_bps
    validators = VALIDATORS + 1  # the demo's honest three and its lazy one all reveal
    submissions = HONEST_TRAINERS + 2  # honest trainers, the cheater, the honeypot
    share = chain["reward_per_round"] * chain["validator_share_bps"] / BPS / validators
    slash = chain["min_validator_stake"] * bps / BPS
    saved = submissions * cpu_s
    loss = rate * (share + slash)
    rounds = chain["num_rounds"]
    return {
        "rate": rate,
        "lazy_slash_bps": bps,
        "validators": validators,
        "submissions_per_round": submissions,
        "share_per_round": share,
        "lazy_slash": slash,
        "lazy_loss_per_round": loss,
        "cpu_s_saved_per_round": saved,
        "break_even_tokens_per_cpu_s": loss / saved if saved else None,
        "honest_net_over_task": rounds * share,
        "lazy_net_over_task_at_most": -rounds * rate * slash + rounds * (1 - rate) * share,
        "initiator_price_per_honeypot": chain["min_trainer_stake"] * chain["trainer_slash_bps"] / BPS,
        "rounds": rounds,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    timing = measure(args.seeds)
    cpu_s = timing["honest"]["cpu_s"]
    rows = {f"h={rate:g}": arithmetic(cpu_s, rate=rate) for rate in (1.0, 0.5, 0.2)}
    print(f"{'submission':<10}{'cpu s':>8}{'wall s':>8}  verdicts")
    for name, t in timing.items():
        print(f"{name:<10}{t['cpu_s']:>8.2f}{t['wall_s']:>8.2f}  {', '.join(t['verdicts'])}")
    head = f"{'rate':<7}{'share':>7}{'S':>6}{'loss/round':>12}{'cpu s saved':>13}{'break-even tok/cpu s':>22}"
    print("\n" + head)
    for label, a in rows.items():
        print(
            f"{label:<7}{a['share_per_round']:>7.2f}{a['lazy_slash']:>6.2f}{a['lazy_loss_per_round']:>12.2f}"
            f"{a['cpu_s_saved_per_round']:>13.1f}{a['break_even_tokens_per_cpu_s']:>22.3f}"
        )
    ok = all(v == "REJECT" for v in timing["honeypot"]["verdicts"]) and all(
        v == "ACCEPT" for v in timing["honest"]["verdicts"]
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"timing": timing, "arithmetic": rows, "ok": ok}, indent=1) + "\n")
    if not ok:
        print("the honeypot was not rejected for every seed, or the honest submission was not accepted")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
