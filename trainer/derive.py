"""Seed derivation: every prompt and every sampling seed of a round comes from public values.

    prompt_seed = keccak256(abi.encode(bytes32 PROMPT_DOMAIN, uint256 taskId, uint256 round,
                                       address trainer, uint256 step, uint256 promptIdx))
    sample_seed = keccak256(abi.encode(bytes32 SAMPLE_DOMAIN, uint256 taskId, uint256 round,
                                       address trainer, uint256 step, uint256 promptIdx, uint256 g))

The G completions of a prompt share its prompt (a GRPO group) and differ by their sampling seed.
The trainer's address is part of both, so a bundle copied from another trainer fails the check.
The domain tags are keccak256 of ASCII names, so Solidity can recompute them with
`keccak256("trustrl.prompt.v1")`.

`DeterministicRng` turns a seed into integers portably: the byte stream is
sha256(seed || uint64_be(0)) || sha256(seed || uint64_be(1)) || ..., consumed in order;
`randbelow(n)` reads ceil(bits(n-1)/8) bytes big-endian, masks them to bits(n-1) bits and retries
while the value is >= n (rejection sampling, no modulo bias). Any language can reimplement it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from trainer.errors import ConfigError

__all__ = [
    "EVAL_DOMAIN",
    "HELDOUT_DOMAIN",
    "PROMPT_DOMAIN",
    "SAMPLE_DOMAIN",
    "WARMSTART_DOMAIN",
    "DeterministicRng",
    "address_bytes",
    "domain_tag",
    "indexed_seed",
    "prompt_seed",
    "sample_seed",
]

_T = TypeVar("_T")
_UINT256_MAX = (1 << 256) - 1


def domain_tag(name: str) -> bytes:
    """The bytes32 domain tag of `name`: keccak256 of its ASCII bytes."""
    return bytes(keccak(name.encode("ascii")))


PROMPT_DOMAIN = domain_tag("trustrl.prompt.v1")
SAMPLE_DOMAIN = domain_tag("trustrl.sample.v1")
HELDOUT_DOMAIN = domain_tag("trustrl.heldout.v1")
"""Held-out evaluation problems: a domain no trainer's prompt can come from."""
WARMSTART_DOMAIN = domain_tag("trustrl.warmstart.v1")
"""Supervised warm-start examples of the initial model."""
EVAL_DOMAIN = domain_tag("trustrl.warmstart-eval.v1")
"""Problems the warm start measures itself on (distinct from the held-out set)."""


def address_bytes(address: str | bytes) -> bytes:
    """The 20 bytes of an Ethereum address given as `0x` + 40 hex digits (any case) or as 20 bytes."""
    if isinstance(address, bytes):
        if len(address) != 20:
            raise ConfigError(f"an address has 20 bytes, got {len(address)}")
        return address
    if not isinstance(address, str) or len(address) != 42 or not address.lower().startswith("0x"):
        raise ConfigError(f"not an address (0x + 40 hex digits): {address!r}")
    try:
        return bytes.fromhex(address[2:])
    except ValueError:
        raise ConfigError(f"not an address (0x + 40 hex digits): {address!r}") from None


def _uint(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT256_MAX:
        raise ConfigError(f"{name} must be an integer in [0, 2**256), got {value!r}")
    return value


def prompt_seed(task_id: int, round_: int, trainer: str | bytes, step: int, prompt_idx: int) -> bytes:
    """Seed of the prompt `prompt_idx` of inner step `step` of `trainer` in round `round_` of a task."""
    return bytes(
        keccak(
            abi_encode(
                ["bytes32", "uint256", "uint256", "address", "uint256", "uint256"],
                [
                    PROMPT_DOMAIN,
                    _uint("task_id", task_id),
                    _uint("round", round_),
                    address_bytes(trainer),
                    _uint("step", step),
                    _uint("prompt_idx", prompt_idx),
                ],
            )
        )
    )


def sample_seed(task_id: int, round_: int, trainer: str | bytes, step: int, prompt_idx: int, g: int) -> bytes:
    """Seed of the Gumbel noise of completion `g` of that prompt."""
    return bytes(
        keccak(
            abi_encode(
                ["bytes32", "uint256", "uint256", "address", "uint256", "uint256", "uint256"],
                [
                    SAMPLE_DOMAIN,
                    _uint("task_id", task_id),
                    _uint("round", round_),
                    address_bytes(trainer),
                    _uint("step", step),
                    _uint("prompt_idx", prompt_idx),
                    _uint("g", g),
                ],
            )
        )
    )


def indexed_seed(domain: bytes, index: int, salt: int = 0) -> bytes:
    """keccak256(abi.encode(bytes32 domain, uint256 salt, uint256 index)): held-out and warm-start seeds."""
    if len(domain) != 32:
        raise ConfigError(f"a domain tag has 32 bytes, got {len(domain)}")
    return bytes(
        keccak(
            abi_encode(
                ["bytes32", "uint256", "uint256"],
                [domain, _uint("salt", salt), _uint("index", index)],
            )
        )
    )


class DeterministicRng:
    """A portable random generator: sha256 in counter mode, rejection sampling for integers."""

    def __init__(self, seed: bytes) -> None:
        if not isinstance(seed, bytes | bytearray):
            raise ConfigError(f"a seed is bytes, got {type(seed).__name__}")
        self._seed = bytes(seed)
        self._counter = 0
        self._buffer = b""

    def read(self, n: int) -> bytes:
        """The next `n` bytes of the stream."""
        while len(self._buffer) < n:
            block = hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def randbelow(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"randbelow needs a positive integer, got {n!r}")
        if n == 1:
            return 0
        bits = (n - 1).bit_length()
        nbytes = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self.read(nbytes), "big") & mask
            if value < n:
                return value

    def randint(self, low: int, high: int) -> int:
        """A uniform integer in [low, high] (both included)."""
        if high < low:
            raise ConfigError(f"empty range [{low}, {high}]")
        return low + self.randbelow(high - low + 1)

    def choice(self, seq: Sequence[_T]) -> _T:
        """A uniform element of a non-empty sequence."""
        if len(seq) == 0:
            raise ConfigError("choice from an empty sequence")
        return seq[self.randbelow(len(seq))]
