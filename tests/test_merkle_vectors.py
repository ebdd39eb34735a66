"""The normative encodings (docs/encodings.md) against the shared vectors in tests/vectors/encodings.json,
in Python and in Solidity (contracts/test/MerkleHarness.sol on anvil)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.encoding import completion_hash, prompt_hash, proofs_hash, reward_micros
from protocol.errors import ContractRevert, WireFormatError
from protocol.merkle import MerkleTree, hash_pair, process_proof, rollout_leaf, state_leaf, verify

VECTORS_DIR = Path(__file__).parent / "vectors"
VECTORS: dict[str, Any] = json.loads((VECTORS_DIR / "encodings.json").read_text())


def b(hex_str: str) -> bytes:
    return bytes.fromhex(hex_str.removeprefix("0x"))


def _rollout_args(v: dict[str, Any]) -> tuple[Any, ...]:
    return (v["step"], v["prompt_idx"], v["g"], b(v["prompt_hash"]), b(v["completion_hash"]),
            v["reward_micros"], b(v["proofs_hash"]))


def test_vector_file_matches_its_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_encodings", VECTORS_DIR / "make_encodings.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (VECTORS_DIR / "encodings.json").read_text()


def test_hashes_in_python() -> None:
    for case in VECTORS["token_hashes"]:
        assert prompt_hash(case["tokens"]) == b(case["hash"])
        assert completion_hash(case["tokens"]) == b(case["hash"])
    for case in VECTORS["proofs_hashes"]:
        assert proofs_hash([b(p) for p in case["proofs"]]) == b(case["hash"])
    for case in VECTORS["reward_micros"]:
        assert reward_micros(case["reward"]) == case["micros"]


def test_leaves_in_python() -> None:
    for v in VECTORS["rollout_leaves"]:
        assert rollout_leaf(*_rollout_args(v)) == b(v["leaf"])
    for v in VECTORS["state_leaves"]:
        assert state_leaf(v["index"], b(v["state_hash"])) == b(v["leaf"])
    # The first rollout leaf is the worked example: tokens, proofs and reward to leaf.
    ex, leaf = VECTORS["rollout_example"], VECTORS["rollout_leaves"][0]
    assert b(leaf["prompt_hash"]) == prompt_hash(ex["prompt_tokens"])
    assert b(leaf["completion_hash"]) == completion_hash(ex["completion_tokens"])
    assert b(leaf["proofs_hash"]) == proofs_hash([b(p) for p in ex["proofs"]])
    assert leaf["reward_micros"] == reward_micros(ex["reward"])


def test_trees_in_python() -> None:
    for t in VECTORS["trees"]:
        leaves = [b(x) for x in t["leaves"]]
        tree = MerkleTree(leaves)
        assert tree.root == b(t["root"])
        for i, leaf in enumerate(leaves):
            proof = tree.proof(i)
            assert proof == [b(p) for p in t["proofs"][i]]
            assert verify(proof, tree.root, leaf)
    single = VECTORS["trees"][0]["leaves"]
    assert len(single) == 1
    assert MerkleTree([b(single[0])]).root == b(single[0])
    st_vec = VECTORS["state_tree"]
    leaves = [state_leaf(i, b(h)) for i, h in enumerate(st_vec["state_hashes"])]
    assert MerkleTree(leaves).root == b(st_vec["root"])


def test_documented_tree_shape() -> None:
    # docs/encodings.md, "Tree": five leaves a..e.
    a, b_, c, d, e = (bytes([i]) * 32 for i in range(5))  # `b` is the hex helper above
    tree = MerkleTree([a, b_, c, d, e])
    ab, cd = hash_pair(a, b_), hash_pair(c, d)
    assert tree.root == hash_pair(hash_pair(ab, cd), e)
    assert tree.proof(4) == [hash_pair(ab, cd)]
    assert tree.proof(2) == [d, ab, e]
    assert MerkleTree([a]).proof(0) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40), st.data())
def test_every_proof_verifies_and_tampering_fails(leaves: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(leaves)
    i = data.draw(st.integers(0, len(leaves) - 1))
    proof = tree.proof(i)
    assert len(proof) <= max(1, (len(leaves) - 1).bit_length())
    assert verify(proof, tree.root, leaves[i])
    assert process_proof(proof, leaves[i]) == tree.root
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        forged = list(proof)
        forged[j] = bytes([forged[j][0] ^ 1]) + forged[j][1:]
        assert not verify(forged, tree.root, leaves[i])
    other = bytes([leaves[i][0] ^ 0x80]) + leaves[i][1:]
    if other not in leaves:
        assert not verify(proof, tree.root, other)


def test_bad_inputs_are_wire_format_errors() -> None:
    zero = b"\x00" * 32
    with pytest.raises(WireFormatError, match="at least one leaf"):
        MerkleTree([])
    with pytest.raises(WireFormatError, match="32 bytes"):
        MerkleTree([b"\x01"])
    with pytest.raises(WireFormatError, match="out of range"):
        MerkleTree([zero]).proof(1)
    with pytest.raises(WireFormatError, match="step"):
        rollout_leaf(-1, 0, 0, zero, zero, 0, zero)
    with pytest.raises(WireFormatError, match="int64"):
        rollout_leaf(0, 0, 0, zero, zero, 2**63, zero)
    with pytest.raises(WireFormatError, match="index"):
        state_leaf(2**32, zero)
    with pytest.raises(WireFormatError, match="token"):
        prompt_hash([1, 2**32])
    with pytest.raises(WireFormatError, match="finite"):
        reward_micros(float("nan"))
    with pytest.raises(WireFormatError, match="int64"):
        reward_micros(1e13)
    assert not verify([zero], zero, b"short")
    assert hash_pair(zero, b"\x01" * 32) == hash_pair(b"\x01" * 32, zero)


@pytest.mark.chain
def test_vectors_in_solidity(chain: Any, compiled: dict[str, Any], chain_snapshot: str) -> None:
    harness = chain.deploy(compiled["MerkleHarness"]).functions
    for case in VECTORS["token_hashes"]:
        assert chain.call(harness.tokenHash(case["tokens"])) == b(case["hash"])
    for case in VECTORS["proofs_hashes"]:
        assert chain.call(harness.concatHash([b(p) for p in case["proofs"]])) == b(case["hash"])
    for v in VECTORS["rollout_leaves"]:
        assert chain.call(harness.rolloutLeaf(*_rollout_args(v))) == b(v["leaf"])
    for v in VECTORS["state_leaves"]:
        assert chain.call(harness.stateLeaf(v["index"], b(v["state_hash"]))) == b(v["leaf"])
    for t in VECTORS["trees"]:
        leaves, root = [b(x) for x in t["leaves"]], b(t["root"])
        assert chain.call(harness.buildRoot(leaves)) == root
        for i, leaf in enumerate(leaves):
            proof = [b(p) for p in t["proofs"][i]]
            assert chain.call(harness.verify(proof, root, leaf)) is True
            assert chain.call(harness.processProof(proof, leaf)) == root
            if proof:
                forged = [proof[0][::-1], *proof[1:]]
                assert chain.call(harness.verify(forged, root, leaf)) is False
    st_vec = VECTORS["state_tree"]
    state_leaves = [chain.call(harness.stateLeaf(i, b(h))) for i, h in enumerate(st_vec["state_hashes"])]
    assert chain.call(harness.buildRoot(state_leaves)) == b(st_vec["root"])
    with pytest.raises(ContractRevert) as info:
        chain.call(harness.buildRoot([]))
    assert info.value.error == "EmptyTree"
