#!/usr/bin/env python
"""Learning demonstration: a simulated network of trainers raises the global model's held-out accuracy.

    .venv/bin/python scripts/learning_curve.py --json out/learning_curve.json

Prints the accuracy per round as a table and writes JSON {rounds, accuracy, config, wall_s, ...}.
Defaults: 3 trainers, 8 rounds, 2-digit addition, the trainer/simulate.py default model and
hyper-parameters. Options override them for quick runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path, default=None, help="write the result here")
    p.add_argument("--env", default=None, help="environment name (default addition; docs/environments.md)")
    p.add_argument("--env-params", type=json.loads, default=None, help="its parameters as JSON")
    p.add_argument("--max-new-tokens", type=int, default=None, help="generation budget (answer + EOS)")
    p.add_argument("--rounds", type=int, default=None, help="rounds after the warm start (default 8)")
    p.add_argument("--trainers", type=int, default=None, help="simulated trainers (default 3)")
    p.add_argument("--steps", type=int, default=None, help="H, inner steps per round")
    p.add_argument("--rollout-every", type=int, default=None, help="regenerate rollouts every N steps")
    p.add_argument("--inner-lr", type=float, default=None, help="inner AdamW learning rate")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature")
    p.add_argument("--prompts", type=int, default=None, help="P, prompts per rollout batch")
    p.add_argument("--group", type=int, default=None, help="G, completions per prompt")
    p.add_argument("--outer-lr", type=float, default=None, help="outer learning rate (1 = averaging)")
    p.add_argument("--outer-momentum", type=float, default=None, help="outer Nesterov momentum")
    p.add_argument("--layers", type=int, default=None, help="decoder layers")
    p.add_argument("--hidden", type=int, default=None, help="hidden size")
    p.add_argument("--intermediate", type=int, default=None, help="MLP width (default 2 x hidden)")
    p.add_argument("--heldout", type=int, default=None, help="held-out problems")
    p.add_argument("--warmstart-steps", type=int, default=None, help="cap on warm-start steps")
    p.add_argument("--task-id", type=int, default=None, help="task id in every derived seed (default 1)")
    p.add_argument("--seed", type=int, default=None, help="model initialisation and warm-start data seed")
    p.add_argument("--int8", action="store_true", help="send pseudo-gradients as int8 with per-row scales")
    p.add_argument("--no-proofs", action="store_true", help="skip TOPLOC proof building")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: tiny models gain nothing from more)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)

    import torch

    from trainer.config import Compression
    from trainer.simulate import SimulationConfig, run_simulation

    torch.set_num_threads(args.threads)
    base = SimulationConfig()
    inner = base.inner.model_copy(
        update={
            k: v
            for k, v in {
                "steps": args.steps,
                "rollout_every": args.rollout_every,
                "num_prompts": args.prompts,
                "group_size": args.group,
                "max_new_tokens": args.max_new_tokens,
            }.items()
            if v is not None
        }
    )
    grpo = {k: v for k, v in {"lr": args.inner_lr, "temperature": args.temperature}.items() if v is not None}
    inner = inner.model_copy(update={"grpo": inner.grpo.model_copy(update=grpo)})
    if args.int8:
        inner = inner.model_copy(update={"compression": Compression(kind="int8", granularity="row")})
    outer = base.outer.model_copy(
        update={
            k: v for k, v in {"lr": args.outer_lr, "momentum": args.outer_momentum}.items() if v is not None
        }
    )
    model = base.model.model_copy(
        update={
            k: v
            for k, v in {
                "num_layers": args.layers,
                "hidden_size": args.hidden,
                "intermediate_size": args.intermediate or (2 * args.hidden if args.hidden else None),
                "init_seed": args.seed,
            }.items()
            if v is not None
        }
    )
    warmstart = base.warmstart.model_copy(
        update={
            k: v for k, v in {"max_steps": args.warmstart_steps, "seed": args.seed}.items() if v is not None
        }
    )
    overrides = {
        k: v
        for k, v in {
            "rounds": args.rounds,
            "trainers": args.trainers,
            "heldout_size": args.heldout,
            "task_id": args.task_id,
            "env": args.env,
            "env_params": args.env_params,
        }.items()
        if v is not None
    }
    cfg = SimulationConfig.model_validate(
        {
            **base.model_dump(),
            **overrides,
            "inner": inner.model_dump(),
            "outer": outer.model_dump(),
            "model": model.model_dump(),
            "warmstart": warmstart.model_dump(),
            "build_proofs": not args.no_proofs,
        }
    )
    result = run_simulation(cfg, log=lambda msg: print(msg, flush=True))

    print()
    head = f"{'round':>5} | {'accuracy':>8} | {'gain':>6} | {'reward':>6} | {'clip':>6} | {'max rho':>7}"
    print(f"{head} | {'wall s':>7}")
    print(f"{'-' * 5}-+-{'-' * 8}-+-{'-' * 6}-+-{'-' * 6}-+-{'-' * 6}-+-{'-' * 7}-+-{'-' * 7}")
    first = f"{0:>5} | {result.accuracy[0]:>8.3f} | {0.0:>+6.3f} | {'':>6} | {'':>6} | {'':>7}"
    print(f"{first} | {result.warmstart_s:>7.1f}")
    for rec in result.rounds:
        gain = rec.accuracy - result.accuracy[0]
        row = f"{rec.round:>5} | {rec.accuracy:>8.3f} | {gain:>+6.3f} | {rec.mean_reward:>6.3f}"
        print(f"{row} | {rec.clip_frac:>6.4f} | {rec.ratio_max:>7.3f} | {rec.wall_s:>7.1f}")
    summary = result.to_json()
    print(
        f"\n{result.parameters} parameters, {result.threads} threads; gain {summary['gain']:+.3f} "
        f"in {result.wall_s:.1f} s; proof building = {100 * summary['proof_overhead']:.2f}% of generation"
    )
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
