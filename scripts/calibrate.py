#!/usr/bin/env python
"""Calibrate the validator's thresholds: honest work on every kind of hardware reachable here vs attacks.

    python scripts/calibrate.py --json out/calibration.json --markdown out/calibration.md

Two parts, both with the task's real model (`--model`, default `ModelConfig()` = examples/task.yaml's):

1. **Honest work across hardware** (the pairings). Each *hardware profile* is a fresh process with
   PyTorch's CPU kernels (`ATEN_CPU_CAPABILITY` = avx512, avx2, or `default`: no vectorisation, each
   with the matching MKL code path, `MKL_CBWR`), 1 or 2 threads, a `torch.set_float32_matmul_precision`
   setting, and CUDA with TF32 off/on where a GPU is present. Every profile trains honest submissions
   (H inner steps from a warm-started base, rollouts every 1 and every 2 steps, at every learning rate
   of `--lrs`) plus a set of long multi-chunk completions; every profile then verifies every
   profile's work as a validator does (`verify_submission` with every rollout replayed, every step
   re-executed, replay batch sizes 1, 4, 16; `decide` with the default `VerifyThresholds`). Each
   (submission, validator) is one honest submission verified: none may be rejected.
2. **Attacks** on the same machine: cheaters who generate with the project's own code after changing
   one thing (another model, weights perturbed by 1% / 0.1%, int8 or bf16 weights, tampered tokens,
   a wrong sampling seed, flipped proof bits) and who forge GRPO steps (skipped, other learning
   rate, other or fewer rollouts, a step 1% longer, forged moments, weights steered through Adam's
   epsilon regime) at every learning rate. Every required attack must be rejected.

It prints the honest maxima per pairing, the attack minima and the margins between them (the tables
of docs/toploc.md; `--markdown` writes them), writes everything to `--json` (`honest_submissions`,
`honest_rejections`, `attacks_tried`, `attacks_missed`, `pairings`, `learning_rates`, ...) and exits
1 if an honest submission was rejected or a required attack missed. The heavy part is (1): about
`len(profiles)^2 * 2 * len(lrs) * --submissions` verifications (~1-3 s of CPU each for the default
model; 2-thread validators verify every third submission, since two threads crawl on a busy 2-core
host). `--profiles` and `--submissions` trade coverage for time.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# --- hardware profiles ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Profile:
    """One kind of machine a trainer or validator may run on, as far as this host can stand in for it."""

    name: str
    env: dict[str, str]
    """Environment of the process: PyTorch's CPU kernel level and MKL's matching code path."""
    threads: int = 1
    precision: str = "highest"
    """`torch.set_float32_matmul_precision` (on CPUs with AVX512-BF16, `medium` runs matmuls in bf16)."""
    device: str = "cpu"
    verify_every: int = 1
    """As a validator, verify every n-th submission (2-thread processes crawl on a busy 2-core host)."""

    def describe(self) -> str:
        env = " ".join(f"{k}={v}" for k, v in sorted(self.env.items())) or "defaults"
        return f"{env}, {self.threads} thread(s), matmul precision {self.precision}, {self.device}"


_KERNEL_ENV = ("ATEN_CPU_CAPABILITY", "MKL_CBWR")
PROFILES = {
    p.name: p
    for p in (
        Profile("avx512", {"ATEN_CPU_CAPABILITY": "avx512"}),
        Profile("avx512-2t", {"ATEN_CPU_CAPABILITY": "avx512"}, threads=2, verify_every=3),
        Profile("avx2", {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2"}),
        Profile("no-simd", {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}),
        Profile(
            "no-simd-2t",
            {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"},
            threads=2,
            verify_every=3,
        ),
        Profile("bf16-matmul", {}, precision="medium"),
        Profile("cuda", {}, device="cuda"),
        Profile("cuda-tf32", {}, precision="high", device="cuda"),
    )
}
DEFAULT_PROFILES = ("avx512", "avx512-2t", "avx2", "no-simd", "bf16-matmul", "cuda", "cuda-tf32")


def available_profiles(names: list[str]) -> tuple[list[Profile], dict[str, str]]:
    """The profiles of `names` this host can run, and why each other one cannot run here."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()  # the highest this CPU supports, when unset
    levels = {"default": 0, "avx2": 1, "avx512": 2}
    have = levels.get(capability.lower(), 0)
    ok: list[Profile] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name not in PROFILES:
            raise SystemExit(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
        p = PROFILES[name]
        if p.device == "cuda" and not torch.cuda.is_available():
            skipped[name] = "no CUDA device"
        elif levels[p.env.get("ATEN_CPU_CAPABILITY", "default")] > have:
            skipped[name] = f"this CPU's best kernels are {capability}"
        else:
            ok.append(p)
    return ok, skipped


def _run_worker(profile: Profile, args: list[str]) -> None:
    """Run `calibrate.py worker ...` in a fresh process under `profile` (kernels are chosen at import)."""
    env = {k: v for k, v in os.environ.items() if k not in _KERNEL_ENV}
    env.update(profile.env)
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # idle OpenMP threads sleep instead of spinning: scheduling only
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "worker",
        *args,
        "--threads",
        str(profile.threads),
        "--precision",
        profile.precision,
        "--device",
        profile.device,
        "--every",
        str(profile.verify_every),
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {args[0]} under {profile.name} failed:\n{done.stderr[-4000:]}")


# --- the worker: make honest work, or verify it, under one profile -------------------------------------


def _task_parts(env_name: str, env_params: dict[str, Any], model_json: str) -> tuple[Any, Any, Any]:
    from trainer.config import ModelConfig
    from trainer.envs import get_env
    from trainer.tokenizer import build_tokenizer

    env = get_env(env_name, env_params)
    return env, build_tokenizer(env.alphabet), ModelConfig.model_validate_json(model_json)


def _adapt_for_calibration(model: Any, lora_json: str, seed: int) -> dict[str, Any]:
    """Add `lora_json`'s adapters to `model` in place, B drawn small and nonzero (trained adapters)."""
    import torch

    from trainer.config import LoraConfig
    from trainer.lora import adapt

    lora = LoraConfig.model_validate_json(lora_json)
    adapt(model, lora)
    gen = torch.Generator().manual_seed(seed + 11)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return lora.model_dump(mode="json")


def _worker_model(model_cfg: Any, tokenizer: Any, spec: dict[str, Any]) -> Any:
    """The workers' policy: the tiny model, with LoRA adapters when the spec has `lora` (`trainer.lora`;
    base.safetensors then holds base and adapters)."""
    from trainer.config import LoraConfig
    from trainer.lora import inject, with_lora
    from trainer.model import build_model

    model = build_model(model_cfg, tokenizer)
    if spec.get("lora") is not None:
        lora = LoraConfig.model_validate(spec["lora"])
        inject(model, lora)
        with_lora(model.config, lora)
    return model


def _rollout_json(r: Any) -> dict[str, Any]:
    return {
        "step": r.step,
        "prompt_idx": r.prompt_idx,
        "g": r.g,
        "prompt_ids": list(r.prompt_ids),
        "completion_ids": list(r.completion_ids),
        "reward": r.reward,
        "proofs": [p.hex() for p in r.proofs],
        "finished": r.finished,
    }


def _rollout_load(d: dict[str, Any]) -> Any:
    from trainer.rollout import Rollout

    return Rollout(
        int(d["step"]),
        int(d["prompt_idx"]),
        int(d["g"]),
        tuple(int(t) for t in d["prompt_ids"]),
        tuple(int(t) for t in d["completion_ids"]),
        float(d["reward"]),
        tuple(bytes.fromhex(p) for p in d["proofs"]),
        bool(d["finished"]),
    )


def _worker_parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="calibrate.py worker")
    p.add_argument("action", choices=("make", "verify"))
    p.add_argument("--dir", type=Path, required=True, help="the work directory (base.safetensors, sub-*)")
    p.add_argument("--spec", type=Path, required=True, help="JSON: env, model, sizes, lrs")
    p.add_argument("--out", type=Path, help="verify: write the results here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--precision", default="highest")
    p.add_argument("--device", default="cpu")
    p.add_argument("--every", type=int, default=1, help="verify: every n-th submission")
    return p.parse_args(argv)


