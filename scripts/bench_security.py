#!/usr/bin/env python
"""Run the project's cheat library (`protocol.cheats`) against the real checks; prints a table, writes JSON.

    python scripts/bench_security.py --json out/security.json        (~10 min of CPU on 1 thread)
    python scripts/bench_security.py --quick                          (a smaller task, 5 strategies: ~1 min)

The task is the demo's (`protocol.demo.DEMO_TASK`: 2-digit addition, the 0.08M-parameter policy, H = 8,
P x G = 8 x 8, every rollout replayed, 4 of 8 steps re-executed, the quality gate, clipped aggregation),
from its warm start. Three honest trainers and one attacker per strategy. For each strategy:

* detection: its submission goes once through `protocol.verification.verify` with every step picked (the
  full report); the reasons that name a step are that step's, the quality gate is evaluated for every seed
  (its problems depend on the seed), everything else fails whatever the seed. Over `--seeds` round seeds
  the real picks (`protocol.wire.picked_steps`) then say whether the submission is caught; the closed form
  (`protocol.deterrence`) stands beside it, and `--cross-check` seeds per strategy are verified for real
  (the real spec and seed) and must agree with that prediction;
* profit per round: E = P(pass) x pay - P(caught) x slash, pay = the trainer pool / 4 trainers (equal
  work units), slash = the task's; under the demo's terms and examples/task.yaml's (closed form for its
  H = 32, s = 8, with the gate's measured rate);
* damage (points of held-out accuracy, `--heldout` problems, greedy), for every strategy that ever passes: the
  attacker submits it in every one of `--rounds` rounds and is accepted every time (the worst case), the
  model follows; per round, accuracy of the aggregate without it minus with it: `damage_points` is the mean
  over the rounds (what the attack costs per round), `damage_worst_round_points` the worst round, and
  `damage_cumulative_points` the honest-only trajectory's final accuracy minus the attacked one's. The
  honest row measures the same for a fourth honest trainer: how much two honest aggregates differ by chance
  (about 2 points at these sizes). For the strategies that never pass, `damage_if_accepted`: one round as
  if a validator cartel had accepted it.

Validators and keepers (`protocol.incentives`, closed form over the contracts' payment rules, each rule
exercised by a network test): lazy, copy-vote, wrong-vote, no-vote, non-revealing, a colluding majority, an
early finaliser and a seat squatter, with their expected profit per round under both terms (the lazy ones
under the demo's committees too, and with committees of 4 in a large pool, terms `trustrl task create`
refuses: `refused`); the lazy validator's profit for committee sizes and weight shares as the JSON's
`lazy_committees` list; the cartel arithmetic (`protocol.collusion`) as the JSON's `collusion` list, and
the appeals' (`appeals`: for K_a draws, the chance a cartel with 1/3 of the stake decides an appeal and the
stake it needs for 1e-6).

Targets (exit 1 when one is missed): every cheat's expected profit < 0 and damage <= 2 points; honest
trainers 0 false rejections and a positive profit; every cross-check agrees; honest validators a positive
profit and every dishonest validator/keeper strategy a loss (0 tokens with gas paid counts), except those
the design does not answer yet (`OPEN`: printed, and listed in the JSON's `open`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

SEMI_LAZY_ROW = "semi-lazy validator"
PARTIAL_ROW = "validator skipping one expensive check"

OPEN = {
    "colluding majority (each of 2 of 3)": (
        "a deployment without an AppealCourt: a two-thirds majority is paid (with one: the appealed row)"
    ),
}
"""Validator strategies the design does not answer yet, per the terms they are measured under: printed and
written (`open`), left out of the exit status. examples/task.yaml plants no honeypots, so laziness is paid
there: a honeypot's bait forfeits a trainer's whole stake (600, up to 1,200) per honeypot, and deterring
laziness under its terms needs h > share / (share + L) = 5 / 15, i.e. more than 200 tokens a round, twice
the round's reward (docs/protocol.md, "What a honeypot costs the initiator")."""
OPEN_TASK_YAML = {
    **OPEN,
    "lazy validator": "examples/task.yaml plants no honeypots (rate 0)",
    "bait-aware lazy validator": "examples/task.yaml plants no honeypots (rate 0)",
    "lazy validator, committees of 4 in a large pool": "examples/task.yaml plants no honeypots (rate 0)",
    SEMI_LAZY_ROW: "examples/task.yaml plants no honeypots (rate 0)",
    PARTIAL_ROW: "examples/task.yaml plants no honeypots (rate 0)",
}

