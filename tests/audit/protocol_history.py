"""Histories with real work behind them: a tiny real torch policy trained with the trainer package, every
artifact (spec, checkpoints, rollout bundles, updates, manifests, training states) on a real IPFS daemon,
every transaction on anvil (the contract tests' `World`). The validators' verdicts and model votes are
given by the test, so a history can be honest or wrong on purpose (colluding validators, a wrong
aggregate); trainers can poison their update as `trustrl train --cheat poison` does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from chainworld import World

from protocol.artifacts import (
    proof_root,
    record_from_rollout,
    sign_bundle,
    state_root,
    upload_bytes,
    upload_json,
)
from protocol.contracts import ProtocolClient, Verdict, WorkSubmission
from protocol.ipfs import ArtifactStore, canonical_json
from protocol.wire import (
    ArtifactRef,
    EnvSpec,
    RolloutBundle,
    SizeLimits,
    TaskSpec,
    UpdateManifest,
    bundle_size,
    bytes_to_hex,
    hex_to_bytes,
)
from trainer.checkpoint import model_weights
from trainer.config import GrpoConfig, InnerConfig, ModelConfig, OuterConfig
from trainer.diloco import (
    TrainerUpdate,
    aggregate,
    decode_update,
    encode_update,
    global_checkpoint_bytes,
    load_global_checkpoint,
)
from trainer.envs import get_env
from trainer.inner import run_inner_loop
from trainer.model import build_model, hf_config, model_from_config
from trainer.tokenizer import build_tokenizer
from trainer.verify import VerifyThresholds

# lr 1e-3 (an update that is never zero in two steps) is above what the quality gate's default limit is
# calibrated for (trainer.config.QUALITY_MAX_LR), so the spec loosens the gate, as such a task must.
GATE_LOOSENED = VerifyThresholds(max_quality_drop=5.0)

# Reverse a one-letter string over {a, b} in one token: a random policy is right about one time in
# seven, so GRPO groups have differing rewards and every update is nonzero without a warm start.
ENV = EnvSpec(name="reverse", params={"min_len": 1, "max_len": 1, "letters": "ab"})
MODEL = ModelConfig(hidden_size=128, num_layers=1, num_heads=4, num_kv_heads=4, intermediate_size=128,
                    max_position_embeddings=16)  # fmt: skip
INNER = InnerConfig(steps=2, rollout_every=1, num_prompts=4, group_size=4, max_new_tokens=1,
                    grpo=GrpoConfig(lr=1e-3))  # fmt: skip
POISON = -4.0
A, R = Verdict.ACCEPT, Verdict.REJECT


@dataclass
class Work:
    """One trainer's submission and what it published."""

    trainer: ProtocolClient
    manifest: UpdateManifest
    manifest_ref: ArtifactRef
    update: bytes


@dataclass
class Net:
    """A task with real artifacts on one deployment."""

    world: World
    store: ArtifactStore
    spec: TaskSpec
    spec_ref: ArtifactRef
    task_id: int
    checkpoints: dict[bytes, bytes] = field(default_factory=dict)
    base: bytes = b""
    rounds: dict[int, list[Work]] = field(default_factory=dict)

    @property
    def proto(self) -> ProtocolClient:
        return self.world.initiator


def make_task(
    world: World,
    store: ArtifactStore,
    trainers: Sequence[ProtocolClient],
    *,
    rounds: int = 1,
    allocation: int = 0,
) -> Net:
    """Upload a spec and a random-init checkpoint, create and fund the task, join `trainers` and the three
    validators, and start it."""
    env = get_env(ENV.name, ENV.params)
    tokenizer = build_tokenizer(env.alphabet)
    checkpoint = global_checkpoint_bytes(model_weights(build_model(MODEL, tokenizer)))
    initial = upload_bytes(store, checkpoint)
    spec = TaskSpec(
        description="audit test task", env=ENV, model=MODEL,
        inner=INNER, outer=OuterConfig(), initial_checkpoint=initial, verify=GATE_LOOSENED,
        sample_rollouts=4, sample_steps=1, heldout_size=50,
        limits=SizeLimits(checkpoint=2 * len(checkpoint), state=8 * len(checkpoint),
                          update=2 * len(checkpoint), bundle=1 << 22),
    )  # fmt: skip
    spec_ref = upload_json(store, spec)
    task_id = world.create_task(
        num_rounds=rounds, spec_hash=spec_ref.digest, spec_cid=spec_ref.cid,
        initial_model_hash=initial.digest, initial_model_cid=initial.cid,
        sample_rollouts=spec.sample_rollouts, sample_steps=spec.sample_steps, max_empty_rounds=0,
    )  # fmt: skip
    world.join(task_id, trainers, world.validators, **({"allocation": allocation} if allocation else {}))
    world.start(task_id)
    return Net(world, store, spec, spec_ref, task_id, {initial.digest: checkpoint}, initial.digest)


