#!/usr/bin/env python
"""Calibrate the validator's thresholds for a task's model: honest statistics versus attacks.

    python scripts/calibrate.py --json out/calibration.json

Generates real rollouts with a real model (the task's default `ModelConfig`, untrained and after a
short warm start), replays them as a validator would at batch sizes {1, 4, 16} and thread counts
{1, 2}, and measures the TOPLOC statistics and the sampling score gaps of honest rollouts against
those of cheaters (another model, weights perturbed by 1% and 0.1%, int8-quantized weights, bf16
weights, tampered tokens, a wrong sampling seed, flipped proof bytes), then the re-execution
distances of honest GRPO steps against altered ones. It prints a table and writes everything,
with the chosen thresholds and their margins, to the JSON file (docs/toploc.md reports a run).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--prompts", type=int, default=16, help="prompts per rollout set (default 16)")
    p.add_argument("--group", type=int, default=8, help="completions per prompt (default 8)")
    p.add_argument("--long-tokens", type=int, default=72, help="max_new_tokens of the multi-chunk set")
    p.add_argument(
        "--warm-start-target", type=float, default=0.3, help="warm start accuracy target (0: skip)"
    )
    p.add_argument("--warm-start-steps", type=int, default=300, help="warm start step cap")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env", default="addition", help="environment of the task (default addition)")
    p.add_argument("--env-params", default="{}", help="its parameters as JSON, e.g. '{\"digits\": 2}'")
    p.add_argument(
        "--model",
        default="{}",
        help="the task's ModelConfig as JSON (default: ModelConfig(), hidden 128, 4 layers)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from trainer.config import InnerConfig, ModelConfig
    from trainer.envs import get_env
    from trainer.model import build_model
    from trainer.tokenizer import build_tokenizer
    from trainer.verify import SubmissionContext, VerifyThresholds

    torch.manual_seed(args.seed)
    env = get_env(args.env, json.loads(args.env_params))
    tokenizer = build_tokenizer(env.alphabet)
    model_cfg = ModelConfig.model_validate_json(args.model)
    thresholds = VerifyThresholds()
    results: dict[str, Any] = {
        "command": "python scripts/calibrate.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": {"cpu": platform.processor() or platform.machine(), "torch": torch.__version__},
        "model": model_cfg.model_dump(),
        "env": {"name": args.env, "params": json.loads(args.env_params)},
        "thresholds": thresholds.model_dump(),
        "models": {},
    }
    t_start = time.perf_counter()
    models: list[tuple[str, Any]] = [("untrained", build_model(model_cfg, tokenizer))]
    if args.warm_start_target > 0:
        _log("warm start")
        from trainer.warmstart import WarmStartConfig, warm_start

        warm_cfg = WarmStartConfig(target_accuracy=args.warm_start_target, max_steps=args.warm_start_steps)
        warm = warm_start(env, model_cfg, warm_cfg)
        models.append((f"warm-start (accuracy {warm.eval_accuracy:.2f}, {warm.steps} steps)", warm.model))

    for name, model in models:
        section: dict[str, Any] = {}
        for set_name, max_new in (("short", 8), ("long", args.long_tokens)):
            inner = InnerConfig(
                steps=1, num_prompts=args.prompts, group_size=args.group, max_new_tokens=max_new
            )
            ctx = SubmissionContext(task_id=7, round_=0, trainer="0x" + "ab" * 20, inner=inner)
            section[set_name] = _calibrate_rollouts(
                model, model_cfg, tokenizer, env, ctx, thresholds, args.seed
            )
        inner = InnerConfig(steps=3, num_prompts=args.prompts, group_size=args.group, max_new_tokens=8)
        ctx = SubmissionContext(task_id=7, round_=0, trainer="0x" + "ab" * 20, inner=inner)
        section["steps"] = _calibrate_steps(model, tokenizer, env, ctx)
        results["models"][name] = section
    results["wall_s"] = time.perf_counter() - t_start
    results["summary"] = _summary(results, thresholds)
    _print(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(results), indent=2, sort_keys=True, allow_nan=False))
    return 0 if results["summary"]["all_separated"] else 1


def _clean(x: Any) -> Any:
    """JSON has no infinities: write them as strings."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


# --- rollouts ------------------------------------------------------------------------------------------