QUICK = ("honest", "nan-state", "poisoned-step", "fabricated-rollouts", "gate-tuned-reverse")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--seeds", type=int, default=128, help="round seeds per strategy (>= 100 for the record)")
    p.add_argument("--cross-check", type=int, default=3, help="seeds per strategy verified for real")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the damage measurement")
    p.add_argument("--heldout", type=int, default=2000, help="held-out problems (noise ~1 point at 500)")
    p.add_argument("--only", nargs="*", help="only these strategies (names in protocol.cheats.STRATEGIES)")
    p.add_argument(
        "--quick", action="store_true", help="H = 4, P x G = 4 x 4, 5 strategies, 12 seeds, 1 round"
    )
    return p.parse_args(argv)


@dataclass
class Setup:
    task: Any  # TaskContext
    task_file: Any  # TaskFile
    base: bytes
    accounts: list[Any]
    attacker: Any
    heldout: list[Any]
    seeds: list[bytes]
    scores: dict[tuple[bytes, bytes], float] = field(default_factory=dict)


def _setup(args: argparse.Namespace) -> Setup:
    from eth_account import Account
    from eth_utils.address import to_checksum_address

    from protocol.demo import DEMO_TASK
    from protocol.roles.initiator import TaskFile, default_limits
    from protocol.verification import TaskContext
    from protocol.wire import EnvSpec, TaskSpec
    from trainer.checkpoint import model_weights
    from trainer.derive import HELDOUT_DOMAIN
    from trainer.diloco import global_checkpoint_bytes
    from trainer.envs import get_env
    from trainer.warmstart import problems, warm_start

    raw: dict[str, Any] = json.loads(json.dumps(DEMO_TASK))
    if args.quick:
        raw["inner"].update({"steps": 4, "num_prompts": 4, "group_size": 4})
        raw["sample_steps"] = 2
    task_file = TaskFile.model_validate(raw)
    env = get_env(task_file.env.name, task_file.env.params)
    assert task_file.initial.warmstart is not None
    ws = warm_start(env, task_file.model, task_file.initial.warmstart)
    base = global_checkpoint_bytes(model_weights(ws.model))
    from protocol.artifacts import artifact_ref

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
        heldout_size=args.heldout,
    )
    task = TaskContext(31337, to_checksum_address("0x" + "5e" * 20), 1, spec)
    accounts = [Account.from_key(hashlib.sha256(f"bench honest {i}".encode()).digest()) for i in range(3)]
    attacker = Account.from_key(hashlib.sha256(b"bench attacker").digest())
    seeds = [hashlib.sha256(f"bench round seed {i}".encode()).digest() for i in range(args.seeds)]
    heldout = problems(env, HELDOUT_DOMAIN, args.heldout)
    return Setup(task, task_file, base, accounts, attacker, heldout, seeds)


# --------------------------------------------------------------------------------------------- detection


@dataclass
class Detection:
    always: list[str]
    """Reasons that fail whatever the seed picks (or 'UNAVAILABLE: ...')."""
    steps: dict[int, list[str]]
    """Step -> the reasons its re-execution gives."""
    caught: list[bool]
    """Per seed."""
    gate_caught: int
    cross_checked: int
    mismatches: list[str]
    update: bytes | None


def _fetch(artifacts: dict[str, bytes]) -> Any:
    from protocol.artifacts import fetch_verified
    from protocol.cheats import MemoryStore

    return partial(fetch_verified, MemoryStore(artifacts))


def _update_bytes(setup: Setup, artifacts: dict[str, bytes], commitment: Any) -> bytes | None:
    from protocol.wire import UpdateManifest

    try:
        manifest = UpdateManifest.model_validate_json(artifacts[commitment.update_cid])
        return artifacts.get(manifest.update.cid)
    except (KeyError, ValueError):
        return None


def _step_of(reason: str) -> int | None:
    head = reason.split(":", 1)[0]
    if head.startswith("step ") and head[5:].isdigit():
        return int(head[5:])
    return None


