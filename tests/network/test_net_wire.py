"""Wire models, the seed's picks, bundle signatures, Merkle roots and local CIDs (no chain, no daemon)."""

from __future__ import annotations

import hashlib

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_utils.crypto import keccak
from pydantic import ValidationError

from protocol.artifacts import (
    artifact_ref,
    bundle_signer,
    proof_root,
    record_from_rollout,
    rollout_from_record,
    rollout_leaves,
    sign_bundle,
    state_root,
    unixfs_cid,
)
from protocol.encoding import completion_hash, prompt_hash, proofs_hash, reward_micros
from protocol.errors import WireFormatError
from protocol.ipfs import canonical_json, sha256_cid
from protocol.merkle import MerkleTree, rollout_leaf, state_leaf
from protocol.wire import (
    PICK_ROLLOUTS_DOMAIN,
    PICK_STEPS_DOMAIN,
    ArtifactRef,
    EnvSpec,
    RolloutBundle,
    RolloutRecord,
    UpdateManifest,
    pick_indices,
    picked_steps,
    required_states,
    sampled_rollouts,
)
from trainer.config import InnerConfig
from trainer.rollout import Rollout

TRAINER = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
SEED = bytes(keccak(b"a seed"))


def _record(step: int, p: int, g: int, reward: float = 1.0) -> RolloutRecord:
    return RolloutRecord(
        step=step,
        prompt_idx=p,
        g=g,
        prompt_ids=[1, 5, 6],
        completion_ids=[7, 8, 2],
        reward=reward,
        finished=True,
        proofs=["0x" + "ab" * 258],
    )


def _bundle(**overrides: object) -> RolloutBundle:
    fields: dict[str, object] = {
        "chain_id": 31337,
        "escrow": "0x" + "cd" * 20,
        "task_id": 1,
        "round": 0,
        "trainer": TRAINER.address,
        "base_hash": "0x" + "00" * 31 + "01",
        "rollouts": [_record(0, 0, 0), _record(0, 0, 1, 0.0)],
    }
    fields.update(overrides)
    return RolloutBundle.model_validate(fields)


# ------------------------------------------------------------------------------------------ picks


def test_pick_indices_follows_its_definition() -> None:
    n, count = 37, 5
    picks = pick_indices(PICK_ROLLOUTS_DOMAIN, SEED, TRAINER.address, count, n)
    expected: list[int] = []
    i = 0
    while len(expected) < count:  # the definition in docs/network.md, written out independently
        word = keccak(
            abi_encode(
                ["bytes32", "bytes32", "address", "uint256"], [PICK_ROLLOUTS_DOMAIN, SEED, TRAINER.address, i]
            )
        )
        value = int.from_bytes(word, "big") % n
        if value not in expected:
            expected.append(value)
        i += 1
    assert picks == expected
    assert sampled_rollouts(SEED, TRAINER.address, count, n) == sorted(expected)


def test_picks_are_distinct_bounded_and_separated() -> None:
    for n in (1, 2, 9, 64):
        for count in (0, 1, 3, 8, 100):
            picks = pick_indices(PICK_STEPS_DOMAIN, SEED, TRAINER.address, count, n)
            assert len(picks) == min(count, n)
            assert len(set(picks)) == len(picks)
            assert all(0 <= p < n for p in picks)
    assert pick_indices(PICK_STEPS_DOMAIN, SEED, TRAINER.address, 3, 0) == []
    assert pick_indices(PICK_STEPS_DOMAIN, SEED, TRAINER.address, 50, 9) == list(range(9))
    # Another trainer, another seed or the other domain pick differently (1000 values: a clash is ~1e-9).
    base = pick_indices(PICK_STEPS_DOMAIN, SEED, TRAINER.address, 3, 1000)
    assert base != pick_indices(PICK_STEPS_DOMAIN, SEED, OTHER.address, 3, 1000)
    assert base != pick_indices(PICK_ROLLOUTS_DOMAIN, SEED, TRAINER.address, 3, 1000)
    assert base != pick_indices(PICK_STEPS_DOMAIN, bytes(keccak(b"other")), TRAINER.address, 3, 1000)
    assert picked_steps(SEED, TRAINER.address.lower(), 3, 1000) == sorted(base)  # any address case
    with pytest.raises(WireFormatError):
        pick_indices(PICK_STEPS_DOMAIN, b"short", TRAINER.address, 1, 4)