def _worker(argv: list[str]) -> int:
    args = _worker_parse(argv)
    import torch

    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision(args.precision)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.precision != "highest"
        torch.backends.cudnn.allow_tf32 = args.precision != "highest"
    spec = json.loads(args.spec.read_text())
    if args.action == "make":
        _worker_make(args.dir, spec, args.device)
    else:
        assert args.out is not None
        args.out.write_text(json.dumps(_clean(_worker_verify(args.dir, spec, args.device, args.every))))
    return 0


def _worker_make(work: Path, spec: dict[str, Any], device: str) -> None:
    """Honest submissions (states, rollouts, update) at every lr and rollout_every, and a long set."""
    from trainer.checkpoint import load_tensors
    from trainer.config import GrpoConfig, InnerConfig
    from trainer.diloco import encode_update
    from trainer.inner import run_inner_loop
    from trainer.rollout import generate, make_requests
    from trainer.tokenizer import WithoutEos

    env, tokenizer, model_cfg = _task_parts(spec["env"], spec["env_params"], spec["model"])
    base = load_tensors((work / "base.safetensors").read_bytes())
    model: Any = _worker_model(model_cfg, tokenizer, spec)
    model.to(device)
    index = 0
    for every in spec["rollout_every"]:
        for lr in spec["lrs"]:
            inner = InnerConfig(
                steps=spec["steps"],
                rollout_every=every,
                num_prompts=spec["prompts"],
                group_size=spec["group"],
                max_new_tokens=spec["max_new_tokens"],
                grpo=GrpoConfig(lr=lr),
            )
            for _ in range(spec["submissions"]):
                sub = work / f"sub-{index:04d}"
                sub.mkdir()
                trainer = "0x" + (index + 1).to_bytes(20, "big").hex()

                def sink(j: int, data: bytes, sub: Path = sub) -> None:
                    (sub / f"state-{j}").write_bytes(data)

                result = run_inner_loop(
                    model,
                    tokenizer,
                    env,
                    base,
                    inner,
                    task_id=spec["task_id"],
                    round_=0,
                    trainer=trainer,
                    state_sink=sink,
                )
                (sub / "update").write_bytes(encode_update(result.delta, inner.compression))
                meta = {
                    "inner": inner.model_dump(mode="json"),
                    "trainer": trainer,
                    "rollouts": [_rollout_json(r) for r in result.rollouts],
                    "clip_frac": [m["loss/clip_frac"] for m in result.metrics],
                }
                (sub / "meta.json").write_text(json.dumps(meta))
                index += 1
    # long completions (EOS disabled: every chunk full but the last) from the base, in batches of 5
    from trainer.checkpoint import load_weights

    load_weights(model, base)
    requests = make_requests(
        env,
        tokenizer,
        task_id=spec["task_id"],
        round_=1,
        trainer="0x" + "ee" * 20,
        step=0,
        num_prompts=spec["long_prompts"],
        group_size=spec["group"],
    )
    no_eos: Any = WithoutEos(tokenizer)
    long = generate(
        model,
        no_eos,
        env,
        requests,
        max_new_tokens=spec["long_tokens"],
        temperature=1.0,
        batch_size=5,
    )
    (work / "long.json").write_text(json.dumps([_rollout_json(r) for r in long]))


