#!/usr/bin/env python
"""How far outside every tolerance each honeypot bait defect lies; prints a table, writes JSON.

    python scripts/bench_bait_margins.py --json out/bait-margins.json      (~5 min of CPU)
    python scripts/bench_bait_margins.py --quick                           (a smaller task)

A bait's defect must be rejected by every honest validator on any hardware (an honest validator that
accepted it would be slashed `lazySlashBps`: docs/protocol.md, "Laziness does not pay"). For each defect
of `protocol.baits.BAIT_DEFECTS` (the cheat library's `poison-update`, `every-step`, `every-rollout`) and an
honest trainer beside them, over `--seeds` trainers and rounds (other data each), the submission is
verified with every step re-executed and every rollout replayed (`protocol.verification.verify`, a spec
with sample_steps = H) at 1 and at 2 torch threads, and once by the `SEMI_LAZY` profile. Per defect the
statistic its check compares with a threshold, the worst case (closest to passing) over every step or
rollout, seed and thread count:

* poison: max |update - encode(base - theta_H)| against `max_update_abs` (0: byte equality);
* every-step: re-execution's max |W_o - W_c| / lr against `max_step_lr` (and ||W_o - W_c|| / ||step||
  against `max_step_rel`), the smallest over all H steps;
* every-rollout: the sampling replay's score gap against `max_sampling_gap`, the smallest over all
  rollouts, with how many of each rollout's tokens are not the sampler's pick, and TOPLOC's failures (0:
  only the sampling replay can see it).

The honest trainer's worst statistics stand beside them (how far below the thresholds honest work is),
and the process CPU time of one honest submission's check by the full and the semi-lazy profile.
Targets (exit 1 when one is missed): every defect REJECTed at both thread counts for every seed, with a
margin >= 50 over its threshold (poison: any difference); the honest trainer ACCEPTed; the SEMI_LAZY
profile REJECTs poison and ACCEPTs every-step and every-rollout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

DEFECT_STRATEGIES = {"poison": "poison", "every-step": "every-step", "every-rollout": "every-rollout"}
"""Each bait defect's strategy in the cheat library (`poison`: the node's, `_poisoned`)."""
MIN_MARGIN = 50.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3, help="trainers x rounds (other data each)")
    p.add_argument("--quick", action="store_true", help="H = 4, 4 x 4 rollouts")
    p.add_argument("--json", type=Path)
    return p.parse_args(argv)


def _task(quick: bool) -> tuple[Any, bytes]:
    """The demo's task (`protocol.demo.DEMO_TASK`) from its warm start, every step and rollout checked."""
    from eth_utils.address import to_checksum_address

    from protocol.artifacts import artifact_ref
    from protocol.demo import DEMO_TASK
    from protocol.roles.initiator import TaskFile, default_limits
    from protocol.verification import TaskContext
    from protocol.wire import EnvSpec, TaskSpec
    from trainer.checkpoint import model_weights
    from trainer.diloco import global_checkpoint_bytes
    from trainer.envs import get_env
    from trainer.warmstart import warm_start

    raw: dict[str, Any] = json.loads(json.dumps(DEMO_TASK))
    if quick:
        raw["inner"].update({"steps": 4, "num_prompts": 4, "group_size": 4})
    raw["sample_steps"] = raw["inner"]["steps"]
    task_file = TaskFile.model_validate(raw)
    env = get_env(task_file.env.name, task_file.env.params)
    assert task_file.initial.warmstart is not None
    base = global_checkpoint_bytes(
        model_weights(warm_start(env, task_file.model, task_file.initial.warmstart).model)
    )
    spec = TaskSpec(
        description=task_file.description,
        env=EnvSpec(**task_file.env.model_dump()),
        model=task_file.model,
        inner=task_file.inner,
        outer=task_file.outer,
        initial_checkpoint=artifact_ref(base),
        verify=task_file.verify,
        sample_rollouts=task_file.replayed_rollouts,
        sample_steps=task_file.sample_steps,
        limits=default_limits(task_file, base),
    )
    return TaskContext(31337, to_checksum_address("0x" + "5e" * 20), 1, spec), base