def train(net: Net, trainer: ProtocolClient, round_: int, *, poison: bool = False) -> Work:
    """Run the inner loop from the round's base, publish everything (all states), submit."""
    spec, store = net.spec, net.store
    env = get_env(spec.env.name, spec.env.params)
    tokenizer = build_tokenizer(env.alphabet)
    model = model_from_config(hf_config(spec.model, tokenizer))
    weights, _ = load_global_checkpoint(net.checkpoints[net.base])
    states: dict[int, bytes] = {}
    result = run_inner_loop(model, tokenizer, env, weights, spec.inner, task_id=net.task_id, round_=round_,
                            trainer=trainer.address, state_sink=states.__setitem__)  # fmt: skip
    records = [record_from_rollout(r) for r in result.rollouts]
    delta = {k: v * POISON for k, v in result.delta.items()} if poison else result.delta
    update = encode_update(delta, spec.inner.compression)
    deployment = net.world.deployment.addresses
    common = {"chain_id": deployment.chain_id, "escrow": deployment.task_escrow, "task_id": net.task_id,
              "round": round_, "trainer": trainer.address, "base_hash": bytes_to_hex(net.base)}  # fmt: skip
    bundle = sign_bundle(RolloutBundle(**common, rollouts=records), trainer.client.account)
    bundle_ref = upload_bytes(store, canonical_json(bundle))
    update_ref = upload_bytes(store, update)
    state_refs = [upload_bytes(store, states[j]) for j in range(spec.inner.steps + 1)]
    manifest = UpdateManifest(
        **common, bundle=bundle_ref, update=update_ref, states=state_refs,
        proof_root=bytes_to_hex(proof_root(records)),
        state_root=bytes_to_hex(state_root([r.digest for r in state_refs])),
        work_units=bundle_size(spec.inner),
    )  # fmt: skip
    manifest_ref = upload_json(store, manifest)
    trainer.submit_work(net.task_id, round_, WorkSubmission(
        bundle_hash=bundle_ref.digest, bundle_cid=bundle_ref.cid, update_hash=manifest_ref.digest,
        update_cid=manifest_ref.cid, proof_root=hex_to_bytes(manifest.proof_root),
        state_root=hex_to_bytes(manifest.state_root), work_units=manifest.work_units,
    ))  # fmt: skip
    return Work(trainer, manifest, manifest_ref, update)


def aggregate_of(net: Net, works: Sequence[Work]) -> bytes:
    """The next global checkpoint from `works` (what honest validators vote)."""
    if not works:
        return net.checkpoints[net.base]
    weights, momentum = load_global_checkpoint(net.checkpoints[net.base])
    shapes = {k: v.shape for k, v in weights.items()}
    updates = [TrainerUpdate(w.trainer.address, w.manifest.work_units, decode_update(w.update, shapes))
               for w in works]  # fmt: skip
    return aggregate(weights, updates, net.spec.outer, momentum).to_bytes()


def play_round(
    net: Net,
    round_: int,
    cheats: Mapping[ProtocolClient, bool],
    verdicts: Sequence[Verdict],
    *,
    vote: str = "honest",
) -> list[Work]:
    """Every trainer in `cheats` trains (poisoning when True) and submits; the three validators all reveal
    `verdicts` (by submission index) and vote the next model: `honest` (the aggregate of what the chain
    accepted), `drop-one` (the aggregate without the first accepted update); then the round is finalised
    and everything settled."""
    world, p = net.world, net.proto
    works = [train(net, trainer, round_, poison=cheat) for trainer, cheat in cheats.items()]
    world.draw(net.task_id)
    rows = {v: list(verdicts) for v in world.validators}
    world.commit(net.task_id, round_, rows)
    world.reveal(net.task_id, round_, rows)
    decided = p.decisions_of(net.task_id, round_)
    accepted = [w for i, w in enumerate(works) if decided[i] == Verdict.ACCEPT]
    chosen = accepted[1:] if vote == "drop-one" else accepted
    checkpoint = aggregate_of(net, chosen)
    ref = upload_bytes(net.store, checkpoint)
    net.checkpoints[ref.digest] = checkpoint
    world.vote(net.task_id, round_, dict.fromkeys(world.validators, ref.digest), ref.cid)
    p.finalize_round(net.task_id)
    for i in range(len(works)):
        p.settle_submission(net.task_id, round_, i)
    for v in world.validators:
        p.settle_validator(net.task_id, round_, v.address)
    net.base = p.base_model_of(net.task_id)
    net.rounds[round_] = works
    return works


def unpin_and_collect(api_url: str, cid: str) -> None:
    """Make the daemon forget `cid`: unpin it and garbage-collect the repo."""
    with httpx.Client(timeout=60, trust_env=False) as client:
        client.post(f"{api_url}/api/v0/pin/rm", params={"arg": cid}).raise_for_status()
        client.post(f"{api_url}/api/v0/repo/gc").raise_for_status()