def _replay_row(rep: Any) -> dict[str, float]:
    chunks = rep.proof.chunks if rep.proof is not None else ()
    return {
        "exp_mismatches": max((c.exp_mismatches for c in chunks), default=math.inf),
        "sign_mismatches": max((c.sign_mismatches for c in chunks), default=math.inf),
        "mant_err_mean": max((c.mant_err_mean for c in chunks), default=math.inf),
        "mant_err_median": max((c.mant_err_median for c in chunks), default=math.inf),
        "max_gap": rep.max_gap,
    }


def _maxima(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: max(r[k] for r in rows) for k in rows[0]} if rows else {}


def _worker_verify(work: Path, spec: dict[str, Any], device: str, every: int = 1) -> dict[str, Any]:
    """Verify every `every`-th submission in `work` as a validator does, and replay the long set."""
    from trainer.checkpoint import load_tensors
    from trainer.config import InnerConfig, VerifyThresholds
    from trainer.verify import SubmissionContext, decide, replay_rollouts, verify_submission

    env, tokenizer, model_cfg = _task_parts(spec["env"], spec["env_params"], spec["model"])
    thresholds = VerifyThresholds.model_validate(spec["thresholds"])
    base = load_tensors((work / "base.safetensors").read_bytes())
    model: Any = _worker_model(model_cfg, tokenizer, spec)
    config = model.config
    subs: list[dict[str, Any]] = []
    for i, sub in enumerate(sorted(work.glob("sub-*"))[::every]):
        meta = json.loads((sub / "meta.json").read_text())
        inner = InnerConfig.model_validate(meta["inner"])
        rollouts = [_rollout_load(r) for r in meta["rollouts"]]
        states = {j: (sub / f"state-{j}").read_bytes() for j in range(inner.steps + 1)}
        ctx = SubmissionContext(task_id=spec["task_id"], round_=0, trainer=meta["trainer"], inner=inner)
        batch = (1, 4, 16)[i % 3]
        report = verify_submission(
            ctx=ctx,
            policy_config=config,
            tokenizer=tokenizer,
            env=env,
            base=base,
            rollouts=rollouts,
            sampled=range(len(rollouts)),
            picked_steps=range(inner.steps),
            states=states,
            update=(sub / "update").read_bytes(),
            batch_size=batch,
        )
        if device != "cpu":  # verify_submission replays and re-executes on the CPU
            report = _on_device(report, model, states, rollouts, ctx, batch, device)
        verdict = decide(report, thresholds)
        subs.append(
            {
                "submission": sub.name,
                "lr": inner.grpo.lr,
                "rollout_every": inner.rollout_every,
                "replay_batch": batch,
                "decision": verdict.decision,
                "reasons": list(verdict.reasons),
                "replays": _maxima([_replay_row(r) for r in report.replays]),
                "steps": [{k: getattr(s, k) for k in ("step", "exact", *STEP_STATS)} for s in report.steps],
            }
        )
    long_rows: list[dict[str, float]] = []
    long_flagged = 0
    if (work / "long.json").exists():
        from trainer.checkpoint import load_weights

        long = [_rollout_load(r) for r in json.loads((work / "long.json").read_text())]
        inner = InnerConfig(
            steps=1,
            num_prompts=spec["long_prompts"],
            group_size=spec["group"],
            max_new_tokens=spec["long_tokens"],
        )
        ctx = SubmissionContext(task_id=spec["task_id"], round_=1, trainer="0x" + "ee" * 20, inner=inner)
        load_weights(model, base)
        model.to(device)
        for batch in (1, 4, 16):
            replays = replay_rollouts(model, long, ctx, batch_size=batch)
            long_rows += [_replay_row(r) for r in replays]
            long_flagged += sum(_replay_flagged(r, thresholds) for r in replays)
    return {
        "submissions": subs,
        "long": {"replays": len(long_rows), "flagged": long_flagged, "maxima": _maxima(long_rows)},
    }


def _on_device(
    report: Any, model: Any, states: dict[int, bytes], rollouts: list[Any], ctx: Any, batch: int, device: str
) -> Any:
    """`report` with its replays and step re-executions redone on `device` (a CUDA validator)."""
    from trainer.checkpoint import load_tensors, load_weights
    from trainer.config import rollout_step
    from trainer.inner import step_rollouts
    from trainer.verify import check_step, replay_rollouts

    inner = ctx.inner
    on_device = copy.deepcopy(model).to(device)
    replays = []
    for j in sorted({r.step for r in rollouts}):
        weights = {
            k[len("model/") :]: v for k, v in load_tensors(states[j]).items() if k.startswith("model/")
        }
        load_weights(on_device, weights)
        replays += replay_rollouts(on_device, [r for r in rollouts if r.step == j], ctx, batch_size=batch)
    steps = [
        check_step(
            model.config,
            j,
            states[j],
            states[j + 1],
            step_rollouts(rollouts, j, inner.rollout_every),
            inner,
            states[rollout_step(j, inner.rollout_every)],
            device=device,
        )
        for j in range(inner.steps)
    ]
    return report.model_copy(update={"replays": tuple(replays), "steps": tuple(steps)})


STEP_STATS = ("rel_l2", "max_abs_lr", "moment_rel", "adam_ulps")
"""The step distances a threshold applies to (`trainer.verify.StepStats`)."""
STEP_LIMITS = {
    "rel_l2": "max_step_rel",
    "max_abs_lr": "max_step_lr",
    "moment_rel": "max_step_moments",
    "adam_ulps": "max_step_ulps",
}
REPLAY_STATS = ("exp_mismatches", "sign_mismatches", "mant_err_mean", "mant_err_median", "max_gap")