def test_required_states_cover_replays_and_reexecutions() -> None:
    inner = InnerConfig(steps=8, rollout_every=2)
    assert required_states(inner, [4, 0, 4], [5]) == [0, 4, 5, 6, 8]
    assert required_states(inner, [], [7]) == [0, 6, 7, 8]  # theta_6 generated step 7's rollouts
    assert required_states(inner, [], []) == [0, 8]
    assert required_states(inner.model_copy(update={"rollout_every": 1}), [], [7]) == [0, 7, 8]


# ------------------------------------------------------------------------------------------ models


def test_wire_models_refuse_unknown_fields_and_malformed_values() -> None:
    with pytest.raises(ValidationError, match="surprise"):
        ArtifactRef.model_validate(
            {"cid": sha256_cid(b"x"), "sha256": "0x" + "00" * 32, "size": 1, "surprise": 1}
        )
    with pytest.raises(ValidationError, match="lower-case hex"):
        ArtifactRef(cid=sha256_cid(b"x"), sha256="0x" + "AB" * 32, size=1)
    with pytest.raises(ValidationError, match="bad CID"):
        ArtifactRef(cid="not-a-cid", sha256="0x" + "00" * 32, size=1)
    with pytest.raises(ValidationError, match="finite"):
        _record(0, 0, 0, float("nan"))
    with pytest.raises(ValidationError, match="unknown environment 'nope'"):
        EnvSpec(name="nope")
    with pytest.raises(ValidationError, match="digits"):
        EnvSpec(name="addition", params={"digits": 0})
    bundle = _bundle(trainer=TRAINER.address.lower())
    assert bundle.trainer == TRAINER.address  # normalised to the checksum form
    with pytest.raises(ValidationError):
        _bundle(version=2)


def test_canonical_json_round_trips_and_is_stable() -> None:
    bundle = _bundle()
    data = canonical_json(bundle)
    assert RolloutBundle.model_validate_json(data) == bundle
    assert canonical_json(RolloutBundle.model_validate_json(data)) == data
    assert b" " not in data


# ------------------------------------------------------------------------------------------ commitments


def test_bundle_signature_binds_the_trainer_and_the_content() -> None:
    signed = sign_bundle(_bundle(), TRAINER)
    assert bundle_signer(signed) == TRAINER.address
    tampered = signed.model_copy(update={"rollouts": [_record(0, 0, 0, 0.0), _record(0, 0, 1, 0.0)]})
    assert bundle_signer(tampered) != TRAINER.address
    with pytest.raises(WireFormatError):
        sign_bundle(_bundle(), OTHER)
    with pytest.raises(WireFormatError, match="malformed"):
        bundle_signer(signed.model_copy(update={"signature": "0x" + "00" * 10}))


def test_roots_are_the_merkle_trees_of_the_normative_leaves() -> None:
    records = [_record(0, 0, 0), _record(0, 0, 1, 0.5), _record(1, 0, 0)]
    leaves = [
        rollout_leaf(
            r.step,
            r.prompt_idx,
            r.g,
            prompt_hash(r.prompt_ids),
            completion_hash(r.completion_ids),
            reward_micros(r.reward),
            proofs_hash([bytes.fromhex(p[2:]) for p in r.proofs]),
        )
        for r in records
    ]
    assert rollout_leaves(records) == leaves
    assert proof_root(records) == MerkleTree(leaves).root
    assert proof_root(records[::-1]) != proof_root(records)
    hashes = [hashlib.sha256(bytes([j])).digest() for j in range(5)]
    assert state_root(hashes) == MerkleTree([state_leaf(j, h) for j, h in enumerate(hashes)]).root


def test_rollout_records_round_trip() -> None:
    rollout = Rollout(
        step=3,
        prompt_idx=1,
        g=2,
        prompt_ids=(1, 4),
        completion_ids=(5, 2),
        reward=0.25,
        proofs=(b"\x01" * 258,),
        finished=True,
    )
    assert rollout_from_record(record_from_rollout(rollout)) == rollout


def test_local_cids_match_the_raw_cid_for_one_chunk() -> None:
    for data in (b"", b"x", bytes(262_144)):
        assert unixfs_cid(data) == sha256_cid(data)
    ref = artifact_ref(b"hello")
    assert ref.size == 5
    assert ref.digest == hashlib.sha256(b"hello").digest()
    assert unixfs_cid(bytes(262_145)).startswith("bafybei")  # a dag-pb root above one chunk


def test_manifest_requires_every_field() -> None:
    with pytest.raises(ValidationError, match="states"):
        UpdateManifest.model_validate({"chain_id": 1, "escrow": "0x" + "cd" * 20, "task_id": 1, "round": 0})
