"""Seed derivation (fixed vectors, an independent ABI encoding) and the portable generator."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from Crypto.Hash import keccak as pc_keccak

from trainer.derive import (
    HELDOUT_DOMAIN,
    PROMPT_DOMAIN,
    SAMPLE_DOMAIN,
    DeterministicRng,
    address_bytes,
    indexed_seed,
    prompt_seed,
    sample_seed,
)
from trainer.errors import ConfigError

ADDR = "0x" + "ab" * 20


def _keccak(data: bytes) -> bytes:
    h = pc_keccak.new(digest_bits=256)
    h.update(data)
    return h.digest()


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_domain_tags_are_keccak_of_names() -> None:
    assert _keccak(b"trustrl.prompt.v1") == PROMPT_DOMAIN
    assert _keccak(b"trustrl.sample.v1") == SAMPLE_DOMAIN
    assert PROMPT_DOMAIN.hex() == "cd3c883cb3d76300991347ed132cd21a597a1867eadeb9e2f68b77c121d374cf"


def test_prompt_seed_matches_hand_encoded_abi() -> None:
    encoded = PROMPT_DOMAIN + _word(7) + _word(3) + bytes(12) + bytes.fromhex("ab" * 20) + _word(5) + _word(2)
    assert prompt_seed(7, 3, ADDR, 5, 2) == _keccak(encoded)
    assert prompt_seed(7, 3, ADDR, 5, 2).hex() == (
        "e556fff9b7a37e053be768c41995c3dc155928c6e5e86ffa781c120ab27f2236"
    )


def test_sample_seed_matches_hand_encoded_abi() -> None:
    encoded = (
        SAMPLE_DOMAIN
        + _word(7)
        + _word(3)
        + bytes(12)
        + bytes.fromhex("ab" * 20)
        + _word(5)
        + _word(2)
        + _word(1)
    )
    assert sample_seed(7, 3, ADDR, 5, 2, 1) == _keccak(encoded)
    assert sample_seed(7, 3, ADDR, 5, 2, 1).hex() == (
        "2aa1594d324926d814aa2ed2fd3d877c83125f37f0dba59efd8e80d4c4851438"
    )


def test_indexed_seed_encoding() -> None:
    assert indexed_seed(HELDOUT_DOMAIN, 9, 4) == _keccak(HELDOUT_DOMAIN + _word(4) + _word(9))


def test_seeds_depend_on_every_input_and_address_case_does_not_matter() -> None:
    base = prompt_seed(1, 2, ADDR, 3, 4)
    variants = {
        prompt_seed(2, 2, ADDR, 3, 4),
        prompt_seed(1, 3, ADDR, 3, 4),
        prompt_seed(1, 2, "0x" + "ac" * 20, 3, 4),
        prompt_seed(1, 2, ADDR, 4, 4),
        prompt_seed(1, 2, ADDR, 3, 5),
    }
    assert base not in variants
    assert len(variants) == 5
    assert prompt_seed(1, 2, ADDR.upper().replace("0X", "0x"), 3, 4) == base
    assert prompt_seed(1, 2, bytes.fromhex("ab" * 20), 3, 4) == base
    group = {sample_seed(1, 2, ADDR, 3, 4, g) for g in range(8)}
    assert len(group) == 8
    assert base not in group


@pytest.mark.parametrize("bad", ["0x1234", "ab" * 21, "0x" + "zz" * 20, b"\x00" * 19])
def test_bad_address_is_a_config_error(bad: str | bytes) -> None:
    with pytest.raises(ConfigError):
        address_bytes(bad)


@pytest.mark.parametrize("bad", [-1, 1 << 256, True])
def test_out_of_range_integers_are_config_errors(bad: int) -> None:
    with pytest.raises(ConfigError):
        prompt_seed(bad, 0, ADDR, 0, 0)


def _reference_randbelow(stream: bytes, n: int) -> tuple[int, int]:
    """The spec of randbelow over an explicit byte stream: (value, bytes consumed)."""
    bits = (n - 1).bit_length()
    nbytes = (bits + 7) // 8
    pos = 0
    while True:
        v = int.from_bytes(stream[pos : pos + nbytes], "big") & ((1 << bits) - 1)
        pos += nbytes
        if v < n:
            return v, pos


def test_rng_stream_and_randbelow_follow_the_spec() -> None:
    seed = b"trustrl"
    stream = b"".join(hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(64))
    rng = DeterministicRng(seed)
    pos = 0
    for n in (10, 3, 1000, 2, 7, 1 << 40, 255, 256, 257) * 5:
        expected, used = _reference_randbelow(stream[pos:], n)
        pos += used
        assert rng.randbelow(n) == expected
    assert rng.read(5) == stream[pos : pos + 5]


def test_rng_fixed_vector() -> None:
    rng = DeterministicRng(b"trustrl")
    assert [rng.randbelow(10) for _ in range(12)] == [4, 3, 3, 9, 2, 6, 5, 5, 3, 7, 6, 3]


def test_rng_is_roughly_uniform_and_in_range() -> None:
    rng = DeterministicRng(b"uniform")
    counts = Counter(rng.randbelow(6) for _ in range(6000))
    assert set(counts) == set(range(6))
    assert all(850 < c < 1150 for c in counts.values())
    assert all(3 <= rng.randint(3, 5) <= 5 for _ in range(100))
    assert rng.choice("xyz") in "xyz"
    assert DeterministicRng(b"x").randbelow(1) == 0


def test_rng_rejects_bad_arguments() -> None:
    rng = DeterministicRng(b"s")
    with pytest.raises(ConfigError):
        rng.randbelow(0)
    with pytest.raises(ConfigError):
        rng.choice([])
    with pytest.raises(ConfigError):
        rng.randint(5, 4)