def _replay_flagged(rep: Any, thresholds: Any) -> bool:
    return (
        bool(rep.failures)
        or rep.proof is None
        or not rep.proof.passes(thresholds.toploc)
        or not rep.max_gap <= thresholds.max_sampling_gap
    )


# --- part 2: attacks on rollouts (same machine) --------------------------------------------------------


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
    torch.set_num_threads(1)
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


# --- part 1: honest work across hardware ---------------------------------------------------------------


def _hardware(
    args: argparse.Namespace, model_json: str, base: bytes, thresholds: Any, lrs: list[float]
) -> dict[str, Any]:
    """Every available profile trains; every available profile verifies what each trained."""
    profiles, skipped = available_profiles(args.profiles)
    spec = {
        "env": args.env,
        "env_params": json.loads(args.env_params),
        "model": model_json,
        "thresholds": thresholds.model_dump(mode="json"),
        "task_id": 7,
        "lrs": lrs,
        "rollout_every": [1, 2],
        "submissions": args.submissions,
        "steps": args.steps,
        "prompts": args.step_prompts,
        "group": args.group,
        "max_new_tokens": args.max_new_tokens,
        "long_prompts": args.long_prompts,
        "long_tokens": args.long_tokens,
        "lora": None if args.lora is None else json.loads(args.lora),
    }
    pairings: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="trustrl-calibrate-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec))
        for trainer in profiles:
            work = Path(tmp) / trainer.name
            work.mkdir()
            (work / "base.safetensors").write_bytes(base)
            _log(f"hardware: {trainer.name} trains ({trainer.describe()})")
            _run_worker(trainer, ["make", "--dir", str(work), "--spec", str(spec_path)])
            for validator in profiles:
                _log(f"hardware: {validator.name} verifies {trainer.name}'s work")
                out = work / f"verified-{validator.name}.json"
                _run_worker(
                    validator, ["verify", "--dir", str(work), "--spec", str(spec_path), "--out", str(out)]
                )
                pairings.append(_pairing(trainer.name, validator.name, json.loads(out.read_text())))
            shutil.rmtree(work)
    return {
        "profiles": {p.name: p.describe() for p in profiles},
        "skipped_profiles": skipped,
        "spec": spec,
        "pairings": pairings,
    }


def _num_in(x: Any) -> float:
    return float(x)  # also "inf", as _clean writes it


def _pairing(trainer: str, validator: str, result: dict[str, Any]) -> dict[str, Any]:
    subs = result["submissions"]
    steps = [s for sub in subs for s in sub["steps"]]
    replay_rows = [sub["replays"] for sub in subs if sub["replays"]]
    by_lr: dict[str, dict[str, float]] = {}
    for sub in subs:
        row = by_lr.setdefault(f"{sub['lr']:g}", dict.fromkeys(STEP_STATS, 0.0))
        for s in sub["steps"]:
            for k in STEP_STATS:
                row[k] = max(row[k], _num_in(s[k]))
    rejected = [sub for sub in subs if sub["decision"] != "ACCEPT"]
    return {
        "trainer": trainer,
        "validator": validator,
        "submissions": len(subs),
        "rejections": len(rejected),
        "rejection_reasons": [r for sub in rejected for r in sub["reasons"]][:10],
        "steps": len(steps),
        "steps_exact": sum(bool(s["exact"]) for s in steps),
        "replays": sum(1 for _ in replay_rows),
        "step_max": {k: max((_num_in(s[k]) for s in steps), default=0.0) for k in STEP_STATS},
        "step_max_by_lr": by_lr,
        "replay_max": {k: max((_num_in(r[k]) for r in replay_rows), default=-math.inf) for k in REPLAY_STATS},
        "long": result["long"],
    }


# --- part 2: attacks on GRPO steps ---------------------------------------------------------------------


_STEP_REQUIRED_EXCEPT = ("64 epsilon-regime",)
"""Step attacks reported but not required to be caught: moving a few dozen weights that have no
gradient by less than one Adam step each is the residual capacity the limits leave (docs/toploc.md)."""


def _retrain(
    model: Any, states: dict[int, bytes], j: int, grpo: Any, rollouts: list[Any], behaviour: bool = True
) -> bytes:
    """theta_j+1 of a step re-run with `grpo` on `rollouts`; without the behaviour policy if asked."""
    from trainer.config import rollout_step
    from trainer.grpo import behaviour_logprobs, make_optimizer, train_step
    from trainer.state import load_state, state_bytes

    m = copy.deepcopy(model)
    opt = make_optimizer(m, grpo)
    old = None
    j0 = rollout_step(j, 2)
    if behaviour and j0 != j:
        b = copy.deepcopy(model)
        load_state(states[j0], b, make_optimizer(b, grpo))
        old = behaviour_logprobs(b, rollouts, grpo)
    load_state(states[j], m, opt)
    train_step(m, opt, rollouts, grpo, old)
    return state_bytes(m, opt)


def _further(before: bytes, honest: bytes, factor: float, prefixes: tuple[str, ...]) -> bytes:
    """theta_j + factor * (honest theta_j+1 - theta_j) on the tensors named `prefixes` (step counts kept)."""
    from trainer.checkpoint import canonical_bytes, load_tensors

    a, b = load_tensors(before), load_tensors(honest)
    scaled = {
        k: a[k] + factor * (b[k] - a[k]) for k in b if k.startswith(prefixes) and not k.endswith("/step")
    }
    return canonical_bytes({**b, **scaled})


