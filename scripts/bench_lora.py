#!/usr/bin/env python
"""Benchmark LoRA against full training on one Hugging Face model; prints a table and writes JSON.

    python scripts/bench_lora.py --json out/bench_lora.json

The model is an offline-made Qwen2 (`trainer.pretrained.make_offline_model`: a byte-level BPE tokenizer
trained on addition problems, random weights; `--hidden`, `--layers`, `--intermediate` set its size). For
full training and for LoRA (`--rank`, `--targets`; `trainer.lora`) on the same base, one trainer runs a
round (`trainer.inner.run_inner_loop`: generation with proofs, GRPO steps, every state serialized) and one
validator verifies it (`trainer.verify.verify_submission`: every rollout replayed, `--check-steps` steps
re-executed, theta_0 and the update) and runs the quality gate. Reported per mode:

* state_bytes: one training state theta_j (what a trainer commits per step, uploads when picked and a
  validator downloads to re-execute a step): weights + AdamW moments of what trains;
* update_bytes: the submitted pseudo-gradient (fp32); checkpoint_bytes: the global checkpoint;
* trainer_s, validator_s and verify_cost_ratio = validator_s / trainer_s (CPU time of this process with
  1 torch thread by default, as scripts/bench_toploc.py).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--hidden", type=int, default=256, help="hidden size of the Qwen2")
    p.add_argument("--layers", type=int, default=4, help="decoder layers")
    p.add_argument("--intermediate", type=int, default=1024, help="MLP width")
    p.add_argument("--rank", type=int, default=8, help="LoRA rank")
    p.add_argument("--alpha", type=int, default=16, help="LoRA alpha")
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj", help="comma-separated LoRA targets")
    p.add_argument("--steps", type=int, default=4, help="H of the round")
    p.add_argument("--prompts", type=int, default=4, help="P")
    p.add_argument("--group", type=int, default=4, help="G")
    p.add_argument("--max-new-tokens", type=int, default=4, help="max_new_tokens")
    p.add_argument("--check-steps", type=int, default=2, help="steps the validator re-executes")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p.parse_args(argv)


def _round(
    config: Any, tokenizer: Any, env: Any, base: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    """One trainer's round and one validator's verification of it, timed in CPU seconds."""
    from trainer.config import InnerConfig, VerifyThresholds
    from trainer.diloco import decode_update, encode_update, global_checkpoint_bytes
    from trainer.inner import run_inner_loop
    from trainer.model import model_from_config
    from trainer.quality import check_quality
    from trainer.verify import SubmissionContext, decide, verify_submission

    inner = InnerConfig(
        steps=args.steps, num_prompts=args.prompts, group_size=args.group, max_new_tokens=args.max_new_tokens
    )
    ctx = SubmissionContext(task_id=1, round_=0, trainer="0x" + "33" * 20, inner=inner)
    states: dict[int, bytes] = {}
    t0 = time.process_time()
    result = run_inner_loop(
        model_from_config(config),
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
    trainer_s = time.process_time() - t0
    picked = sorted({(k * 7 + 3) % inner.steps for k in range(args.check_steps)})
    t0 = time.process_time()
    report = verify_submission(
        ctx=ctx,
        policy_config=config,
        tokenizer=tokenizer,
        env=env,
        base=base,
        rollouts=result.rollouts,
        sampled=list(range(len(result.rollouts))),
        picked_steps=picked,
        states=states,
        update=update,
    )
    gate = check_quality(config, tokenizer, env, base, decode_update(update), b"\x07" * 32)
    validator_s = time.process_time() - t0
    verdict = decide(report, VerifyThresholds())
    limit = VerifyThresholds().max_quality_drop
    trained = sum(v.numel() for v in result.delta.values())
    return {
        "trained_parameters": trained,
        "state_bytes": len(states[1]),
        "update_bytes": len(update),
        "checkpoint_bytes": len(global_checkpoint_bytes(base)),
        "trainer_s": trainer_s,
        "validator_s": validator_s,
        "verify_cost_ratio": validator_s / trainer_s,
        "verdict": verdict.decision if gate.drop <= limit else "REJECT (quality)",
        "reasons": list(verdict.reasons[:3]),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch

    from trainer.checkpoint import load_weights, model_weights
    from trainer.config import LoraConfig
    from trainer.envs import get_env
    from trainer.errors import TrustrlError
    from trainer.lora import adapt, with_lora
    from trainer.model import model_from_config
    from trainer.pretrained import (
        load_pretrained_files,
        make_offline_model,
        pretrained_weights,
        read_pretrained_files,
    )

    torch.set_num_threads(args.threads)
    env = get_env("addition", {"digits": 2})
    try:
        lora = LoraConfig(rank=args.rank, alpha=args.alpha, targets=tuple(args.targets.split(",")))
    except ValueError as exc:
        print(f"bad LoRA settings: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        directory = make_offline_model(
            Path(tmp) / "qwen2",
            env,
            arch="qwen2",
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=max(1, args.hidden // 64),
            num_kv_heads=max(1, args.hidden // 64),
            intermediate_size=args.intermediate,
            max_position_embeddings=64,
            seed=1,
        )
        plain, tokenizer = load_pretrained_files(read_pretrained_files(directory))
        weights = pretrained_weights(directory, plain)
    model = model_from_config(plain)
    load_weights(model, weights)
    params = sum(v.numel() for v in weights.values())
    try:
        adapt(model, lora)
    except TrustrlError as exc:
        print(f"LoRA does not fit this model: {exc}", file=sys.stderr)
        return 2
    adapted = model_weights(model)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():  # B off zero, as after some rounds (so that every adapter trains from step 0)
        for name, t in adapted.items():
            if ".lora_B." in name:
                t.copy_(0.02 * torch.randn(t.shape, generator=gen))
    rows = {
        "full": _round(plain, tokenizer, env, weights, args),
        "lora": _round(with_lora(copy.deepcopy(plain), lora), tokenizer, env, adapted, args),
    }
    result = {
        "model": f"Qwen2, hidden {args.hidden}, {args.layers} layers, MLP {args.intermediate}, vocab "
        f"{plain.vocab_size}: {params} parameters",
        "parameters": params,
        "lora": lora.model_dump(mode="json"),
        "round": {
            "steps": args.steps,
            "prompts": args.prompts,
            "group": args.group,
            "max_new_tokens": args.max_new_tokens,
            "check_steps": args.check_steps,
        },
        "threads": args.threads,
        "modes": rows,
        "state_bytes_ratio": rows["lora"]["state_bytes"] / rows["full"]["state_bytes"],
    }
    print(result["model"], f"; LoRA rank {lora.rank} on {', '.join(lora.targets)}")
    print(f"{'mode':6} {'trained':>10} {'state B':>11} {'update B':>11} {'ckpt B':>11} "
          f"{'trainer s':>10} {'valid. s':>9} {'ratio':>6} verdict")  # fmt: skip
    for name, r in rows.items():
        print(
            f"{name:6} {r['trained_parameters']:>10} {r['state_bytes']:>11} {r['update_bytes']:>11} "
            f"{r['checkpoint_bytes']:>11} {r['trainer_s']:>10.2f} {r['validator_s']:>9.2f} "
            f"{r['verify_cost_ratio']:>6.3f} {r['verdict']}"
        )
    print(f"state bytes, LoRA / full: {result['state_bytes_ratio']:.4f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, sort_keys=True))
    return 0 if all(r["verdict"] == "ACCEPT" for r in rows.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
