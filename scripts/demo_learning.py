#!/usr/bin/env python
"""The demo's learning curve in one process, under several CPU kernel sets: what `trustrl demo` prints as
held-out accuracy, without the chain, in a fraction of its time.

    .venv/bin/python scripts/demo_learning.py --json out/demo_learning.json
    .venv/bin/python scripts/demo_learning.py --capabilities avx2 default --seeds 0 1 2

It runs `trainer.simulate.run_simulation` with the demo's task (protocol.demo.DEMO_TASK: model, warm start,
inner and outer loop, held-out size, 5 rounds) and the demo's three honest trainers' addresses (anvil dev
accounts 2-4, which seed their rollouts), so with `--seeds 0` it reproduces the demo's accuracy column
exactly (the cheater's update is rejected, so it never enters the aggregate). Each run is a subprocess with
`ATEN_CPU_CAPABILITY` set (`default`: torch's choice for this CPU, e.g. avx512), one torch thread, as the
demo's processes. Other `--seeds` change the warm start's data seed: a stand-in for the other machines whose
float rounding sends the warm start elsewhere. Prints a table and exits 1 if a run gains less than
`--min-gain`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_one(seed: int, rounds: int) -> dict[str, object]:
    """One learning curve in this process (ATEN_CPU_CAPABILITY is read when torch loads)."""
    import torch

    from protocol.anvil import dev_accounts
    from protocol.demo import DEMO_TASK, HONEST_TRAINERS
    from protocol.roles.initiator import TaskFile
    from trainer import simulate
    from trainer.simulate import SimulationConfig, run_simulation

    torch.set_num_threads(1)
    task = TaskFile.model_validate(DEMO_TASK)
    assert task.initial.warmstart is not None
    trainers = [address for address, _ in dev_accounts(2 + HONEST_TRAINERS)[2:]]
    simulate.trainer_addresses = lambda n: trainers[:n]  # the demo's trainers seed the rollouts
    cfg = SimulationConfig(
        env=task.env.name,
        env_params=task.env.params,
        model=task.model,
        warmstart=task.initial.warmstart.model_copy(update={"seed": seed}),
        inner=task.inner,
        outer=task.outer,
        trainers=HONEST_TRAINERS,
        rounds=rounds,
        task_id=1,
        heldout_size=task.heldout_size,
    )
    result = run_simulation(cfg)
    return {
        "accuracy": [round(a, 4) for a in result.accuracy],
        "gain": round(result.accuracy[-1] - result.accuracy[0], 4),
        "warmstart_steps": result.warmstart_steps,
        "wall_s": round(result.wall_s, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--capabilities", nargs="+", default=["avx2", "default"], help="ATEN_CPU_CAPABILITY values"
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="warm-start data seeds (0: the demo's)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-gain", type=float, default=0.20, help="exit 1 if a run gains less")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--one", nargs=2, metavar=("SEED", "ROUNDS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_one(int(args.one[0]), int(args.one[1]))))
        return 0

    runs = []
    for seed in args.seeds:
        for cap in args.capabilities:
            env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
            env.pop("ATEN_CPU_CAPABILITY", None)
            if cap != "default":
                env["ATEN_CPU_CAPABILITY"] = cap
            out = subprocess.run(
                [sys.executable, __file__, "--one", str(seed), str(args.rounds)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            run = {"capability": cap, "seed": seed, **json.loads(out.stdout.strip().splitlines()[-1])}
            runs.append(run)
            curve = " ".join(f"{a:.3f}" for a in run["accuracy"])
            print(f"{cap:>8} seed {seed}: {curve}  gain {run['gain']:+.3f}  ({run['wall_s']} s)", flush=True)
    worst = min(float(r["gain"]) for r in runs)
    print(f"smallest gain {worst:+.3f} (required {args.min_gain:+.3f})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": runs, "min_gain": worst}, indent=2) + "\n")
    return 0 if worst >= args.min_gain else 1


if __name__ == "__main__":
    sys.exit(main())