def _forged_moments(before: bytes, honest: bytes, grpo: Any, scale: float, steer: int) -> bytes:
    """Moments scaled by `scale` or, with `steer` > 0, a fake gradient of 1e-6 added on the `steer`
    elements of smallest second moment (Adam's epsilon regime); weights made AdamW-consistent."""
    import torch

    from trainer.checkpoint import canonical_bytes, load_tensors
    from trainer.state import adamw_weights

    a, b = load_tensors(before), load_tensors(honest)
    out = dict(b)
    names = sorted(k[len("model/") :] for k in b if k.startswith("model/"))
    chosen: set[int] = set()
    if steer:
        flat = torch.cat([b[f"optim/{n}/exp_avg_sq"].flatten() for n in names])
        chosen = set(torch.argsort(flat, stable=True)[:steer].tolist())
    offset = 0
    for n in names:
        m, v = b[f"optim/{n}/exp_avg"].clone(), b[f"optim/{n}/exp_avg_sq"].clone()
        idx = [i - offset for i in sorted(chosen) if offset <= i < offset + m.numel()]
        offset += m.numel()
        if steer and not idx:
            continue
        if steer:
            fake = torch.full((len(idx),), 1e-6)
            m.view(-1)[idx] += (1 - grpo.beta1) * fake
            v.view(-1)[idx] += (1 - grpo.beta2) * fake * fake
        else:
            m, v = m * scale, v * scale
        out[f"optim/{n}/exp_avg"], out[f"optim/{n}/exp_avg_sq"] = m, v
        out[f"model/{n}"] = adamw_weights(a[f"model/{n}"], m, v, float(b[f"optim/{n}/step"]), grpo)
    return canonical_bytes(out)


def _step_row(s: Any) -> dict[str, Any]:
    return {"exact": s.exact, **{k: getattr(s, k) for k in STEP_STATS}, "failures": list(s.failures)}


