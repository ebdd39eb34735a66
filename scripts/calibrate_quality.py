#!/usr/bin/env python
"""Calibrate the quality gate (`trainer.quality`): how far honest training ever lowers the reference score,
how far the attacks lower it, and what that leaves for `VerifyThresholds.max_quality_drop`.

    python scripts/calibrate_quality.py --json out/calibration-quality.json      (~10 min of CPU, 1 thread)
    python scripts/calibrate_quality.py --quick                                   (one model, one lr: seconds)

For each of the project's models (the demo's, examples/task.yaml's, the network tests' tiny one), each
base (the warm start to 0.3 accuracy and a longer one to 0.5), each inner learning rate in 1e-5 .. 1e-3 and
three trainers, it runs the honest inner loop of the task's shape and measures the gate's drop
score(base) - score(base - update) on `--seeds` rounds' problem sets (the gate's problems depend on the
seed). Honest runs must all stay below the threshold; the attacks (the issue's poisoned step that removes
EOS, the demo's -4x update, reversed training, a random update as large as the honest one) must all land
above it. Float noise: the drop of one honest update is computed again with 2 threads and with the
Hugging Face forward instead of the lean one, and the largest difference is reported.

Exits 1 if an honest run reaches the threshold or an attack stays below it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--seeds", type=int, default=16, help="gate problem sets (rounds) per update")
    p.add_argument("--trainers", type=int, default=3, help="honest trainers per (model, base, lr)")
    p.add_argument("--quick", action="store_true", help="the demo's model, one base, one lr, 1 trainer")
    p.add_argument("--threshold", type=float, default=None, help="judge against this (default: the spec's)")
    return p.parse_args(argv)


MODELS: dict[str, dict[str, Any]] = {
    "demo (hidden 64, 2 layers)": {
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 4,
                  "intermediate_size": 128, "max_position_embeddings": 32},
        "env": {"digits": 2},
        "inner": {"steps": 8, "num_prompts": 8, "group_size": 8, "max_new_tokens": 4},
    },
    "examples/task.yaml (hidden 128, 4 layers)": {
        "model": {"max_position_embeddings": 32},
        "env": {"digits": 2},
        "inner": {"steps": 32, "num_prompts": 8, "group_size": 8, "max_new_tokens": 4},
    },
    "network tests (hidden 32, 1 layer)": {
        "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 2,
                  "intermediate_size": 64, "max_position_embeddings": 16},
        "env": {"digits": 1},
        "inner": {"steps": 2, "num_prompts": 2, "group_size": 2, "max_new_tokens": 3},
    },
}  # fmt: skip
LRS = (1e-5, 1e-4, 3e-4, 1e-3)
TARGETS = (0.3, 0.5)


def _drops(ctx: dict[str, Any], delta: dict[str, Any], seeds: list[bytes]) -> list[float]:
    from trainer.quality import check_quality

    out = []
    for seed in seeds:
        base_score = ctx["base_scores"].get(seed)
        check = check_quality(
            ctx["hf"], ctx["tok"], ctx["env"], ctx["base"], delta, seed, base_score=base_score
        )
        ctx["base_scores"][seed] = check.base_score
        out.append(check.drop)
    return out


def _inner(ctx: dict[str, Any], inner: Any, trainer: str, **edits: Any) -> Any:
    from trainer.inner import run_inner_loop
    from trainer.model import model_from_config

    return run_inner_loop(
        model_from_config(ctx["hf"]), ctx["tok"], ctx["env"], ctx["base"], inner,
        task_id=1, round_=0, trainer=trainer, build_proofs=False, **edits,
    )  # fmt: skip


def _poison_step_0(eos: int, j: int, model: Any) -> None:
    from trainer.cheats import suppress_eos

    if j == 0:
        suppress_eos(model, eos)


def _accuracy(ctx: dict[str, Any], model: Any, heldout: Any, delta: dict[str, Any]) -> float:
    from trainer.checkpoint import load_weights
    from trainer.quality import trainer_weights
    from trainer.rollout import evaluate_accuracy

    load_weights(model, trainer_weights(ctx["base"], delta))
    return evaluate_accuracy(model, ctx["tok"], ctx["env"], heldout)


def _model_rows(name: str, cfg: dict[str, Any], args: argparse.Namespace, seeds: list[bytes]) -> list[dict]:
    import torch

    from trainer.cheats import scaled, total_norm
    from trainer.checkpoint import model_weights
    from trainer.config import GrpoConfig, InnerConfig, ModelConfig, WarmStartConfig
    from trainer.derive import HELDOUT_DOMAIN
    from trainer.envs import get_env
    from trainer.model import hf_config
    from trainer.rollout import evaluate_accuracy
    from trainer.warmstart import problems

    env = get_env("addition", cfg["env"])
    model_cfg = ModelConfig(**cfg["model"])
    rows: list[dict] = []
    targets = TARGETS[:1] if args.quick else TARGETS
    lrs = (1e-4,) if args.quick else LRS
    trainers = [f"0x{i + 1:040x}" for i in range(1 if args.quick else args.trainers)]
    for target in targets:
        from trainer.warmstart import warm_start

        t0 = time.process_time()
        ws = warm_start(env, model_cfg, WarmStartConfig(lr=1e-3, target_accuracy=target, eval_size=200))
        base = {k: v.clone() for k, v in model_weights(ws.model).items()}
        ctx = {"env": env, "tok": ws.tokenizer, "hf": hf_config(model_cfg, ws.tokenizer), "base": base,
               "base_scores": {}}  # fmt: skip
        heldout = problems(env, HELDOUT_DOMAIN, 200)
        base_acc = evaluate_accuracy(ws.model, ws.tokenizer, env, heldout)
        print(f"{name}: warm start to {target}: {ws.steps} steps, {time.process_time() - t0:.0f} s cpu")

        honest_norms = []
        for lr in lrs:
            inner = InnerConfig(**cfg["inner"], grpo=GrpoConfig(lr=lr))
            for trainer in trainers:
                result = _inner(ctx, inner, trainer)
                drops = _drops(ctx, result.delta, seeds)
                honest_norms.append(total_norm(result.delta))
                acc = _accuracy(ctx, ws.model, heldout, result.delta)
                rows.append({"model": name, "base_accuracy": base_acc, "target": target, "lr": lr,
                             "kind": "honest", "trainer": trainer, "max_drop": max(drops),
                             "min_drop": min(drops), "accuracy": acc})  # fmt: skip
        inner = InnerConfig(**cfg["inner"], grpo=GrpoConfig(lr=1e-4))
        honest = _inner(ctx, inner, trainers[0])
        poison = partial(_poison_step_0, ws.tokenizer.eos_token_id)
        poisoned = _inner(ctx, inner, trainers[0], edit_step=poison)
        gen = torch.Generator().manual_seed(0)
        noise = {k: torch.randn(v.shape, generator=gen) for k, v in honest.delta.items()}
        noise = scaled(noise, total_norm(honest.delta) / total_norm(noise))
        for kind, delta in (
            ("attack: EOS row negated after step 0, then honest", poisoned.delta),
            ("attack: -4x the update (the demo's poison)", scaled(honest.delta, -4.0)),
            ("attack: reversed training (-1x)", scaled(honest.delta, -1.0)),
            ("attack: random update of the honest norm", noise),
        ):
            drops = _drops(ctx, delta, seeds)
            acc = _accuracy(ctx, ws.model, heldout, delta)
            rows.append({"model": name, "base_accuracy": base_acc, "target": target, "lr": 1e-4,
                         "kind": kind, "trainer": trainers[0], "max_drop": max(drops),
                         "min_drop": min(drops), "accuracy": acc})  # fmt: skip
        rows.append(_noise_row(name, ctx, honest.delta, seeds[:4]))
        print(f"{name}: base accuracy {base_acc:.3f} ({len(heldout)} held-out problems)")
    return rows


def _noise_row(name: str, ctx: dict[str, Any], delta: dict[str, Any], seeds: list[bytes]) -> dict:
    """The same update's drop with 2 threads and through the Hugging Face forward: float noise."""
    import torch

    from trainer.checkpoint import load_weights
    from trainer.model import model_from_config
    from trainer.quality import quality_problems, reference_score, trainer_weights

    reference = _drops({**ctx, "base_scores": {}}, delta, seeds)
    torch.set_num_threads(2)
    two = _drops({**ctx, "base_scores": {}}, delta, seeds)
    torch.set_num_threads(1)
    model = model_from_config(ctx["hf"])
    hf = []
    for seed in seeds:
        probs = quality_problems(ctx["env"], seed)
        scores = []
        for weights in (ctx["base"], trainer_weights(ctx["base"], delta)):
            load_weights(model, weights)
            scores.append(reference_score(model, ctx["tok"], probs, engine="hf"))
        hf.append(scores[0] - scores[1])
    pairs = [*zip(reference, two, strict=True), *zip(reference, hf, strict=True)]
    worst = max(abs(a - b) for a, b in pairs)
    return {"model": name, "kind": "float noise (2 threads, HF forward)", "max_abs_difference": worst}


