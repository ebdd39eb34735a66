"""The normative hashes that go into rollout leaves (docs/encodings.md).

    prompt_hash(tokens)      = keccak256(uint32_be(t0) || uint32_be(t1) || ...)
    completion_hash(tokens)  = the same over the completion's tokens (EOS included, padding not)
    proofs_hash(proofs)      = keccak256(proof_0 || proof_1 || ...)   (TOPLOC proofs, 258 bytes each)
    reward_micros(reward)    = round(reward * 1e6) as int64 (Python `round`: ties to even)

Solidity recomputes the token hashes with `keccak256(abi.encodePacked(...))` over `bytes4` values,
never over a `uint32[]` (abi.encodePacked pads array elements to 32 bytes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from eth_utils.crypto import keccak

from protocol.errors import WireFormatError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "UINT32_MAX",
    "completion_hash",
    "prompt_hash",
    "proofs_hash",
    "reward_micros",
    "token_bytes",
]

UINT32_MAX = 2**32 - 1
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def token_bytes(tokens: Iterable[int]) -> bytes:
    """Token ids as concatenated 4-byte big-endian unsigned integers."""
    out = bytearray()
    for i, token in enumerate(tokens):
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token <= UINT32_MAX:
            raise WireFormatError(f"token {i} is {token!r}: token ids must be integers in [0, 2**32)")
        out += token.to_bytes(4, "big")
    return bytes(out)


def prompt_hash(tokens: Iterable[int]) -> bytes:
    """bytes32 hash of a prompt's token ids (keccak256 of uint32 big-endian ids)."""
    return bytes(keccak(token_bytes(tokens)))


def completion_hash(tokens: Iterable[int]) -> bytes:
    """bytes32 hash of a completion's generated token ids, EOS included, padding not."""
    return bytes(keccak(token_bytes(tokens)))


def proofs_hash(proofs: Sequence[bytes]) -> bytes:
    """bytes32 hash of a rollout's TOPLOC proofs in chunk order (keccak256 of their concatenation).

    Unambiguous because every proof has the fixed TOPLOC size and their number follows from the
    completion length; validators check both before trusting the hash.
    """
    for i, proof in enumerate(proofs):
        if not isinstance(proof, bytes | bytearray | memoryview):
            raise WireFormatError(f"proof {i} is {type(proof).__name__}, expected bytes")
    return bytes(keccak(b"".join(bytes(p) for p in proofs)))


def reward_micros(reward: float) -> int:
    """A reward as an integer number of millionths (int64), the form it takes in a leaf."""
    if isinstance(reward, bool) or not isinstance(reward, int | float) or not math.isfinite(reward):
        raise WireFormatError(f"reward must be a finite number, got {reward!r}")
    micros = round(reward * 1_000_000)
    if not INT64_MIN <= micros <= INT64_MAX:
        raise WireFormatError(f"reward {reward!r} does not fit int64 micros")
    return int(micros)
