#!/usr/bin/env python
"""Benchmark TOPLOC and the validator's re-checks on CPU; prints a table and writes JSON.

    python scripts/bench_toploc.py --json out/bench_toploc.json

Measures, with the project's real generation (`trainer.rollout.generate`) and real models:

* proof_bytes_per_32_tokens: size of one proof;
* proof_build_overhead_pct: share of rollout generation time spent building proofs (completions of
  `--tokens` tokens, EOS disabled so that every completion has exactly that length);
* validation_speedup: generation time (with proofs) / validation time (one batched prefill, TOPLOC
  verification and the sampling replay) for the same rollouts;
* verify_cost_ratio: one validator's whole verification of a submission (cheap checks on every
  rollout, replay of `--check-rollouts` rollouts (all of them by default, as examples/task.yaml) on their
  steps' states, re-execution of `--check-steps` steps, theta_0 and update checks, the quality gate) /
  the trainer's compute for that submission (the whole inner loop: generation, proofs, GRPO steps, state
  hashing), at the task's sizes; `verify_cost_split` says where the validator's time goes.

The headline numbers are those of the task's default model (`ModelConfig()`), generated as the
trainer generates a step (one batch of all the requests); the table adds a shallower and a wider
model, and the default model generated in batches of 8 and of 1
(`validation_speedup_by_generation_batch`: decoding bound by per-step costs, the regime of GPU
decoding). Times are this process's CPU time with 1 torch thread by default, so
that the ratios hold on a shared machine; `--clock wall --threads 2` measures wall time instead (on
an otherwise idle machine). See docs/toploc.md for a run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--tokens", type=int, default=128, help="completion length for the speed rows (>= 128)")
    p.add_argument("--rollouts", type=int, default=64, help="rollouts per speed row (P x G)")
    p.add_argument("--batch-size", type=int, default=16, help="validator prefill batch size")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see --clock)")
    p.add_argument(
        "--clock", choices=("cpu", "wall"), default="cpu", help="process CPU time (default) or wall time"
    )
    p.add_argument("--steps", type=int, default=32, help="H of the submission (examples/task.yaml: 32)")
    p.add_argument("--prompts", type=int, default=8, help="P of the submission")
    p.add_argument("--group", type=int, default=8, help="G of the submission")
    p.add_argument("--max-new-tokens", type=int, default=4, help="max_new_tokens of the submission")
    p.add_argument(
        "--check-rollouts", default="all", help="rollouts a validator replays: all (examples/task.yaml) or N"
    )
    p.add_argument("--check-steps", type=int, default=8, help="steps a validator re-executes (task.yaml: 8)")
    p.add_argument("--submission-only", action="store_true", help="only the verify_cost_ratio row")
    return p.parse_args(argv)


def _speed_row(
    name: str,
    model_cfg: Any,
    args: argparse.Namespace,
    *,
    rollouts: int | None = None,
    gen_batch: int | None = None,
) -> dict[str, Any]:
    import torch

    from trainer.config import InnerConfig
    from trainer.envs import get_env
    from trainer.model import build_model, num_parameters
    from trainer.rollout import generate, make_requests
    from trainer.tokenizer import WithoutEos, build_tokenizer
    from trainer.toploc import build_proofs_many
    from trainer.verify import SubmissionContext, replay_rollouts

    env = get_env("addition")
    tokenizer = build_tokenizer(env.alphabet)
    model = build_model(model_cfg, tokenizer)
    no_eos: Any = WithoutEos(tokenizer)
    group = 8
    count = rollouts or args.rollouts
    inner = InnerConfig(
        steps=1, num_prompts=max(1, count // group), group_size=group, max_new_tokens=args.tokens
    )
    ctx = SubmissionContext(task_id=1, round_=0, trainer="0x" + "22" * 20, inner=inner)
    requests = make_requests(
        env,
        tokenizer,
        task_id=1,
        round_=0,
        trainer=ctx.trainer,
        step=0,
        num_prompts=inner.num_prompts,
        group_size=group,
    )
    clock = _clock(args)
    # warm-up (first-call allocations, the inverse table)
    warm = generate(model, no_eos, env, requests[:2], max_new_tokens=40, temperature=1.0)
    replay_rollouts(model, warm, ctx, batch_size=args.batch_size)
    t0 = clock()
    plain, hiddens = generate(
        model,
        no_eos,
        env,
        requests,
        max_new_tokens=args.tokens,
        temperature=1.0,
        build_proofs=False,
        return_hidden=True,
        batch_size=gen_batch,  # None: every request in one batch, as the trainer does (P x G per step)
    )
    generate_s = clock() - t0
    t0 = clock()
    proofs = build_proofs_many(hiddens)  # what `generate` does once per batch
    proof_s = clock() - t0
    rollouts = [dataclasses.replace(r, proofs=tuple(p)) for r, p in zip(plain, proofs, strict=True)]
    tokens = sum(len(r.completion_ids) for r in rollouts)
    t0 = clock()
    replays = replay_rollouts(model, rollouts, ctx, batch_size=args.batch_size)
    verify_s = clock() - t0
    honest_ok = all(
        r.proof is not None and r.proof.passes(_thresholds().toploc) and r.max_gap <= 0.1 for r in replays
    )
    del torch
    return {
        "model": name,
        "generation_batch": gen_batch or len(requests),
        "parameters": num_parameters(model),
        "rollouts": len(rollouts),
        "tokens": tokens,
        "generate_s": generate_s,
        "proof_s": proof_s,
        "proof_build_overhead_pct": 100.0 * proof_s / (generate_s + proof_s),
        "proof_us_per_chunk": 1e6 * proof_s / max(1, sum(len(r.proofs) for r in rollouts)),
        "validation_s": verify_s,
        "validation_speedup": (generate_s + proof_s) / verify_s,
        "honest_replays_pass": honest_ok,
    }


def _clock(args: argparse.Namespace) -> Any:
    # CPU time of this process: robust to other load on a shared machine (with 1 thread it is the work
    # done); wall time: what a user waits, meaningful only on an otherwise idle machine
    return time.process_time if args.clock == "cpu" else time.perf_counter


def _thresholds() -> Any:
    from trainer.verify import VerifyThresholds

    return VerifyThresholds()


def _submission_row(args: argparse.Namespace) -> dict[str, Any]:
    from trainer.checkpoint import model_weights
    from trainer.config import InnerConfig, ModelConfig
    from trainer.diloco import decode_update, encode_update
    from trainer.envs import get_env
    from trainer.inner import run_inner_loop
    from trainer.model import build_model
    from trainer.quality import check_quality
    from trainer.tokenizer import build_tokenizer
    from trainer.verify import SubmissionContext, decide, verify_submission

    env = get_env("addition")
    tokenizer = build_tokenizer(env.alphabet)
    model = build_model(ModelConfig(), tokenizer)
    inner = InnerConfig(
        steps=args.steps, num_prompts=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens
    )
    ctx = SubmissionContext(task_id=1, round_=0, trainer="0x" + "33" * 20, inner=inner)
    base = {k: v.clone() for k, v in model_weights(model).items()}
    states: dict[int, bytes] = {}
    clock = _clock(args)
    t0 = clock()
    result = run_inner_loop(
        model,
        tokenizer,
        env,
        base,
        inner,
        task_id=1,
        round_=0,
        trainer=ctx.trainer,
        state_sink=lambda j, data: states.__setitem__(j, data),
    )
    update = encode_update(result.delta, inner.compression)
    train_s = clock() - t0
    n = len(result.rollouts)
    count = n if args.check_rollouts == "all" else int(args.check_rollouts)
    stride = max(1, n // count)
    sampled = list(range(0, n, stride))[:count]
    picked = sorted({(k * 7 + 3) % inner.steps for k in range(args.check_steps)})
    split = _split(
        args, model.config, tokenizer, env, base, result.rollouts, sampled, picked, states, update, ctx
    )
    t0 = clock()
    report = verify_submission(
        ctx=ctx,
        policy_config=model.config,
        tokenizer=tokenizer,
        env=env,
        base=base,
        rollouts=result.rollouts,
        sampled=sampled,
        picked_steps=picked,
        states=states,
        update=update,
        batch_size=args.batch_size,
    )
    verdict = decide(report, _thresholds())
    t_gate = clock()
    gate = check_quality(model.config, tokenizer, env, base, decode_update(update), b"\x07" * 32)
    verify_s = clock() - t0
    split["quality_gate_s"] = clock() - t_gate
    return {
        "steps": inner.steps,
        "rollouts": n,
        "work_units": result.work_units,
        "checked_rollouts": len(sampled),
        "reexecuted_steps": len(set(picked)),
        "trainer_s": train_s,
        "validator_s": verify_s,
        "verify_cost_ratio": verify_s / train_s,
        "verdict": verdict.decision if gate.drop <= _thresholds().max_quality_drop else "REJECT (quality)",
        "reasons": list(verdict.reasons[:5]),
        "verify_cost_split": split,
    }


def _split(
    args: argparse.Namespace,
    config: Any,
    tokenizer: Any,
    env: Any,
    base: Any,
    rollouts: Any,
    sampled: list[int],
    picked: list[int],
    states: dict[int, bytes],
    update: bytes,
    ctx: Any,
) -> dict[str, float]:
    """CPU seconds of the validator's parts: cheap checks + loading states + theta_0 + update (no replay,
    no step), the replay of the sampled rollouts, and the re-execution of the picked steps."""
    from trainer.verify import verify_submission

    clock = _clock(args)
    out: dict[str, float] = {}
    for name, s, p in (("cheap_and_ends_s", [], []), ("replay_s", sampled, []), ("steps_s", [], picked)):
        t0 = clock()
        verify_submission(
            ctx=ctx, policy_config=config, tokenizer=tokenizer, env=env, base=base, rollouts=rollouts,
            sampled=s, picked_steps=p, states=states, update=update, batch_size=args.batch_size,
        )  # fmt: skip
        out[name] = clock() - t0
    out["replay_s"] -= out["cheap_and_ends_s"]
    out["steps_s"] -= out["cheap_and_ends_s"]
    return out


def _print_submission(s: dict[str, Any]) -> None:
    print(
        f"submission: H={s['steps']}, {s['rollouts']} rollouts, {s['work_units']} tokens; trainer "
        f"{s['trainer_s']:.2f} s, validator {s['validator_s']:.2f} s ({s['checked_rollouts']} replays, "
        f"{s['reexecuted_steps']} steps, the gate) -> verify_cost_ratio {s['verify_cost_ratio']:.3f}, "
        f"verdict {s['verdict']}; split "
        + ", ".join(f"{k} {v:.2f}" for k, v in s["verify_cost_split"].items())
    )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.tokens < 1 or args.rollouts < 1:
        print("--tokens and --rollouts must be positive", file=sys.stderr)
        return 2
    import torch

    from trainer.config import ModelConfig
    from trainer.toploc import PROOF_BYTES

    torch.set_num_threads(args.threads)
    if args.submission_only:
        submission = _submission_row(args)
        _print_submission(submission)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"submission": submission}, indent=2, sort_keys=True))
        return 0
    rows = [
        _speed_row(
            "task default: hidden 128, 4 layers", ModelConfig(max_position_embeddings=args.tokens + 16), args
        ),
        _speed_row(
            "hidden 128, 2 layers", ModelConfig(num_layers=2, max_position_embeddings=args.tokens + 16), args
        ),
        _speed_row(
            "hidden 512, 2 layers",
            ModelConfig(
                hidden_size=512,
                num_layers=2,
                num_heads=8,
                num_kv_heads=8,
                intermediate_size=1024,
                max_position_embeddings=args.tokens + 16,
            ),
            args,
        ),
    ]
    # the same model when the trainer generates in smaller batches: decoding is then bound by per-step
    # costs that the validator's prefill does not pay (the regime GPU decoding is in at every batch size)
    default = ModelConfig(max_position_embeddings=args.tokens + 16)
    sweep = [
        rows[0],
        _speed_row("task default, generation batch 8", default, args, gen_batch=8),
        _speed_row("task default, generation batch 1", default, args, rollouts=8, gen_batch=1),
    ]
    rows += sweep[1:]
    submission = _submission_row(args)
    head = rows[0]
    results = {
        "command": "python scripts/bench_toploc.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": args.threads,
            "clock": args.clock,
            "torch": torch.__version__,
        },
        "proof_bytes_per_32_tokens": PROOF_BYTES,
        "proof_build_overhead_pct": head["proof_build_overhead_pct"],
        "validation_speedup": head["validation_speedup"],
        "verify_cost_ratio": submission["verify_cost_ratio"],
        "validation_speedup_by_generation_batch": {
            str(r["generation_batch"]): r["validation_speedup"] for r in sweep
        },
        "completion_tokens": args.tokens,
        "rows": rows,
        "submission": submission,
    }
    print(
        f"{'model':38s} {'gen batch':>9s} {'params':>9s} {'tokens':>7s} {'gen s':>7s} "
        f"{'proof s':>8s} {'proof %':>8s} "
        f"{'us/chunk':>9s} {'verify s':>9s} {'speedup':>8s} {'honest ok':>9s}"
    )
    for r in rows:
        print(
            f"{r['model']:38s} {r['generation_batch']:9d} {r['parameters']:9d} {r['tokens']:7d} "
            f"{r['generate_s']:7.2f} "
            f"{r['proof_s']:8.3f} "
            f"{r['proof_build_overhead_pct']:8.2f} {r['proof_us_per_chunk']:9.0f} {r['validation_s']:9.3f} "
            f"{r['validation_speedup']:8.1f} {r['honest_replays_pass']!s:>9s}"
        )
    _print_submission(submission)
    print(
        f"proof_bytes_per_32_tokens {PROOF_BYTES}, "
        f"proof_build_overhead_pct {results['proof_build_overhead_pct']:.2f}, "
        f"validation_speedup {results['validation_speedup']:.1f}, "
        f"verify_cost_ratio {results['verify_cost_ratio']:.3f}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