def _metrics(replays: list[Any]) -> list[dict[str, float]]:
    """Worst chunk statistics and score gap of each replayed rollout."""
    out = []
    for rep in replays:
        chunks = rep.proof.chunks if rep.proof is not None else ()
        out.append(
            {
                "exp_mismatches": max((c.exp_mismatches for c in chunks), default=math.inf),
                "sign_mismatches": max((c.sign_mismatches for c in chunks), default=math.inf),
                "mant_err_mean": max((c.mant_err_mean for c in chunks), default=math.inf),
                "mant_err_median": max((c.mant_err_median for c in chunks), default=math.inf),
                "max_gap": rep.max_gap,
            }
        )
    return out


def _flagged(replays: list[Any], thresholds: Any) -> list[bool]:
    return [
        bool(rep.failures)
        or rep.proof is None
        or not rep.proof.passes(thresholds.toploc)
        or rep.max_gap > thresholds.max_sampling_gap
        for rep in replays
    ]


def _extremes(rows: list[dict[str, float]]) -> dict[str, dict[str, float | str]]:
    keys = rows[0].keys() if rows else ()
    return {k: {"max": _num(max(r[k] for r in rows)), "min": _num(min(r[k] for r in rows))} for k in keys}


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _calibrate_rollouts(
    model: Any, model_cfg: Any, tokenizer: Any, env: Any, ctx: Any, thresholds: Any, seed: int
) -> dict[str, Any]:
    import torch

    from trainer.rollout import Rollout, RolloutRequest, generate, make_requests
    from trainer.tokenizer import WithoutEos
    from trainer.toploc import build_proofs
    from trainer.verify import prefill_batch, replay_rollouts

    inner = ctx.inner
    requests = make_requests(
        env,
        tokenizer,
        task_id=ctx.task_id,
        round_=ctx.round_,
        trainer=ctx.trainer,
        step=0,
        num_prompts=inner.num_prompts,
        group_size=inner.group_size,
    )

    # the long set runs every completion to max_new_tokens (multi-chunk proofs, partial last chunks)
    gen_tokenizer: Any = WithoutEos(tokenizer) if inner.max_new_tokens > 8 else tokenizer

    def gen(m: Any, reqs: list[Any], batch_size: int | None = None) -> list[Any]:
        return generate(
            m,
            gen_tokenizer,
            env,
            reqs,
            max_new_tokens=inner.max_new_tokens,
            temperature=inner.grpo.temperature,
            batch_size=batch_size,
        )

    out: dict[str, Any] = {"max_new_tokens": inner.max_new_tokens, "honest": {}, "attacks": {}}
    _log(f"rollouts: max_new_tokens {inner.max_new_tokens}")
    honest_sets = {
        "generation batch all": gen(model, requests),
        "generation batch 5": gen(model, requests, 5),
    }
    lengths = [len(r.completion_ids) for r in honest_sets["generation batch all"]]
    out["completion_tokens"] = {"min": min(lengths), "max": max(lengths), "mean": sum(lengths) / len(lengths)}
    out["chunks"] = sum(-(-n // 32) for n in lengths)
    honest_rows: list[dict[str, float]] = []
    honest_flags: list[bool] = []
    n_replays = 0
    for set_name, rollouts in honest_sets.items():
        for batch_size in (1, 4, 16):
            for threads in (1, 2):
                torch.set_num_threads(threads)
                replays = replay_rollouts(model, rollouts, ctx, batch_size=batch_size)
                rows = _metrics(replays)
                honest_rows += rows
                honest_flags += _flagged(replays, thresholds)
                n_replays += len(replays)
                out["honest"][f"{set_name}, replay batch {batch_size}, threads {threads}"] = _extremes(rows)
    torch.set_num_threads(2)
    out["honest_all"] = _extremes(honest_rows)
    out["honest_replays"] = n_replays
    out["honest_flagged"] = sum(honest_flags)

    honest = honest_sets["generation batch all"]
    rng = random.Random(seed)
    gen_torch = torch.Generator().manual_seed(seed)

    def variant(fn: Any) -> Any:
        m = copy.deepcopy(model)
        with torch.no_grad():
            for p in m.parameters():
                fn(p)
        return m

    def perturb(rel: float) -> Any:
        return variant(lambda p: p.mul_(1 + rel * torch.randn(p.shape, generator=gen_torch)))

    def int8(p: torch.Tensor) -> None:
        if p.dim() == 2:
            scale = p.abs().amax(dim=1, keepdim=True) / 127
            safe = torch.where(scale > 0, scale, torch.ones_like(scale))
            p.copy_(torch.round(p / safe).clamp(-127, 127) * safe)

    from trainer.model import build_model

    def paired(rollouts: list[Any]) -> list[tuple[Any, Any]]:
        return list(zip(honest, rollouts, strict=True))

    cheaters: dict[str, list[tuple[Any, Any]]] = {
        "other model (another init seed)": paired(
            gen(
                build_model(model_cfg.model_copy(update={"init_seed": model_cfg.init_seed + 99}), tokenizer),
                requests,
            )
        ),
        "weights perturbed 1%": paired(gen(perturb(0.01), requests)),
        "weights perturbed 0.1% (not required)": paired(gen(perturb(0.001), requests)),
        "int8 weights (per row)": paired(gen(variant(int8), requests)),
        "bf16 weights (not required)": paired(
            gen(variant(lambda p: p.copy_(p.to(torch.bfloat16).float())), requests)
        ),
    }
    wrong_seed = [
        RolloutRequest(r.step, r.prompt_idx, r.g, r.prompt_ids, r.sample_seed[::-1]) for r in requests
    ]
    cheaters["wrong sampling seed"] = paired(gen(model, wrong_seed))

    def rebuilt(r: Any, completion: list[int], finished: bool) -> Any:
        # the strongest cheater: proofs recomputed honestly for the altered completion
        fake = Rollout(r.step, r.prompt_idx, r.g, r.prompt_ids, tuple(completion), r.reward, (), finished)
        hidden, _ = prefill_batch(model, [fake])[0]
        return Rollout(
            r.step,
            r.prompt_idx,
            r.g,
            r.prompt_ids,
            tuple(completion),
            r.reward,
            tuple(build_proofs(hidden)),
            finished,
        )

    def with_ids(r: Any, completion: list[int]) -> Any:
        return Rollout(
            r.step,
            r.prompt_idx,
            r.g,
            r.prompt_ids,
            tuple(completion),
            r.reward,
            r.proofs,
            completion[-1] == eos,
        )

    vocab = int(model.config.vocab_size)
    eos = tokenizer.eos_token_id
    tampered: list[tuple[Any, Any]] = []
    tampered_keep: list[tuple[Any, Any]] = []
    for r in honest:
        ids = list(r.completion_ids)
        t = rng.randrange(len(ids))
        choices = [v for v in range(vocab) if v != ids[t] and (v != eos or t == len(ids) - 1)]
        ids[t] = rng.choice(choices)
        tampered.append((r, rebuilt(r, ids, ids[-1] == eos)))
        tampered_keep.append((r, with_ids(r, ids)))
    cheaters["one tampered token, proofs rebuilt"] = tampered
    cheaters["one tampered token, proofs kept"] = tampered_keep
    cheaters["truncated + EOS, proofs rebuilt"] = [
        (r, rebuilt(r, [*r.completion_ids[: len(r.completion_ids) // 2], eos], True))
        for r in honest
        if len(r.completion_ids) >= 2 and r.completion_ids[len(r.completion_ids) // 2] != eos
    ]
    flipped = []
    for r in honest:
        proofs = [bytearray(p) for p in r.proofs]
        i = rng.randrange(len(proofs))
        # coefficient bytes: a modulus bit flip that keeps m valid and above every index is a no-op
        proofs[i][rng.randrange(2, len(proofs[i]))] ^= 1 << rng.randrange(8)
        flipped.append(
            (
                r,
                Rollout(
                    r.step,
                    r.prompt_idx,
                    r.g,
                    r.prompt_ids,
                    r.completion_ids,
                    r.reward,
                    tuple(bytes(p) for p in proofs),
                    r.finished,
                ),
            )
        )
    cheaters["one flipped coefficient bit"] = flipped

    for name, pairs in cheaters.items():
        _log(f"  attack: {name}")
        rollouts = [cheat for _, cheat in pairs]
        replays = replay_rollouts(model, rollouts, ctx, batch_size=16)
        same = sum(h.completion_ids == c.completion_ids and h.proofs == c.proofs for h, c in pairs)
        flags = _flagged(replays, thresholds)
        out["attacks"][name] = {
            "rollouts": len(replays),
            "identical_to_honest": same,
            "flagged_of_changed": sum(
                f
                for f, (h, c) in zip(flags, pairs, strict=True)
                if h.completion_ids != c.completion_ids or h.proofs != c.proofs
            ),
            "flagged": sum(flags),
            "flagged_by_toploc": sum(
                rep.proof is None or not rep.proof.passes(thresholds.toploc) for rep in replays
            ),
            "flagged_by_sampling": sum(rep.max_gap > thresholds.max_sampling_gap for rep in replays),
            "stats": _extremes(_metrics(replays)),
        }
    return out


# --- steps ---------------------------------------------------------------------------------------------


def _calibrate_steps(model: Any, tokenizer: Any, env: Any, ctx: Any) -> dict[str, Any]:
    import torch

    from trainer.checkpoint import model_weights
    from trainer.diloco import encode_update
    from trainer.grpo import make_optimizer, train_step
    from trainer.inner import run_inner_loop
    from trainer.state import load_state, state_bytes
    from trainer.verify import check_step, check_update

    inner = ctx.inner
    _log("steps")
    states: dict[int, bytes] = {}
    torch.set_num_threads(2)
    base = {k: v.clone() for k, v in model_weights(model).items()}
    work = copy.deepcopy(model)
    result = run_inner_loop(
        work,
        tokenizer,
        env,
        base,
        inner,
        task_id=ctx.task_id,
        round_=ctx.round_,
        trainer=ctx.trainer,
        state_sink=lambda j, b: states.__setitem__(j, b),
    )
    config = model.config
    out: dict[str, Any] = {"honest": {}, "attacks": {}}
    for j in range(inner.steps):
        rollouts_j = [r for r in result.rollouts if r.step == j]
        for threads in (1, 2):
            torch.set_num_threads(threads)
            s = check_step(config, j, states[j], states[j + 1], rollouts_j, inner)
            out["honest"][f"step {j}, threads {threads}"] = {
                "exact": s.exact,
                "max_abs": s.max_abs,
                "rel_l2": s.rel_l2,
            }
    torch.set_num_threads(2)

    def altered(j: int, lr_scale: float, rollouts: list[Any]) -> bytes:
        m = copy.deepcopy(model)
        opt = make_optimizer(m, inner.grpo.model_copy(update={"lr": inner.grpo.lr * lr_scale}))
        load_state(states[j], m, opt)
        train_step(m, opt, rollouts, inner.grpo.model_copy(update={"lr": inner.grpo.lr * lr_scale}))
        return state_bytes(m, opt)

    j = 1
    rollouts_j = [r for r in result.rollouts if r.step == j]
    other = [r for r in result.rollouts if r.step == 0]
    other = [
        type(r)(j, r.prompt_idx, r.g, r.prompt_ids, r.completion_ids, r.reward, r.proofs, r.finished)
        for r in other
    ]
    attacks = {
        "skipped step (theta_j+1 = theta_j)": states[j],
        "lr x 1.01": altered(j, 1.01, rollouts_j),
        "lr x 0.5": altered(j, 0.5, rollouts_j),
        "trained on other rollouts": altered(j, 1.0, other),
        "half of the rollouts": altered(j, 1.0, rollouts_j[: len(rollouts_j) // 2]),
    }
    for name, fake in attacks.items():
        s = check_step(config, j, states[j], fake, rollouts_j, inner)
        out["attacks"][name] = {"exact": s.exact, "max_abs": s.max_abs, "rel_l2": s.rel_l2}

    delta = result.delta
    updates = {
        "honest": encode_update(delta, inner.compression),
        "scaled x 1.001": encode_update({k: v * 1.001 for k, v in delta.items()}, inner.compression),
        "random": encode_update(
            {k: torch.randn_like(v) * v.std() for k, v in delta.items()}, inner.compression
        ),
    }
    for name, upd in updates.items():
        u = check_update(base, states[inner.steps], upd, inner)
        out["attacks" if name != "honest" else "honest"][f"update {name}"] = {
            "exact": u.exact,
            "max_abs": u.max_abs,
            "rel_l2": u.rel_l2,
        }
    return out


# --- summary -------------------------------------------------------------------------------------------


# attacks a threshold must catch in every changed rollout; the others have a documented tolerance
_REQUIRED = ("other model", "weights perturbed 1%", "int8 weights", "one flipped coefficient bit")
_RATE_ONLY = ("wrong sampling seed", "one tampered token", "truncated + EOS")


def _summary(results: dict[str, Any], thresholds: Any) -> dict[str, Any]:
    t = thresholds
    honest_worst: dict[str, float] = {}
    required_min: dict[str, float] = {}
    missed: list[str] = []
    rates: dict[str, str] = {}
    honest_flagged = 0
    for model_name, section in results["models"].items():
        for set_name in ("short", "long"):
            s = section[set_name]
            honest_flagged += s["honest_flagged"]
            for k, v in s["honest_all"].items():
                honest_worst[k] = max(honest_worst.get(k, -math.inf), float(v["max"]))
            for name, a in s["attacks"].items():
                changed = a["rollouts"] - a["identical_to_honest"]
                label = f"{model_name}/{set_name}/{name}"
                if name.startswith(_REQUIRED):
                    if a["flagged_of_changed"] < changed:
                        missed.append(f"{label}: {a['flagged_of_changed']}/{changed}")
                    if name.startswith(("weights perturbed 1%", "int8")):
                        low = float(a["stats"]["mant_err_mean"]["min"])
                        required_min["mant_err_mean"] = min(required_min.get("mant_err_mean", math.inf), low)
                else:
                    rates[label] = f"{a['flagged_of_changed']}/{changed}"
        steps = section["steps"]
        moved = not steps["attacks"]["lr x 0.5"]["exact"]
        for name, a in steps["attacks"].items():
            if name.startswith("update"):
                if a["max_abs"] <= t.max_update_abs:
                    missed.append(f"{model_name}/{name}")
            elif moved and a["max_abs"] <= t.max_step_abs and a["rel_l2"] <= t.max_step_rel:
                missed.append(f"{model_name}/steps/{name}")
        if not moved:
            rates[f"{model_name}/steps"] = "GRPO steps are no-ops here (every group has equal rewards)"
        for name, h in steps["honest"].items():
            honest_worst["step_max_abs"] = max(honest_worst.get("step_max_abs", 0.0), h["max_abs"])
            honest_worst["step_rel_l2"] = max(honest_worst.get("step_rel_l2", 0.0), h["rel_l2"])
            if h["max_abs"] > t.max_step_abs or h["rel_l2"] > t.max_step_rel:
                honest_flagged += 1
                missed.append(f"honest {model_name}/{name} flagged")
    mean_t = t.toploc.max_mant_err_mean
    margins = {
        "mant_err_mean": {
            "threshold": mean_t,
            "honest_max": honest_worst.get("mant_err_mean"),
            "required_attack_min": required_min.get("mant_err_mean"),
            "threshold_over_honest": mean_t / max(honest_worst.get("mant_err_mean", 0.0), 1 / 128),
            "attack_over_threshold": required_min.get("mant_err_mean", math.inf) / mean_t,
        },
        "max_gap": {"threshold": t.max_sampling_gap, "honest_max": honest_worst.get("max_gap")},
        "step_rel_l2": {"threshold": t.max_step_rel, "honest_max": honest_worst.get("step_rel_l2")},
        "step_max_abs": {"threshold": t.max_step_abs, "honest_max": honest_worst.get("step_max_abs")},
    }
    return {
        "honest_worst": honest_worst,
        "honest_flagged": honest_flagged,
        "margins": margins,
        "missed_required_attacks": missed,
        "tolerance_bound_detection_rates": rates,
        "all_separated": honest_flagged == 0 and not missed,
    }


def _print(results: dict[str, Any]) -> None:
    cols = ("exp_mismatches", "sign_mismatches", "mant_err_mean", "mant_err_median", "max_gap")
    print(f"{'case':58s} {'n':>5s} {'flag':>5s} " + " ".join(f"{c[:13]:>13s}" for c in cols))
    for model_name, section in results["models"].items():
        for set_name in ("short", "long"):
            s = section[set_name]
            print(
                f"== {model_name}, {set_name} completions "
                f"(max {s['max_new_tokens']} tokens, {s['chunks']} chunks)"
            )
            row = s["honest_all"]
            print(
                f"{'honest, all batch sizes/threads (max)':58s} "
                f"{s['honest_replays']:5d} {s['honest_flagged']:5d} "
                + " ".join(f"{_fmt(row[c]['max']):>13s}" for c in cols)
            )
            for name, a in s["attacks"].items():
                print(
                    f"{name + ' (min)':58s} {a['rollouts']:5d} {a['flagged']:5d} "
                    + " ".join(f"{_fmt(a['stats'][c]['min']):>13s}" for c in cols)
                )
        st = section["steps"]
        print(f"== {model_name}, GRPO steps and update (exact, max_abs, rel_l2)")
        for kind in ("honest", "attacks"):
            for name, v in st[kind].items():
                print(f"  {kind:8s} {name:48s} {v['exact']!s:>6s} {v['max_abs']:12.3g} {v['rel_l2']:12.3g}")
    print(f"summary: {json.dumps(_clean(results['summary']), indent=1)}")
    print(f"wall time {results['wall_s']:.1f} s")


def _fmt(x: float | str) -> str:
    return x if isinstance(x, str) else f"{x:.4g}"


if __name__ == "__main__":
    sys.exit(main())