def _detect(setup: Setup, sub: Any, cross_check: int) -> Detection:
    """See the module docstring: one full report, then the seeds' picks and gates, then real cross-checks."""
    from protocol.artifacts import ArtifactUnavailableError
    from protocol.contracts import Verdict
    from protocol.verification import TaskContext, quality_gate, verify
    from protocol.wire import picked_steps
    from trainer.diloco import load_global_checkpoint

    task, spec = setup.task, setup.task.spec
    H, s = spec.inner.steps, spec.sample_steps
    base_hash = hashlib.sha256(setup.base).digest()
    weights = load_global_checkpoint(setup.base)[0]
    fetch = _fetch(sub.artifacts)
    full = TaskContext(task.chain_id, task.escrow, task.task_id, spec.model_copy(update={"sample_steps": H}))
    full.base_scores = task.base_scores
    always: list[str] = []
    steps: dict[int, list[str]] = {}
    try:
        checked = verify(fetch, full, sub.commitment, setup.seeds[0], base_hash, weights)
        for reason in checked.reasons:
            j = _step_of(reason)
            if j is not None:
                steps.setdefault(j, []).append(reason)
            elif not reason.startswith("quality:"):
                always.append(reason)
    except ArtifactUnavailableError as exc:
        always.append(f"UNAVAILABLE: {exc}")
    update = _update_bytes(setup, sub.artifacts, sub.commitment)
    caught: list[bool] = []
    gate_caught = 0
    for seed in setup.seeds:
        if always:
            caught.append(True)
            continue
        picks = set(picked_steps(seed, sub.commitment.trainer, s, H))
        gate = quality_gate(task, seed, base_hash, weights, update) if update is not None else None
        gate_fails = gate is not None and not gate.drop <= spec.verify.max_quality_drop
        gate_caught += gate_fails
        caught.append(bool(picks & set(steps)) or gate_fails)
    mismatches = []
    for i, seed in enumerate(setup.seeds[:cross_check]):
        try:
            real = verify(fetch, task, sub.commitment, seed, base_hash, weights).verdict != Verdict.ACCEPT
        except ArtifactUnavailableError:
            real = True
        if real != caught[i]:
            mismatches.append(
                f"seed {i}: verify says {'caught' if real else 'passed'}, the composition the opposite"
            )
    return Detection(
        always, steps, caught, gate_caught, min(cross_check, len(setup.seeds)), mismatches, update
    )


# --------------------------------------------------------------------------------------------- damage


def _accuracy(setup: Setup, checkpoint: bytes) -> float:
    from trainer.checkpoint import load_weights
    from trainer.diloco import load_global_checkpoint
    from trainer.model import model_from_config
    from trainer.rollout import evaluate_accuracy

    model = model_from_config(setup.task.hf)
    load_weights(model, load_global_checkpoint(checkpoint)[0])
    return evaluate_accuracy(model, setup.task.tokenizer, setup.task.env, setup.heldout)


def _honest_round(setup: Setup, base: bytes, round_: int) -> list[tuple[Any, Any, Any]]:
    """(account, Submission, Arena) of the three honest trainers."""
    from protocol.cheats import Arena

    out = []
    for i, account in enumerate(setup.accounts):
        arena = Arena(setup.task, base, round_, account)
        sub = arena.publish(arena.honest(), index=i)
        out.append((account, sub, arena))
    return out


def _aggregate(setup: Setup, base: bytes, subs: list[Any]) -> bytes:
    from protocol.verification import aggregate_accepted

    artifacts: dict[str, bytes] = {}
    for sub in subs:
        artifacts.update(sub.artifacts)
    return aggregate_accepted(
        _fetch(artifacts), setup.task.spec, base, [s.commitment for s in subs]
    ).checkpoint


def _attacker_arena(setup: Setup, base: bytes, round_: int, honest: list[Any], previous: Any = None) -> Any:
    from protocol.cheats import Arena

    return Arena(
        setup.task, base, round_, setup.attacker, [(a.address, ar.honest()) for a, _, ar in honest], previous
    )


def _damage(setup: Setup, strategy: Any, rounds: int, honest_curve: list[float]) -> dict[str, Any]:
    """The attacked trajectory: the strategy accepted in every round; see the module docstring."""
    import dataclasses

    base = setup.base
    per_round = []
    for r in range(rounds):
        honest = _honest_round(setup, base, r + 1)
        arena = _attacker_arena(setup, base, r + 1, honest)
        attack = strategy.build(arena)
        attack = dataclasses.replace(attack, commitment=dataclasses.replace(attack.commitment, index=3))
        subs = [s for _, s, _ in honest]
        without = _aggregate(setup, base, subs)
        with_it = _aggregate(setup, base, [*subs, attack])
        a_without, a_with = _accuracy(setup, without), _accuracy(setup, with_it)
        per_round.append({"round": r + 1, "without": a_without, "with": a_with, "damage": a_without - a_with})
        base = with_it
    final = per_round[-1]["with"] if per_round else honest_curve[0]
    cumulative = honest_curve[rounds] - final
    mean = sum(p["damage"] for p in per_round) / max(1, len(per_round))
    return {
        "per_round": per_round,
        "damage_points": round(100 * mean, 6),
        "damage_worst_round_points": round(100 * max(p["damage"] for p in per_round), 6),
        "damage_cumulative_points": round(100 * cumulative, 6),
    }