def _poisoned(arena: Any) -> Any:
    """The trainer node's `--cheat poison`: -4 x the honest update (`trainer.cheats.poisoned_update`, a
    seeded random direction where training moved nothing), honest rollouts and states."""
    from protocol.cheats import Work
    from protocol.roles.trainer import POISON_SCALE
    from trainer.cheats import poisoned_update
    from trainer.diloco import encode_update

    work = arena.honest()
    delta = poisoned_update(work.delta(arena.weights), POISON_SCALE, seed=arena.round)
    update = encode_update(delta, arena.task.spec.inner.compression)
    return arena.publish(Work(work.records, work.states, update))


def _stats(summary: dict[str, Any], reasons: list[str]) -> dict[str, float]:
    """The extremes of each statistic in a full report (smallest and largest), and how many reasons name
    TOPLOC."""
    steps, replays = summary.get("steps", []), summary.get("replays", [])
    toploc = [r for r in reasons if r.startswith(("toploc", "replay"))]
    return {
        "update_max_abs": float(summary["update"]["max_abs"]),
        "step_lr_min": min((s["max_abs_lr"] for s in steps), default=math.nan),
        "step_lr_max": max((s["max_abs_lr"] for s in steps), default=math.nan),
        "step_rel_min": min((s["rel_l2"] for s in steps), default=math.nan),
        "step_rel_max": max((s["rel_l2"] for s in steps), default=math.nan),
        "gap_min": min((r["max_gap"] for r in replays), default=math.nan),
        "gap_max": max((r["max_gap"] for r in replays), default=math.nan),
        "off_sample_tokens_min": min((r["gap_positions"] for r in replays), default=math.nan),
        "rollouts": len(replays),
        "toploc_failures": len(toploc),
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    import torch
    from eth_account import Account

    from protocol.artifacts import fetch_verified
    from protocol.cheats import STRATEGIES, Arena, MemoryStore
    from protocol.contracts import Verdict
    from protocol.verification import SEMI_LAZY, verify
    from trainer.diloco import load_global_checkpoint

    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), time.process_time()
    task, base = _task(args.quick)
    thresholds = task.spec.verify
    weights = load_global_checkpoint(base)[0]
    base_hash = hashlib.sha256(base).digest()
    rows: list[dict[str, Any]] = []
    for name, strategy in (("honest", "honest"), *DEFECT_STRATEGIES.items()):
        for i in range(args.seeds):
            account = Account.from_key(hashlib.sha256(f"bait margins {i}".encode()).digest())
            torch.set_num_threads(1)
            arena = Arena(task, base, 1 + i, account)
            sub = _poisoned(arena) if strategy == "poison" else STRATEGIES[strategy].build(arena)
            fetch = partial(fetch_verified, MemoryStore(sub.artifacts))
            seed = hashlib.sha256(f"bait margins seed {i}".encode()).digest()
            row: dict[str, Any] = {"defect": name, "seed": i}
            for threads in (1, 2):
                torch.set_num_threads(threads)
                t0 = time.process_time()
                checked = verify(fetch, task, sub.commitment, seed, base_hash, weights)
                row[f"full_cpu_s_{threads}"] = time.process_time() - t0
                assert checked.report is not None, checked.reasons
                row[f"threads_{threads}"] = {
                    "verdict": checked.verdict.name,
                    **_stats(checked.report, checked.reasons),
                }
            torch.set_num_threads(1)
            t0 = time.process_time()
            semi = verify(fetch, task, sub.commitment, seed, base_hash, weights, SEMI_LAZY)
            row["semi_lazy_cpu_s"] = time.process_time() - t0
            row["semi_lazy"] = semi.verdict.name
            rows.append(row)
            print(f"  {name:14s} seed {i}: {json.dumps(row, default=str)[:400]}", flush=True)

    def worst(defect: str, key: str, pick: Any) -> float:
        return pick(r[f"threads_{t}"][key] for r in rows if r["defect"] == defect for t in (1, 2))

    summary = {
        "poison": {
            "statistic": "max |update - (base - theta_H)|",
            "threshold": thresholds.max_update_abs,
            "worst": worst("poison", "update_max_abs", min),
        },
        "every-step": {
            "statistic": "re-execution max |W_o - W_c| / lr (smallest over every step)",
            "threshold": thresholds.max_step_lr,
            "worst": worst("every-step", "step_lr_min", min),
            "rel_l2_worst": worst("every-step", "step_rel_min", min),
            "rel_l2_threshold": thresholds.max_step_rel,
        },
        "every-rollout": {
            "statistic": "sampling replay's score gap (smallest over every rollout)",
            "threshold": thresholds.max_sampling_gap,
            "worst": worst("every-rollout", "gap_min", min),
            "off_sample_tokens_min": worst("every-rollout", "off_sample_tokens_min", min),
            "toploc_failures": worst("every-rollout", "toploc_failures", max),
        },
        "honest": {
            "update_max_abs": worst("honest", "update_max_abs", max),
            "step_lr_max": worst("honest", "step_lr_max", max),
            "step_rel_max": worst("honest", "step_rel_max", max),
            "gap_max": worst("honest", "gap_max", max),
        },
    }
    honest_rows = [r for r in rows if r["defect"] == "honest"]
    summary["cpu"] = {
        "full_s": sum(r["full_cpu_s_1"] for r in honest_rows) / len(honest_rows),
        "semi_lazy_s": sum(r["semi_lazy_cpu_s"] for r in honest_rows) / len(honest_rows),
    }
    for defect in DEFECT_STRATEGIES:
        s = summary[defect]
        s["margin"] = math.inf if s["threshold"] == 0 and s["worst"] > 0 else s["worst"] / s["threshold"]
    targets = {
        "every defect REJECTed at 1 and 2 threads, every seed": all(
            r[f"threads_{t}"]["verdict"] == Verdict.REJECT.name
            for r in rows
            if r["defect"] != "honest"
            for t in (1, 2)
        ),
        f"every defect's margin >= {MIN_MARGIN:g}": all(
            summary[d]["margin"] >= MIN_MARGIN for d in DEFECT_STRATEGIES
        ),
        "every-rollout fails the sampling replay only (TOPLOC passes)": summary["every-rollout"][
            "toploc_failures"
        ]
        == 0,
        "honest ACCEPTed at 1 and 2 threads": all(
            r[f"threads_{t}"]["verdict"] == Verdict.ACCEPT.name
            for r in rows
            if r["defect"] == "honest"
            for t in (1, 2)
        ),
        "semi-lazy: REJECTs poison, ACCEPTs every-step, every-rollout and honest": all(
            r["semi_lazy"] == (Verdict.REJECT.name if r["defect"] == "poison" else Verdict.ACCEPT.name)
            for r in rows
        ),
    }
    print(f"\n{'defect':14s} {'statistic':62s} {'worst':>10s} {'threshold':>10s} {'margin':>10s}")
    for defect in DEFECT_STRATEGIES:
        s = summary[defect]
        print(
            f"{defect:14s} {s['statistic']:62s} {s['worst']:10.4g} {s['threshold']:10.4g} {s['margin']:10.4g}"
        )
    print(f"honest worst: {json.dumps(summary['honest'])}")
    cost = summary["cpu"]
    print(
        f"CPU per honest submission, 1 thread (process time): full {cost['full_s']:.2f} s, semi-lazy "
        f"{cost['semi_lazy_s']:.2f} s (saves {1 - cost['semi_lazy_s'] / cost['full_s']:.0%})"
    )
    for what, ok in targets.items():
        print(f"{'OK  ' if ok else 'MISS'} {what}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "command": " ".join(["python scripts/bench_bait_margins.py", *(argv or sys.argv[1:])]),
                    "task": {"H": task.spec.inner.steps, "rollouts": task.spec.sample_rollouts},
                    "summary": summary,
                    "rows": rows,
                    "targets": targets,
                    "wall_s": time.perf_counter() - started,
                    "cpu_s": time.process_time() - cpu,
                },
                indent=2,
                default=str,
            )
        )
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
