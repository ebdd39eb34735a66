"""A forger for the verification tests: it trains honestly for its own address (so that every derived seed,
prompt and signature is its own), then publishes whatever it likes, with commitments that are consistent
with what it published, as an attacker who controls everything it uploads would.

    honest = train(task, base, trainer, round_)                 the real work, once
    forged = publish(task, base, honest, account, round_, ...)  artifacts (cid -> bytes) + the commitment

`states` rewrites the states' tensors (or bytes) before they are hashed; a theta_H whose weights are still
fp32 of the right shapes gets the matching update base - theta_H (so only the rules catch it). `update`
replaces the update's bytes, `bundle` and `manifest` rewrite those documents (the bundle may also be given
as bytes); the chain commits to whatever the resulting manifest says (its bundle, roots and work units) as
far as it can be read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from eth_account.signers.local import LocalAccount

from protocol.artifacts import artifact_ref, proof_root, record_from_rollout, sign_bundle, state_root
from protocol.cheats import Commitment
from protocol.ipfs import canonical_json
from protocol.verification import TaskContext
from protocol.wire import (
    RolloutBundle,
    RolloutRecord,
    UpdateManifest,
    bundle_size,
    bytes_to_hex,
    hex_to_bytes,
)
from trainer.checkpoint import canonical_bytes, load_tensors
from trainer.diloco import encode_update, load_global_checkpoint, pseudo_gradient
from trainer.inner import run_inner_loop
from trainer.model import model_from_config

Tensors = dict[str, torch.Tensor]
StateEdit = Callable[[int, Tensors], "Tensors | bytes"]
"""(j, theta_j's tensors) -> the tensors (or raw bytes) to publish as theta_j."""


@dataclass
class Honest:
    """One trainer's honest work of one round."""

    states: dict[int, Tensors]
    records: list[RolloutRecord]
    work_units: int


@dataclass
class Forged:
    """What a forger published (CID -> bytes) and committed."""

    artifacts: dict[str, bytes]
    sub: Commitment


def train(task: TaskContext, base: bytes, trainer: str, round_: int = 0) -> Honest:
    """The honest inner loop of `trainer` from the base checkpoint's bytes."""
    weights, _ = load_global_checkpoint(base)
    states: dict[int, bytes] = {}
    result = run_inner_loop(
        model_from_config(task.hf), task.tokenizer, task.env, weights, task.spec.inner,
        task_id=task.task_id, round_=round_, trainer=trainer, state_sink=states.__setitem__,
    )  # fmt: skip
    return Honest(
        {j: load_tensors(data) for j, data in states.items()},
        [record_from_rollout(r) for r in result.rollouts],
        bundle_size(task.spec.inner),
    )


def weights_of(state: Tensors) -> Tensors:
    """The weights of a training state's tensors."""
    return {k[len("model/") :]: v for k, v in state.items() if k.startswith("model/")}


def _json(data: bytes, edit: Callable[[Any], Any] | None) -> bytes:
    return data if edit is None else json.dumps(edit(json.loads(data)), allow_nan=True).encode()


def _parse(model: Any, data: bytes) -> Any:
    try:
        return model.model_validate_json(data)
    except ValueError:
        return None


def publish(
    task: TaskContext,
    base: bytes,
    honest: Honest,
    account: LocalAccount,
    round_: int = 0,
    *,
    index: int = 0,
    states: StateEdit | None = None,
    update: bytes | None = None,
    bundle: Callable[[Any], Any] | bytes | None = None,
    manifest: Callable[[Any], Any] | None = None,
) -> Forged:
    """Publish `honest` as `account`, rewritten as the keywords say (see the module docstring)."""
    weights, _ = load_global_checkpoint(base)
    H = task.spec.inner.steps
    published: dict[int, bytes] = {}
    final = honest.states[H]
    for j, tensors in honest.states.items():
        out = states(j, {k: v.clone() for k, v in tensors.items()}) if states else tensors
        published[j] = out if isinstance(out, bytes) else canonical_bytes(out)
        if j == H and not isinstance(out, bytes):
            final = out
    if update is None:
        try:
            delta = pseudo_gradient(weights, weights_of(final))
        except ValueError:  # the forger broke theta_H's layout: it keeps its honest update
            delta = pseudo_gradient(weights, weights_of(honest.states[H]))
        update = encode_update(delta, task.spec.inner.compression)
    base_hash = bytes_to_hex(hashlib.sha256(base).digest())
    header = {"chain_id": task.chain_id, "escrow": task.escrow, "task_id": task.task_id, "round": round_,
              "trainer": account.address, "base_hash": base_hash}  # fmt: skip
    signed = canonical_json(sign_bundle(RolloutBundle(**header, rollouts=honest.records), account))
    bundle_bytes = bundle if isinstance(bundle, bytes) else _json(signed, bundle)
    parsed = _parse(RolloutBundle, bundle_bytes)
    if callable(bundle) and parsed is not None and parsed.signature == json.loads(signed)["signature"]:
        bundle_bytes = canonical_json(sign_bundle(parsed, account))  # a forger signs what it publishes
    try:
        root = proof_root(parsed.rollouts) if parsed is not None else proof_root(honest.records)
    except ValueError:
        root = proof_root(honest.records)
    refs = [artifact_ref(published[j]) for j in range(H + 1)]
    honest_manifest = UpdateManifest(
        **header, bundle=artifact_ref(bundle_bytes), update=artifact_ref(update), states=refs,
        proof_root=bytes_to_hex(root), state_root=bytes_to_hex(state_root([r.digest for r in refs])),
        work_units=honest.work_units,
    )  # fmt: skip
    manifest_bytes = _json(canonical_json(honest_manifest), manifest)
    said = _parse(UpdateManifest, manifest_bytes) or honest_manifest
    manifest_ref = artifact_ref(manifest_bytes)
    sub = Commitment(
        round=round_, index=index, trainer=account.address,
        bundle_hash=said.bundle.digest, bundle_cid=said.bundle.cid,
        update_hash=manifest_ref.digest, update_cid=manifest_ref.cid,
        proof_root=hex_to_bytes(said.proof_root), state_root=hex_to_bytes(said.state_root),
        work_units=said.work_units,
    )  # fmt: skip
    artifacts = {artifact_ref(b).cid: b for b in (bundle_bytes, update, manifest_bytes, *published.values())}
    return Forged(artifacts, sub)


class MemoryStore:
    """An `ArtifactSource` over a dict, failing as `ArtifactStore.get_bytes` does (not found, too large)."""

    def __init__(self, artifacts: Mapping[str, bytes]) -> None:
        self.artifacts = dict(artifacts)

    def get_bytes(self, cid: str, *, max_size: int, expected_sha256: bytes | None = None) -> bytes:
        from protocol.errors import ArtifactError

        if cid not in self.artifacts:
            raise ArtifactError(f"artifact {cid} not found within 0 s")
        data = self.artifacts[cid]
        if len(data) > max_size:
            raise ArtifactError(f"artifact {cid} is {len(data)} bytes, over the limit of {max_size} bytes")
        return data