def _required(row: dict[str, Any]) -> bool:
    """The gate must catch the EOS suppression, and the scaled poison wherever it harms (10 points of
    accuracy or more); a reversal or a random update of the honest norm is left to the aggregation."""
    if "EOS" in row["kind"]:
        return True
    return "-4x" in row["kind"] and row["base_accuracy"] - row["accuracy"] >= 0.1


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import hashlib

    import torch

    from trainer.config import QUALITY_MAX_LR, VerifyThresholds

    torch.set_num_threads(1)
    threshold = args.threshold if args.threshold is not None else VerifyThresholds().max_quality_drop
    seeds = [hashlib.sha256(f"calibration round {i}".encode()).digest() for i in range(args.seeds)]
    models = dict(list(MODELS.items())[:1]) if args.quick else MODELS
    started = time.process_time()
    rows: list[dict] = []
    for name, cfg in models.items():
        rows += _model_rows(name, cfg, args, seeds)
    honest = [r for r in rows if r["kind"] == "honest"]
    attacks = [r for r in rows if r["kind"].startswith("attack")]
    noise = [r for r in rows if r["kind"].startswith("float")]
    calibrated = [r for r in honest if r["lr"] <= QUALITY_MAX_LR]
    honest_worst = max(r["max_drop"] for r in calibrated)
    required = [r for r in attacks if _required(r)]
    attack_least = min(r["min_drop"] for r in required)
    noise_worst = max(r["max_abs_difference"] for r in noise)
    print(
        f"\n{'model':44s} {'base':>5s} {'lr':>7s} {'kind':52s} {'max drop':>9s} {'min drop':>9s} {'acc':>6s}"
    )
    for r in honest + attacks:
        note = (
            ""
            if r in calibrated or r in required
            else "  (not required)"
            if r in attacks
            else "  (lr > calibrated)"
        )
        print(f"{r['model']:44s} {r['target']:5.1f} {r['lr']:7.0e} {r['kind'][:52]:52s} {r['max_drop']:9.4f} "
              f"{r['min_drop']:9.4f} {r['accuracy']:6.3f}{note}")  # fmt: skip
    ok = honest_worst < threshold <= attack_least
    print(
        f"\nthreshold max_quality_drop {threshold}: honest worst drop {honest_worst:.4f} "
        f"(lr <= {QUALITY_MAX_LR:g}, "
        f"{threshold / max(honest_worst, 1e-12):.1f}x below), weakest required attack {attack_least:.4f} "
        f"({attack_least / threshold:.1f}x above); float noise {noise_worst:.2e}; "
        f"{time.process_time() - started:.0f} s cpu -> {'OK' if ok else 'FAIL'}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": " ".join(["python scripts/calibrate_quality.py", *(argv or sys.argv[1:])]),
            "threshold": threshold, "honest_worst_drop": honest_worst, "weakest_attack_drop": attack_least,
            "float_noise": noise_worst, "ok": ok, "rows": rows,
        }, indent=2))  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