def _calibrate_steps(
    model: Any, tokenizer: Any, env: Any, args: argparse.Namespace, thresholds: Any, lrs: list[float]
) -> dict[str, Any]:
    """Honest steps re-executed on 1 and 2 threads, and forged steps, at every learning rate
    (H = 3, rollouts every 2 steps: step 1 is off-policy, step 2 on-policy)."""
    import torch

    from trainer.checkpoint import load_tensors, model_weights
    from trainer.config import GrpoConfig, InnerConfig, rollout_step
    from trainer.diloco import encode_update
    from trainer.inner import run_inner_loop, step_rollouts
    from trainer.state import reexecute_step
    from trainer.verify import check_step, check_update

    out: dict[str, Any] = {"honest": [], "attacks": [], "updates": [], "notes": []}
    config = model.config
    base = {k: v.clone() for k, v in model_weights(model).items()}
    for lr in lrs:
        inner = InnerConfig(
            steps=3,
            rollout_every=2,
            num_prompts=args.prompts,
            group_size=args.group,
            max_new_tokens=8,
            grpo=GrpoConfig(lr=lr),
        )
        grpo = inner.grpo
        _log(f"steps: lr {lr:g}")
        torch.set_num_threads(2)
        states: dict[int, bytes] = {}
        result = run_inner_loop(
            copy.deepcopy(model),
            tokenizer,
            env,
            base,
            inner,
            task_id=7,
            round_=0,
            trainer="0x" + "ab" * 20,
            state_sink=states.__setitem__,
        )
        for j in range(inner.steps):
            j0 = rollout_step(j, inner.rollout_every)
            train_on = step_rollouts(result.rollouts, j, inner.rollout_every)
            for threads in (1, 2):
                torch.set_num_threads(threads)
                s = check_step(config, j, states[j], states[j + 1], train_on, inner, states[j0])
                row = {"lr": lr, "step": j, "threads": threads, **_step_row(s), "over": s.over(thresholds)}
                out["honest"].append(row)
        torch.set_num_threads(1)
        for j in (1, 2):
            before, after = load_tensors(states[j]), load_tensors(states[j + 1])
            moved = any(not torch.equal(before[k], after[k]) for k in before if k.startswith("model/"))
            if not moved:
                out["notes"].append(f"lr {lr:g}: step {j} does not move the weights (no reward signal)")
            j0 = rollout_step(j, inner.rollout_every)
            train_on = step_rollouts(result.rollouts, j, inner.rollout_every)
            honest = reexecute_step(config, states[j], train_on, grpo, states[j0] if j0 != j else None)
            other = [dataclasses.replace(r, step=j0) for r in result.rollouts if r.step == 2 - j0]
            attacks = {
                "skipped step": states[j],
                "lr x 1.01": _retrain(model, states, j, grpo.model_copy(update={"lr": lr * 1.01}), train_on),
                "lr x 0.5": _retrain(model, states, j, grpo.model_copy(update={"lr": lr * 0.5}), train_on),
                "trained on other rollouts": _retrain(model, states, j, grpo, other),
                "trained on half the rollouts": _retrain(
                    model, states, j, grpo, train_on[: len(train_on) // 2]
                ),
                "weights 1% further": _further(states[j], honest, 1.01, ("model/",)),
                "weights and moments 1% further": _further(states[j], honest, 1.01, ("model/", "optim/")),
                "moments 1% off": _further(states[j], honest, 1.01, ("optim/",)),
                "moments 1% off, weights AdamW-consistent": _forged_moments(states[j], honest, grpo, 1.01, 0),
                "64 epsilon-regime weights steered": _forged_moments(states[j], honest, grpo, 1.0, 64),
            }
            if j0 != j:
                attacks["no importance ratio (old = new logp)"] = _retrain(
                    model, states, j, grpo, train_on, behaviour=False
                )
            for name, fake in attacks.items():
                s = check_step(config, j, states[j], fake, train_on, inner, states[j0])
                required = moved and not name.startswith(_STEP_REQUIRED_EXCEPT)
                caught = bool(s.failures) or bool(s.over(thresholds))
                row = {"name": name, "lr": lr, "step": j, "required": required, "caught": caught}
                out["attacks"].append({**row, **_step_row(s)})
        delta = result.delta
        for name, upd in {
            "update x 1.001": {k: v * 1.001 for k, v in delta.items()},
            "random update": {k: torch.randn_like(v) * v.std() for k, v in delta.items()},
        }.items():
            u = check_update(base, states[inner.steps], encode_update(upd, inner.compression), inner)
            caught = bool(u.failures) or not u.max_abs <= thresholds.max_update_abs
            row = {"name": name, "lr": lr, "max_abs": u.max_abs, "rel_l2": u.rel_l2, "caught": caught}
            out["updates"].append(row)
    return out


# --- summary: honest maxima, attack minima, margins ----------------------------------------------------


# rollout attacks a threshold must catch in every changed rollout; the others have a documented tolerance
_REQUIRED = ("other model", "weights perturbed 1%", "int8 weights", "one flipped coefficient bit")


def _summary(results: dict[str, Any], thresholds: Any) -> dict[str, Any]:
    t = thresholds
    hw = results.get("hardware", {"pairings": []})
    pairings = hw["pairings"]
    honest_submissions = sum(p["submissions"] for p in pairings)
    honest_rejections = sum(p["rejections"] for p in pairings)
    honest_replays_flagged = sum(p["long"]["flagged"] for p in pairings)
    honest_step_max = {k: max((p["step_max"][k] for p in pairings), default=0.0) for k in STEP_STATS}
    honest_replay_max = {
        k: max((p["replay_max"][k] for p in pairings if math.isfinite(p["replay_max"][k])), default=0.0)
        for k in REPLAY_STATS
    }
    for p in pairings:
        for k in REPLAY_STATS:
            if k in p["long"]["maxima"]:
                honest_replay_max[k] = max(honest_replay_max[k], _num_in(p["long"]["maxima"][k]))
    missed: list[str] = []
    tried = 0
    rates: dict[str, str] = {}
    required_min: dict[str, float] = {}
    for model_name, section in results["models"].items():
        for set_name in ("short", "long"):
            s = section[set_name]
            honest_replays_flagged += s["honest_flagged"]
            for k, v in s["honest_all"].items():
                honest_replay_max[k] = max(honest_replay_max[k], _num_in(v["max"]))
            for name, a in s["attacks"].items():
                changed = a["rollouts"] - a["identical_to_honest"]
                label = f"{model_name}/{set_name}/{name}"
                if name.startswith(_REQUIRED):
                    tried += 1
                    if a["flagged_of_changed"] < changed:
                        missed.append(f"{label}: {a['flagged_of_changed']}/{changed}")
                    if name.startswith(("weights perturbed 1%", "int8")):
                        low = _num_in(a["stats"]["mant_err_mean"]["min"])
                        required_min["mant_err_mean"] = min(required_min.get("mant_err_mean", math.inf), low)
                else:
                    rates[label] = f"{a['flagged_of_changed']}/{changed}"
        steps = section.get("steps")
        if steps is None:
            continue
        for h in steps["honest"]:
            for k in STEP_STATS:
                honest_step_max[k] = max(honest_step_max[k], h[k])
            if h["failures"] or h["over"]:
                missed.append(f"honest {model_name} step {h['step']} lr {h['lr']:g} flagged: {h['over']}")
        for a in [*steps["attacks"], *steps["updates"]]:
            if a.get("required", True):
                tried += 1
                if not a["caught"]:
                    missed.append(f"{model_name}/step {a.get('step', '-')}/lr {a['lr']:g}/{a['name']}")
            elif not a["caught"]:
                rates[f"{model_name}/lr {a['lr']:g}/{a['name']}"] = "passes the limits (not required)"
    step_attack_min = _step_attack_minima(results, t)
    limits = {k: getattr(t, STEP_LIMITS[k]) for k in STEP_STATS}
    margins = {
        "steps": {
            k: {
                "threshold": limits[k],
                "honest_max": honest_step_max[k],
                "threshold_over_honest": _over(limits[k], honest_step_max[k]),
            }
            for k in STEP_STATS
        },
        "step_attacks": step_attack_min,
        "mant_err_mean": {
            "threshold": t.toploc.max_mant_err_mean,
            "honest_max": honest_replay_max["mant_err_mean"],
            "required_attack_min": required_min.get("mant_err_mean"),
            "threshold_over_honest": _over(
                t.toploc.max_mant_err_mean, max(honest_replay_max["mant_err_mean"], 1 / 128)
            ),
            "attack_over_threshold": required_min.get("mant_err_mean", math.inf) / t.toploc.max_mant_err_mean,
        },
        "exp_mismatches": {
            "threshold": t.toploc.max_exp_mismatches,
            "honest_max": honest_replay_max["exp_mismatches"],
        },
        "sign_mismatches": {
            "threshold": t.toploc.max_sign_mismatches,
            "honest_max": honest_replay_max["sign_mismatches"],
        },
        "max_gap": {"threshold": t.max_sampling_gap, "honest_max": honest_replay_max["max_gap"]},
    }
    worst_honest = min(margins["steps"].values(), key=lambda m: m["threshold_over_honest"])
    worst_attack = min(
        (a for a in step_attack_min.values() if a["required"]),
        key=lambda a: a["times_over_limit"],
        default=None,
    )
    return {
        "honest_submissions": honest_submissions,
        "honest_rejections": honest_rejections,
        "honest_replays_flagged": honest_replays_flagged,
        "attacks_tried": tried,
        "attacks_missed": len(missed),
        "missed": missed,
        "honest_max": {"steps": honest_step_max, "replays": honest_replay_max},
        "margins": margins,
        "worst_honest_step_margin": worst_honest["threshold_over_honest"],
        "worst_attack_step_margin": worst_attack["times_over_limit"] if worst_attack else None,
        "tolerance_bound_detection_rates": rates,
        "all_separated": honest_rejections == 0 and honest_replays_flagged == 0 and not missed,
    }


def _over(limit: float, honest: float) -> float:
    return limit / honest if honest > 0 else math.inf


def _step_attack_minima(results: dict[str, Any], t: Any) -> dict[str, dict[str, Any]]:
    """Per step attack: its smallest value of every distance, and how far over its limit it stays."""
    out: dict[str, dict[str, Any]] = {}
    for section in results["models"].values():
        for a in section.get("steps", {}).get("attacks", []):
            row = out.setdefault(
                a["name"],
                {
                    "required": a["required"],
                    "instances": 0,
                    "caught": 0,
                    **dict.fromkeys(STEP_STATS, math.inf),
                    "times_over_limit": math.inf,
                    "failures": 0,
                },
            )
            row["instances"] += 1
            row["caught"] += a["caught"]
            row["required"] = row["required"] or a["required"]
            row["failures"] += bool(a["failures"])
            ratio = math.inf if a["failures"] else max(a[k] / getattr(t, STEP_LIMITS[k]) for k in STEP_STATS)
            row["times_over_limit"] = min(row["times_over_limit"], ratio)
            for k in STEP_STATS:
                row[k] = min(row[k], a[k])
    return out


# --- output --------------------------------------------------------------------------------------------


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    if not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def _tables(results: dict[str, Any]) -> str:
    """The calibration's tables in Markdown (docs/toploc.md)."""
    s = results["summary"]
    lines: list[str] = []
    hw = results.get("hardware")
    if hw:
        lines += [
            "| trainer -> validator | submissions | rejected | steps exact | weights rel L2 | weights max/lr"
            " | moments rel | AdamW ulps | exp | sign | mant mean | gap | long replays (flagged)"
            " | long mant mean |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in hw["pairings"]:
            m, r, lg = p["step_max"], p["replay_max"], p["long"]
            lm = lg["maxima"].get("mant_err_mean", "-")
            lines.append(
                f"| {p['trainer']} -> {p['validator']} | {p['submissions']} | {p['rejections']} "
                f"| {p['steps_exact']}/{p['steps']} | {_fmt(m['rel_l2'])} | {_fmt(m['max_abs_lr'])} "
                f"| {_fmt(m['moment_rel'])} | {_fmt(m['adam_ulps'])} | {_fmt(r['exp_mismatches'])} "
                f"| {_fmt(r['sign_mismatches'])} | {_fmt(r['mant_err_mean'])} | {_fmt(r['max_gap'])} "
                f"| {lg['replays']} ({lg['flagged']}) | {_fmt(_num_in(lm) if lm != '-' else lm)} |"
            )
        lines.append("")
        lines += [
            "| lr | weights rel L2 | weights max/lr | moments rel | AdamW ulps |",
            "|---|---:|---:|---:|---:|",
        ]
        lrs = sorted({lr for p in hw["pairings"] for lr in p["step_max_by_lr"]}, key=float)
        for lr in lrs:
            row = {
                k: max(p["step_max_by_lr"].get(lr, {}).get(k, 0.0) for p in hw["pairings"])
                for k in STEP_STATS
            }
            lines.append(f"| {lr} | " + " | ".join(_fmt(row[k]) for k in STEP_STATS) + " |")
        lines.append("")
    lines += [
        "| step distance | limit | honest max | threshold / honest |",
        "|---|---:|---:|---:|",
    ]
    for k, m in s["margins"]["steps"].items():
        lines.append(
            f"| {k} | {_fmt(m['threshold'])} | {_fmt(m['honest_max'])} | {_fmt(m['threshold_over_honest'])} |"
        )
    lines += [
        "",
        "| step attack (min over lrs and steps) | caught | weights rel L2 | weights max/lr | moments rel"
        " | AdamW ulps | x over its limit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, a in s["margins"]["step_attacks"].items():
        req = "" if a["required"] else " (not required)"
        lines.append(
            f"| {name}{req} | {a['caught']}/{a['instances']} | "
            + " | ".join(_fmt(a[k]) for k in STEP_STATS)
            + f" | {_fmt(a['times_over_limit'])} |"
        )
    return "\n".join(lines) + "\n"


def _print(results: dict[str, Any]) -> None:
    cols = REPLAY_STATS
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
    print()
    print(_tables(results))
    s = results["summary"]
    print(
        f"honest submissions {s['honest_submissions']} (rejected {s['honest_rejections']}), honest replays "
        f"flagged {s['honest_replays_flagged']}; attacks tried {s['attacks_tried']}, "
        f"missed {s['attacks_missed']}"
    )
    print(
        f"worst honest margin (limit / honest max) {_fmt(s['worst_honest_step_margin'])}x; "
        f"weakest required step attack {_fmt(s['worst_attack_step_margin'])}x over its strongest limit"
    )
    for m in s["missed"]:
        print(f"  MISSED: {m}")
    print(f"wall time {results['wall_s']:.1f} s")


def _clean(x: Any) -> Any:
    """JSON has no infinities: write them as strings."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


_START = time.perf_counter()


def _log(message: str) -> None:
    print(f"[{time.perf_counter() - _START:7.0f} s] {message}", file=sys.stderr, flush=True)


def _metrics(replays: list[Any]) -> list[dict[str, float]]:
    """Worst chunk statistics and score gap of each replayed rollout."""
    return [_replay_row(rep) for rep in replays]


def _flagged(replays: list[Any], thresholds: Any) -> list[bool]:
    return [_replay_flagged(rep, thresholds) for rep in replays]


def _extremes(rows: list[dict[str, float]]) -> dict[str, dict[str, float | str]]:
    keys = rows[0].keys() if rows else ()
    return {k: {"max": _num(max(r[k] for r in rows)), "min": _num(min(r[k] for r in rows))} for k in keys}


# --- main ----------------------------------------------------------------------------------------------


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--markdown", type=Path, help="write the tables here (docs/toploc.md)")
    p.add_argument("--lrs", default="1e-5,1e-4,1e-3", help="learning rates (comma-separated)")
    p.add_argument(
        "--profiles", default=",".join(DEFAULT_PROFILES), help=f"hardware profiles, of {', '.join(PROFILES)}"
    )
    p.add_argument(
        "--submissions", type=int, default=6, help="honest submissions per profile, lr, rollout_every"
    )
    p.add_argument("--steps", type=int, default=3, help="H of the honest submissions (all re-executed)")
    p.add_argument("--step-prompts", type=int, default=8, help="P of the honest submissions")
    p.add_argument("--max-new-tokens", type=int, default=4, help="max_new_tokens of the honest submissions")
    p.add_argument("--long-prompts", type=int, default=4, help="prompts of the long set (x --group)")
    p.add_argument("--prompts", type=int, default=16, help="prompts per attack rollout set (default 16)")
    p.add_argument("--group", type=int, default=8, help="completions per prompt (default 8)")
    p.add_argument("--long-tokens", type=int, default=72, help="max_new_tokens of the multi-chunk sets")
    p.add_argument("--warm-start-target", type=float, default=0.3, help="warm start accuracy target")
    p.add_argument("--warm-start-steps", type=int, default=600, help="warm start step cap")
    p.add_argument("--no-attacks", action="store_true", help="only the honest hardware matrix")
    p.add_argument("--no-hardware", action="store_true", help="only the same-machine attack library")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--env", default="addition", help="environment of the task (default addition)")
    p.add_argument("--env-params", default='{"digits": 2}', help="its parameters as JSON")
    p.add_argument(
        "--model",
        default="{}",
        help="the task's ModelConfig as JSON (default: ModelConfig(), hidden 128, 4 layers)",
    )
    p.add_argument(
        "--lora",
        default=None,
        help="a LoraConfig as JSON: the hardware matrix trains LoRA adapters on the warm-started model "
        "(B moved off zero, as after some rounds; trainer.lora); the attacks stay on the full model",
    )
    args = p.parse_args(argv)
    args.profiles = [x for x in args.profiles.split(",") if x]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return _worker(argv[1:])
    args = _parse(argv)
    import torch

    from trainer.checkpoint import canonical_bytes, model_weights
    from trainer.config import InnerConfig, ModelConfig, VerifyThresholds
    from trainer.model import build_model
    from trainer.verify import SubmissionContext
    from trainer.warmstart import WarmStartConfig, warm_start

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    env, tokenizer, model_cfg = _task_parts(args.env, json.loads(args.env_params), args.model)
    model_json = ModelConfig.model_validate(model_cfg).model_dump_json()
    lrs = [float(x) for x in args.lrs.split(",")]
    thresholds = VerifyThresholds()
    results: dict[str, Any] = {
        "command": "python scripts/calibrate.py " + " ".join(argv),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "model": model_cfg.model_dump(),
        "env": {"name": args.env, "params": json.loads(args.env_params)},
        "thresholds": thresholds.model_dump(),
        "learning_rates": lrs,
        "models": {},
    }
    t_start = time.perf_counter()
    _log("warm start")
    warm = warm_start(
        env,
        model_cfg,
        WarmStartConfig(target_accuracy=args.warm_start_target, max_steps=args.warm_start_steps),
    )
    warm_name = f"warm-start (accuracy {warm.eval_accuracy:.2f}, {warm.steps} steps)"
    if not args.no_attacks:
        for name, model in (("untrained", build_model(model_cfg, tokenizer)), (warm_name, warm.model)):
            section: dict[str, Any] = {}
            for set_name, max_new in (("short", 8), ("long", args.long_tokens)):
                inner = InnerConfig(
                    steps=1, num_prompts=args.prompts, group_size=args.group, max_new_tokens=max_new
                )
                ctx = SubmissionContext(task_id=7, round_=0, trainer="0x" + "ab" * 20, inner=inner)
                section[set_name] = _calibrate_rollouts(
                    model, model_cfg, tokenizer, env, ctx, thresholds, args.seed
                )
            if model is warm.model:
                section["steps"] = _calibrate_steps(model, tokenizer, env, args, thresholds, lrs)
            results["models"][name] = section
    if not args.no_hardware:
        if args.lora is not None:
            results["lora"] = _adapt_for_calibration(warm.model, args.lora, args.seed)
        base = canonical_bytes(model_weights(warm.model))
        results["hardware"] = _hardware(args, model_json, base, thresholds, lrs)
    results["wall_s"] = time.perf_counter() - t_start
    summary = _summary(results, thresholds)
    results["summary"] = summary
    results.update(
        {
            "honest_submissions": summary["honest_submissions"],
            "honest_rejections": summary["honest_rejections"],
            "attacks_tried": summary["attacks_tried"],
            "attacks_missed": summary["attacks_missed"],
            "pairings": results.get("hardware", {}).get("pairings", []),
        }
    )
    _print(results)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(_clean(results), indent=2, sort_keys=True, allow_nan=False))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(_tables(results))
    return 0 if summary["all_separated"] else 1


if __name__ == "__main__":
    sys.exit(main())