def _honest_curve(setup: Setup, rounds: int) -> list[float]:
    base = setup.base
    curve = [_accuracy(setup, base)]
    for r in range(rounds):
        honest = _honest_round(setup, base, r + 1)
        base = _aggregate(setup, base, [s for _, s, _ in honest])
        curve.append(_accuracy(setup, base))
    return curve


def _damage_if_accepted(setup: Setup, sub: Any, honest: list[Any], honest_acc: float) -> float | None:
    """One round with the submission accepted next to the honest three (what a cartel would do)."""
    import dataclasses

    attack = dataclasses.replace(sub, commitment=dataclasses.replace(sub.commitment, index=3, round=1))
    try:
        with_it = _aggregate(setup, setup.base, [*(s for _, s, _ in honest), attack])
    except Exception as exc:
        print(f"  (not aggregable: {type(exc).__name__})")
        return None
    return round(100 * (honest_acc - _accuracy(setup, with_it)), 6)


# --------------------------------------------------------------------------------------------- main


def _terms(setup: Setup, steps: int, sample_steps: int, min_stake: float, slash_bps: int) -> dict[str, Any]:
    chain = setup.task_file.chain
    pool = float(chain.reward_per_round) * (10_000 - chain.validator_share_bps) / 10_000
    return {
        "H": steps,
        "s": sample_steps,
        "slash": min_stake * slash_bps / 10_000,
        "pay": pool / 4,
        "pool": pool,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.quick:
        args.seeds, args.rounds, args.cross_check = min(args.seeds, 12), 1, min(args.cross_check, 2)
        args.heldout = min(args.heldout, 200)
    import torch

    from protocol.cheats import ALL_STEPS, STRATEGIES
    from protocol.collusion import appeal_rows
    from protocol.deterrence import catch_probability, expected_profit
    from protocol.roles.initiator import load_task_file

    torch.set_num_threads(1)
    started, cpu = time.perf_counter(), time.process_time()
    setup = _setup(args)
    spec = setup.task.spec
    chain = setup.task_file.chain
    demo = _terms(
        setup, spec.inner.steps, spec.sample_steps, float(chain.min_trainer_stake), chain.trainer_slash_bps
    )
    example = load_task_file(Path(__file__).resolve().parents[1] / "examples" / "task.yaml")
    yaml_terms = _terms(
        setup,
        example.inner.steps,
        example.sample_steps,
        float(example.chain.min_trainer_stake),
        example.chain.trainer_slash_bps,
    )
    names = args.only or (list(QUICK) if args.quick else list(STRATEGIES))
    print(
        f"task: H={spec.inner.steps}, s={spec.sample_steps}, {spec.sample_rollouts} rollouts replayed, "
        f"gate {spec.verify.max_quality_drop}, clip {spec.outer.clip}; {len(setup.seeds)} seeds"
    )

    honest_round = _honest_round(setup, setup.base, 1)
    from protocol.cheats import Arena

    earlier = Arena(setup.task, setup.base, 0, setup.attacker)
    previous = earlier.publish(earlier.honest())
    honest_curve = _honest_curve(setup, args.rounds)
    print(f"honest trajectory: held-out accuracy {', '.join(f'{a:.3f}' for a in honest_curve)}")
    honest_acc_1 = honest_curve[1]

    cheats: list[dict[str, Any]] = []
    honest_rows: list[dict[str, Any]] = []
    mismatches: list[str] = []
    for name in names:
        strategy = STRATEGIES[name]
        t0 = time.process_time()
        arena = _attacker_arena(setup, setup.base, 1, honest_round, previous)
        sub = strategy.build(arena)
        det = _detect(setup, sub, args.cross_check)
        mismatches += [f"{name}: {m}" for m in det.mismatches]
        p = sum(det.caught) / len(det.caught)
        k = strategy.altered_steps
        closed = 0.0 if strategy.honest else 1.0
        if k:
            closed = float(catch_probability(demo["H"], demo["s"], demo["H"] if k == ALL_STEPS else k))
        gate_rate = det.gate_caught / len(setup.seeds)
        if det.always:
            p_yaml = 1.0
        elif strategy.honest:
            p_yaml = p
        else:
            altered = yaml_terms["H"] if k == ALL_STEPS else max(k, 1)
            step_p = float(catch_probability(yaml_terms["H"], yaml_terms["s"], altered))
            p_yaml = 1 - (1 - step_p) * (1 - gate_rate)
        row: dict[str, Any] = {
            "name": name,
            "role": strategy.role,
            "description": strategy.description,
            "caught_by": strategy.caught_by,
            "detection_probability": p,
            "closed_form": closed,
            "closed_form_note": "s/H for one altered step; the quality gate may add to it" if k else "",
            "gate_caught_fraction": gate_rate,
            "detection_probability_task_yaml": p_yaml,
            "expected_profit": expected_profit(p, demo["pay"], demo["slash"]),
            "expected_profit_task_yaml": expected_profit(p_yaml, yaml_terms["pay"], yaml_terms["slash"]),
            "reasons": (det.always or [r for rs in det.steps.values() for r in rs])[:3],
            "failing_steps": sorted(det.steps),
            "seeds": len(det.caught),
            "cross_checked": det.cross_checked,
            "notes": sub.notes,
        }
        if strategy.honest or p < 1:
            row.update(_damage(setup, strategy, args.rounds, honest_curve))
        else:
            row["damage_points"] = 0.0
            row["damage_if_accepted"] = _damage_if_accepted(setup, sub, honest_round, honest_acc_1)
        row["cpu_s"] = time.process_time() - t0
        if strategy.honest:
            row["false_rejections"] = sum(det.caught)
            honest_rows.append(row)
        else:
            cheats.append(row)
        print(
            f"  {name:28s} P(caught) {p:.3f} (closed {closed:.3f}, task.yaml {p_yaml:.3f}) "
            f"E demo {row['expected_profit']:8.2f} damage {row['damage_points']:6.2f} ({row['cpu_s']:.0f} s)"
        )
    for i, (_, sub, _) in enumerate(honest_round):
        det = _detect(setup, sub, args.cross_check)
        mismatches += [f"honest-{i}: {m}" for m in det.mismatches]
        fr = sum(det.caught)
        honest_rows.append(
            {
                "name": f"honest trainer {i + 1}",
                "role": "trainer",
                "false_rejections": fr,
                "seeds": len(det.caught),
                "expected_profit": expected_profit(fr / len(det.caught), demo["pay"], demo["slash"]),
                "expected_profit_task_yaml": expected_profit(
                    fr / len(det.caught), yaml_terms["pay"], yaml_terms["slash"]
                ),
                "reasons": (det.always or [r for rs in det.steps.values() for r in rs])[:3],
            }
        )

    targets = {
        "every cheat's expected profit < 0 (demo terms)": all(c["expected_profit"] < 0 for c in cheats),
        "every cheat's expected profit < 0 (examples/task.yaml terms)": all(
            c["expected_profit_task_yaml"] < 0 for c in cheats
        ),
        "every cheat's damage <= 2 points": all(c["damage_points"] <= 2 for c in cheats),
        "honest trainers: 0 false rejections": all(h["false_rejections"] == 0 for h in honest_rows),
        "honest trainers: expected profit > 0": all(h["expected_profit"] > 0 for h in honest_rows),
        "every cross-check agrees with the composition": not mismatches,
    }
    validator_rows, collusion, validator_terms = _validators_and_keepers(setup.task_file, example)
    lazy_committees = _lazy_under_committees(setup.task_file)
    targets.update(
        {
            "honest validators: expected profit > 0 (both terms)": all(
                r["expected_profit"] > 0 and r["expected_profit_task_yaml"] > 0
                for r in validator_rows
                if r["honest"]
            ),
            "validators/keepers: every answered dishonest strategy loses money (demo terms)": all(
                r["deterred"] for r in validator_rows if r["name"] not in OPEN
            ),
            "validators/keepers: every answered dishonest strategy loses money (task.yaml terms)": all(
                r["deterred_task_yaml"] for r in validator_rows if r["name"] not in OPEN_TASK_YAML
            ),
        }
    )
    still_open = [
        f"{r['name']} ({terms}): E = {r[key]:.2f} per round; {why[r['name']]}"
        for r in validator_rows
        for terms, key, flag, why in (
            ("demo", "expected_profit", "deterred", OPEN),
            ("examples/task.yaml", "expected_profit_task_yaml", "deterred_task_yaml", OPEN_TASK_YAML),
        )
        if not r[flag] and r["name"] in why
    ]
    _print_table(cheats, honest_rows, demo, yaml_terms)
    _print_validator_table(validator_rows, collusion)
    _print_lazy_committees(lazy_committees)
    for what, ok in targets.items():
        print(f"{'OK  ' if ok else 'MISS'} {what}")
    for m in mismatches:
        print(f"     {m}")
    for line in still_open:
        print(f"OPEN {line}")
    results = {
        "command": " ".join(["python scripts/bench_security.py", *(argv or sys.argv[1:])]),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": 1,
            "torch": torch.__version__,
        },
        "task": {
            "H": spec.inner.steps,
            "sample_steps": spec.sample_steps,
            "rollouts": spec.sample_rollouts,
            "max_quality_drop": spec.verify.max_quality_drop,
            "clip": spec.outer.clip,
            "heldout": len(setup.heldout),
            "rounds": args.rounds,
            "seeds": len(setup.seeds),
        },
        "terms": {"demo": demo, "task_yaml": yaml_terms, "validators": validator_terms},
        "honest_accuracy": honest_curve,
        "cheats": cheats + [r for r in validator_rows if not r["honest"]],
        "honest": honest_rows + [r for r in validator_rows if r["honest"]],
        "collusion": collusion,
        "appeals": appeal_rows(),
        "lazy_committees": lazy_committees,
        "open": still_open,
        "targets": targets,
        "mismatches": mismatches,
        "wall_s": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0 if all(targets.values()) else 1


def _validators_and_keepers(
    task_file: Any, example: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """The validator and keeper strategies' expected profit per round (`protocol.incentives`) under the
    demo's terms (its validators and lazy validator, honeypot rate `HONEYPOT_RATE`, its committees: k =
    `COMMITTEE_DRAWS` over the weights `VALIDATOR_WEIGHT` x 3 and the lazy validator's 1, 5 submissions) and
    examples/task.yaml's (4 validators; its committee_draws and the honeypot rate the file sets: none), and
    the cartel arithmetic (`protocol.collusion`)."""
    from protocol.collusion import collusion_rows
    from protocol.contracts import DEFAULT_LAZY_SLASH_BPS
    from protocol.demo import HONEST_TRAINERS, HONEYPOT_RATE, VALIDATOR_WEIGHT, VALIDATORS
    from protocol.incentives import RoundTerms, validator_and_keeper_rows

    def terms(task: Any, validators: int, rate: float, lazy_share: float, submissions: int) -> RoundTerms:
        c = task.chain
        return RoundTerms(
            reward_per_round=float(c.reward_per_round), validator_share_bps=c.validator_share_bps,
            validators=validators, trainers=4, min_validator_stake=float(c.min_validator_stake),
            validator_slash_bps=c.validator_slash_bps, min_trainer_stake=float(c.min_trainer_stake),
            no_show_slash_bps=c.no_show_slash_bps, max_no_shows=c.max_no_shows, honeypot_rate=rate,
            lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, committee_draws=c.committee_draws,
            lazy_share=lazy_share, submissions=submissions, num_rounds=c.num_rounds,
        )  # fmt: skip

    demo_share = 1 / (VALIDATORS * VALIDATOR_WEIGHT + 1)
    demo_terms = terms(task_file, VALIDATORS + 1, HONEYPOT_RATE, demo_share, HONEST_TRAINERS + 2)
    yaml_terms = terms(example, 4, example.honeypots.rate, 0.0, 4)
    rows = validator_and_keeper_rows(demo_terms)
    for row, other in zip(rows, validator_and_keeper_rows(yaml_terms), strict=True):
        row["expected_profit_task_yaml"] = other["expected_profit"]
        row["deterred_task_yaml"] = other["deterred"]
        row["refused_task_yaml"] = other["refused"]
    at = next(i for i, r in enumerate(rows) if r["name"] == "lazy validator") + 1
    rows[at:at] = _partial_checker_rows(demo_terms, yaml_terms)
    return rows, collusion_rows(), {"demo": vars(demo_terms), "task_yaml": vars(yaml_terms)}


def _partial_checker_rows(demo: Any, yaml: Any) -> list[dict[str, Any]]:
    """The validators that skip some expensive checks (`protocol.baits.ROTATION`: a honeypot's defect is one
    of them, uniformly): the semi-lazy validator (`trustrl validate --semi-lazy`) skips every one and is
    caught on every honeypot, one that skips one class (replay or re-execution) on 1 / len(ROTATION) of
    them. Each is the lazy validator of the lazy row under the honeypot rate h x caught, per round and over
    the whole task (`protocol.deterrence.lazy_task_profit`, the slashes compounding, at its share); it is
    deterred when both are negative, or when `trustrl task create` refuses the terms for it
    (`protocol.deterrence.laziness_refusal` with catch = caught: `refused`; task creation checks the one
    skipping one class, `protocol.roles.initiator.honeypot_refusal`)."""
    from protocol.baits import ROTATION

    one = 1 / len(ROTATION)
    return [
        _partial_checker_row(
            demo, yaml, SEMI_LAZY_ROW, 1.0,
            "runs only the cheap checks (tensor rules, prompts, rewards, proof counts, theta_0, the update "
            "equation) and skips TOPLOC and sampling replay, re-execution and the quality gate: accepts "
            "every rotated honeypot (every-step, every-rollout)",
        ),
        _partial_checker_row(
            demo, yaml, PARTIAL_ROW, one,
            "runs every check but one expensive class (the sampling replay, 56% of the CPU, or the "
            "re-execution of the picked steps, 27%): accepts the honeypots whose defect that class sees",
        ),
    ]  # fmt: skip


def _partial_checker_row(demo: Any, yaml: Any, name: str, caught: float, description: str) -> dict[str, Any]:
    """One row of `_partial_checker_rows`: caught on a share `caught` of the honeypots."""
    from dataclasses import replace

    from protocol.baits import ROTATION
    from protocol.deterrence import laziness_refusal, lazy_task_profit

    def task_profit(t: Any) -> float:
        return lazy_task_profit(
            cut=t.cut, share=t.lazy_share or 1 / t.validators, draws=t.committee_draws,
            submissions=t.submissions or t.trainers, honeypot_rate=t.honeypot_rate,
            allocation=t.min_validator_stake, lazy_slash_bps=t.lazy_slash_bps, num_rounds=t.num_rounds,
        )  # fmt: skip

    def refusal(t: Any) -> str:
        return laziness_refusal(
            cut=t.cut, draws=t.committee_draws, honeypot_rate=t.honeypot_rate,
            min_validator_stake=t.min_validator_stake, lazy_slash_bps=t.lazy_slash_bps,
            submissions=t.submissions or t.trainers, num_rounds=t.num_rounds, catch=caught,
        )  # fmt: skip

    semi = [replace(t, honeypot_rate=t.honeypot_rate * caught) for t in (demo, yaml)]
    profit, profit_yaml = (t.lazy for t in semi)
    refused, refused_yaml = refusal(demo), refusal(yaml)
    return {
        "name": name,
        "role": "validator",
        "description": description,
        "expected_profit": profit,
        "expected_profit_task_yaml": profit_yaml,
        "expected_task_profit": task_profit(semi[0]),
        "expected_task_profit_task_yaml": task_profit(semi[1]),
        "p_caught_per_honeypot": caught,
        "transactions": 4,
        "answered_by": f"rotated bait defects (protocol.baits.ROTATION: {', '.join(ROTATION)}), so it is "
        f"caught at rate h x {caught:.3g}",
        "honest": False,
        "deterred": (profit < 0 and task_profit(semi[0]) < 0) or bool(refused),
        "deterred_task_yaml": (profit_yaml < 0 and task_profit(semi[1]) < 0) or bool(refused_yaml),
        "refused": refused,
        "refused_task_yaml": refused_yaml,
    }


def _lazy_under_committees(task_file: Any) -> list[dict[str, Any]]:
    """The expected profit per round of a lazy validator allocating the minimum, under the demo's terms
    (rate `HONEYPOT_RATE`, lazy slash 20% of the minimum validator stake, 5 submissions) for committees of k
    draws and its weight shares s: where laziness pays, and whether `trustrl task create` refuses those
    terms (`protocol.deterrence.laziness_refusal` for the validator skipping one expensive check class, as
    `protocol.roles.initiator.honeypot_refusal` checks)."""
    from protocol.baits import ROTATION
    from protocol.contracts import DEFAULT_LAZY_SLASH_BPS
    from protocol.demo import HONEST_TRAINERS, HONEYPOT_RATE
    from protocol.deterrence import BPS, laziness_refusal, lazy_catch_probability, lazy_profit

    c = task_file.chain
    cut = float(c.reward_per_round) * c.validator_share_bps / BPS
    slash = float(c.min_validator_stake) * DEFAULT_LAZY_SLASH_BPS / BPS
    out = []
    for k in (3, 4, 12, 16, 32, 63):
        refusal = laziness_refusal(
            cut=cut, draws=k, honeypot_rate=HONEYPOT_RATE, min_validator_stake=float(c.min_validator_stake),
            lazy_slash_bps=DEFAULT_LAZY_SLASH_BPS, submissions=HONEST_TRAINERS + 2, num_rounds=c.num_rounds,
            catch=1 / len(ROTATION),
        )  # fmt: skip
        for share in (0.01, 0.05, 1 / 7, 0.25):
            out.append(
                {
                    "committee": k,
                    "lazy_share": share,
                    "p_caught": lazy_catch_probability(k, share),
                    "expected_profit": lazy_profit(
                        cut=cut,
                        share=share,
                        draws=k,
                        submissions=HONEST_TRAINERS + 2,
                        honeypot_rate=HONEYPOT_RATE,
                        lazy_slash=slash,
                    ),
                    "refused": bool(refusal),
                }
            )
    return out


def _print_lazy_committees(rows: list[dict[str, Any]]) -> None:
    print(
        "\nlazy validator under committees, the demo's terms: expected profit per round (P caught); task "
        "create checks the validator skipping one expensive check class (rate h / 2)"
    )
    shares = sorted({r["lazy_share"] for r in rows})
    print(f"{'k':>3s} " + " ".join(f"{'s = ' + format(s, '.3g'):>18s}" for s in shares) + "  task create")
    for k in sorted({r["committee"] for r in rows}):
        cells = {r["lazy_share"]: r for r in rows if r["committee"] == k}
        line = " ".join(
            f"{cells[s]['expected_profit']:8.2f} ({cells[s]['p_caught']:.3f})".rjust(18) for s in shares
        )
        refused = next(iter(cells.values()))["refused"]
        print(f"{k:3d} {line}  {'refuses' if refused else 'accepts'}")


def _print_validator_table(rows: list[dict[str, Any]], collusion: list[dict[str, Any]]) -> None:
    from protocol.collusion import appeal_rows

    print("\nvalidators and keepers: expected profit per round (tokens; 0 = nothing earned, gas paid)")
    head = f"{'strategy':48s} {'role':9s} {'E demo':>8s} {'E yaml':>8s}  answered by"
    print(head)
    print("-" * len(head))
    for r in rows:
        refused = " (these terms are refused at task creation)" if r["refused"] else ""
        print(
            f"{r['name']:48s} {r['role']:9s} {r['expected_profit']:8.2f} "
            f"{r['expected_profit_task_yaml']:8.2f}  {r['answered_by']}{refused}"
        )
    print("\ncollusion: P(a cartel with 1/3 of the stake decides a submission alone)")
    for c in collusion:
        print(f"  pool {c['pool']:3d} committee {c['committee']:3d}: {c['p_decides']:.2e}  ({c['draw']})")
    print("appeals: P(a cartel with 1/3 of the stake decides an appeal of K_a draws)")
    for a in appeal_rows():
        print(
            f"  appeal of {a['appeal_draws']:4d} draws: {a['p_captures_appeal']:.2e}  (stake needed for P > "
            f"1e-6: {a['stake_needed_1e-6']:.1%})"
        )


def _print_table(cheats: list[dict], honest: list[dict], demo: dict, yaml_terms: dict) -> None:
    print(
        f"\npay per round {demo['pay']:.0f} tokens (pool {demo['pool']:.0f} / 4 trainers); slash: demo "
        f"{demo['slash']:.0f}, examples/task.yaml {yaml_terms['slash']:.0f}"
    )
    head = (
        f"{'strategy':28s} {'role':8s} {'P(caught)':>9s} {'closed':>7s} {'P yaml':>7s} {'E demo':>8s} "
        f"{'E yaml':>8s} {'damage':>7s} {'worst':>6s}  caught by"
    )
    print(head)
    print("-" * len(head))
    for c in cheats:
        print(
            f"{c['name']:28s} {c['role']:8s} {c['detection_probability']:9.3f} {c['closed_form']:7.3f} "
            f"{c['detection_probability_task_yaml']:7.3f} {c['expected_profit']:8.2f} "
            f"{c['expected_profit_task_yaml']:8.2f} {c['damage_points']:7.2f} "
            f"{c.get('damage_worst_round_points', 0.0):6.2f}  {c['caught_by']}"
        )
    for h in honest:
        print(
            f"{h['name']:28s} {h['role']:8s} {'FR ' + str(h['false_rejections']):>9s} {'':7s} {'':7s} "
            f"{h['expected_profit']:8.2f} {h['expected_profit_task_yaml']:8.2f} "
            f"{h.get('damage_points', 0.0):7.2f} {h.get('damage_worst_round_points', 0.0):6.2f}"
        )


if __name__ == "__main__":
    sys.exit(main())
