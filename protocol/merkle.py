"""Merkle commitments over rollouts and training states, verifiable with OpenZeppelin's MerkleProof.

Leaves (double-hashed, so no 64-byte inner node can pass for a leaf):

    rollout_leaf = keccak256(bytes.concat(keccak256(abi.encode(uint32 step, uint32 promptIdx, uint32 g,
                       bytes32 promptHash, bytes32 completionHash, int64 rewardMicros, bytes32 proofsHash))))
    state_leaf   = keccak256(bytes.concat(keccak256(abi.encode(uint32 index, bytes32 stateHash))))

Tree shape, for any number n >= 1 of leaves kept in the caller's order (rollouts by
(step, promptIdx, g), states by index): level 0 is the leaves; level k+1 hashes the pairs
(0,1), (2,3), ... of level k with OpenZeppelin's commutative hash keccak256(min(a,b) || max(a,b));
a last node without a partner moves up unchanged. The root is the single node left; with one leaf
it is that leaf. A proof lists the partners from the leaf upwards (levels where the node moved up
add none), so `MerkleProof.verify(proof, root, leaf)` accepts it.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from protocol.encoding import INT64_MAX, INT64_MIN, UINT32_MAX
from protocol.errors import WireFormatError

__all__ = [
    "MerkleTree",
    "hash_pair",
    "process_proof",
    "rollout_leaf",
    "state_leaf",
    "verify",
]


def _bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise WireFormatError(f"{name} must be 32 bytes, got {value!r:.80}")
    return bytes(value)


def _uint32(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= UINT32_MAX:
        raise WireFormatError(f"{name} must be an integer in [0, 2**32), got {value!r}")
    return value


def _double_hash(encoded: bytes) -> bytes:
    return bytes(keccak(bytes(keccak(encoded))))


def rollout_leaf(
    step: int,
    prompt_idx: int,
    g: int,
    prompt_hash: bytes,
    completion_hash: bytes,
    reward_micros: int,
    proofs_hash: bytes,
) -> bytes:
    """The bytes32 Merkle leaf of one rollout (see the module docstring)."""
    if isinstance(reward_micros, bool) or not isinstance(reward_micros, int) or not (
        INT64_MIN <= reward_micros <= INT64_MAX
    ):
        raise WireFormatError(f"reward_micros must be an int64, got {reward_micros!r}")
    encoded = abi_encode(
        ["uint32", "uint32", "uint32", "bytes32", "bytes32", "int64", "bytes32"],
        [
            _uint32("step", step), _uint32("prompt_idx", prompt_idx), _uint32("g", g),
            _bytes32("prompt_hash", prompt_hash), _bytes32("completion_hash", completion_hash),
            reward_micros, _bytes32("proofs_hash", proofs_hash),
        ],
    )
    return _double_hash(encoded)


def state_leaf(index: int, state_hash: bytes) -> bytes:
    """The bytes32 Merkle leaf of training state theta_index with content hash `state_hash`."""
    encoded = abi_encode(["uint32", "bytes32"], [_uint32("index", index), _bytes32("state_hash", state_hash)])
    return _double_hash(encoded)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's `Hashes.commutativeKeccak256`: keccak256 of the sorted pair."""
    return bytes(keccak(a + b if a <= b else b + a))


def process_proof(proof: Sequence[bytes], leaf: bytes) -> bytes:
    """The root that `proof` leads to from `leaf` (OpenZeppelin `MerkleProof.processProof`)."""
    node = _bytes32("leaf", leaf)
    for i, sibling in enumerate(proof):
        node = hash_pair(node, _bytes32(f"proof[{i}]", sibling))
    return node


def verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """Whether `proof` proves `leaf` under `root` (OpenZeppelin `MerkleProof.verify`)."""
    try:
        return process_proof(proof, leaf) == _bytes32("root", root)
    except WireFormatError:
        return False


class MerkleTree:
    """A Merkle tree over bytes32 leaves in the given order; see the module docstring for its shape."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if len(leaves) == 0:
            raise WireFormatError("a Merkle tree needs at least one leaf")
        level = [_bytes32(f"leaf {i}", leaf) for i, leaf in enumerate(leaves)]
        self._levels: list[list[bytes]] = [level]
        while len(level) > 1:
            nxt = [hash_pair(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                nxt.append(level[-1])
            self._levels.append(nxt)
            level = nxt

    @property
    def leaves(self) -> list[bytes]:
        """The leaves in tree order."""
        return list(self._levels[0])

    def __len__(self) -> int:
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The bytes32 root."""
        return self._levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        """The partners of leaf `index` from the bottom up (what MerkleProof.verify takes)."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self):
            raise WireFormatError(f"leaf index {index!r} out of range for {len(self)} leaves")
        out = []
        for level in self._levels[:-1]:
            partner = index ^ 1
            if partner < len(level):
                out.append(level[partner])
            index //= 2
        return out
