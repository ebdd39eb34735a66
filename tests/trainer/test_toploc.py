"""TOPLOC proofs: format, field arithmetic, interoperability with the reference library, robustness."""

from __future__ import annotations

import random

import numpy as np
import pytest
import toploc as ref
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from toploc.C.csrc.poly import verify_proofs_bytes as ref_verify_tensor

from trainer.errors import HiddenStateError, ProofFormatError, TrustrlError
from trainer.toploc import (
    CHUNK_TOKENS,
    PRIME,
    PROOF_BYTES,
    TOPK,
    Proof,
    ProofStats,
    ToplocThresholds,
    build_proofs,
    build_proofs_many,
    expected_proof_count,
    parse_proof,
    verify_proofs,
    verify_proofs_many,
)

STRICT = ToplocThresholds(
    max_exp_mismatches=0, max_sign_mismatches=0, max_mant_err_mean=0, max_mant_err_median=0
)


def _hidden(n_tokens: int, hidden_size: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_tokens, hidden_size, generator=gen) * scale


def _ref_proofs(hidden: torch.Tensor) -> list[bytes]:
    """The reference's proofs of generated tokens: decode batches of 32, no prefill proof."""
    bf16 = hidden.to(torch.bfloat16)
    return list(ref.build_proofs_bytes([row for row in bf16], CHUNK_TOKENS, TOPK, skip_prefill=True))


def _ref_stats(proofs: list[bytes], hidden: torch.Tensor) -> list[tuple[int, float, float]]:
    results = ref_verify_tensor(hidden.to(torch.bfloat16), proofs, CHUNK_TOKENS, TOPK)
    return [(r.exp_mismatches, r.mant_err_mean, r.mant_err_median) for r in results]


def _our_stats(stats: ProofStats) -> list[tuple[int, float, float]]:
    return [(c.exp_mismatches, c.mant_err_mean, c.mant_err_median) for c in stats.chunks]


def _interpolate_slow(xs: list[int], ys: list[int]) -> list[int]:
    """Lagrange interpolation over GF(p) with Python integers (independent of the vectorised code)."""
    n = len(xs)
    coeffs = [0] * n
    for i in range(n):
        basis = [1]  # prod_{j != i} (X - x_j), ascending
        denom = 1
        for j in range(n):
            if j == i:
                continue
            basis = [(a - xs[j] * b) % PRIME for a, b in zip([0, *basis], [*basis, 0], strict=True)]
            denom = denom * (xs[i] - xs[j]) % PRIME
        scale = ys[i] * pow(denom, PRIME - 2, PRIME) % PRIME
        coeffs = [(c + scale * b) % PRIME for c, b in zip(coeffs, basis, strict=True)]
    return coeffs


# --- format and field arithmetic ---------------------------------------------------------------------


def test_expected_proof_count() -> None:
    assert [expected_proof_count(n) for n in (0, 1, 31, 32, 33, 64, 65)] == [0, 1, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match=">= 0"):
        expected_proof_count(-1)


@pytest.mark.parametrize(("n_tokens", "hidden_size"), [(1, 128), (32, 64), (33, 128), (100, 96), (0, 64)])
def test_build_proofs_count_size_and_self_verification(n_tokens: int, hidden_size: int) -> None:
    hidden = _hidden(n_tokens, hidden_size)
    proofs = build_proofs(hidden)
    assert len(proofs) == expected_proof_count(n_tokens)
    assert all(len(p) == PROOF_BYTES for p in proofs)
    stats = verify_proofs(proofs, hidden)
    assert stats.passes(STRICT), stats.failures(STRICT)
    assert len(stats.chunks) == len(proofs)


def test_interpolant_passes_through_points_and_matches_lagrange() -> None:
    rng = random.Random(1)
    for n_tokens, hidden_size in [(32, 128), (3, 50), (1, 64)]:
        hidden = _hidden(n_tokens, hidden_size, seed=rng.randrange(1000))
        (raw,) = build_proofs(hidden)
        proof = parse_proof(raw)
        flat = hidden.to(torch.bfloat16).reshape(-1)
        k = min(TOPK, flat.numel())
        idx = flat.abs().topk(k).indices
        bits = (flat[idx].view(torch.int16).numpy().astype(np.int64) & 0xFFFF).tolist()
        assert proof.evaluate(idx.numpy()).tolist() == bits
        expected = _interpolate_slow([int(i) % proof.modulus for i in idx], bits)
        assert list(proof.coeffs) == expected + [0] * (TOPK - k)


def test_proof_round_trips_through_bytes() -> None:
    (raw,) = build_proofs(_hidden(32, 128, seed=3))
    proof = parse_proof(raw)
    assert proof.to_bytes() == raw
    assert isinstance(proof, Proof)
    assert raw[:2] == proof.modulus.to_bytes(2, "big")


def test_build_proofs_many_equals_one_by_one() -> None:
    hiddens = [_hidden(n, 64, seed=n) for n in (1, 5, 32, 40, 77, 0)]
    assert build_proofs_many(hiddens) == [build_proofs(h) for h in hiddens]


def test_dtype_is_cast_to_bf16_first() -> None:
    hidden = _hidden(40, 64, seed=4)
    expected = build_proofs(hidden.to(torch.bfloat16))
    assert build_proofs(hidden) == expected  # fp32: the reference would return null proofs
    assert build_proofs(hidden.to(torch.float64)) == expected
    assert build_proofs(hidden.to(torch.bfloat16).to(torch.float16)) == expected


# --- interoperability with the reference library (toploc 0.1.6) --------------------------------------


@pytest.mark.parametrize(
    ("n_tokens", "hidden_size", "seed"),
    [(32, 128, 0), (100, 128, 1), (64, 64, 2), (7, 2048, 3), (70, 4096, 4)],
)
def test_same_bytes_as_reference(n_tokens: int, hidden_size: int, seed: int) -> None:
    hidden = _hidden(n_tokens, hidden_size, seed=seed)
    assert build_proofs(hidden) == _ref_proofs(hidden)


def test_same_bytes_as_reference_with_many_ties() -> None:
    # coarse values: many equal magnitudes around the top-128 boundary
    hidden = (_hidden(64, 128, seed=5) * 2).round() / 2
    assert build_proofs(hidden) == _ref_proofs(hidden)


def test_reduced_modulus_matches_reference() -> None:
    # the two largest values sit 65497 apart, so x = index mod 65497 would collide
    hidden = _hidden(32, 4096, seed=6) * 0.01
    flat = hidden.view(-1)
    flat[10] = 50.0
    flat[10 + PRIME] = -60.0
    ours = build_proofs(hidden)
    assert parse_proof(ours[0]).modulus < PRIME
    assert ours == _ref_proofs(hidden)
    assert verify_proofs(ours, hidden).passes(STRICT)


def test_reference_python_path_forgets_the_modulus() -> None:
    # documents a weakness we do not share: the reference's list-input verifier skips `mod m`
    hidden = _hidden(32, 4096, seed=7) * 0.01
    flat = hidden.view(-1)
    flat[3] = 40.0
    flat[3 + PRIME] = 45.0
    proofs = build_proofs(hidden)
    bf16 = hidden.to(torch.bfloat16)
    broken = ref.verify_proofs_bytes([row for row in bf16], proofs, CHUNK_TOKENS, TOPK, skip_prefill=True)
    assert broken[0].exp_mismatches > 0
    assert verify_proofs(proofs, hidden).chunks[0].exp_mismatches == 0


@pytest.mark.parametrize("noise", [0.0, 0.004, 0.02, 0.2])
def test_reference_proofs_verify_here_with_the_reference_statistics(noise: float) -> None:
    hidden = _hidden(96, 128, seed=8)
    proofs = _ref_proofs(hidden)
    replay = hidden + noise * _hidden(96, 128, seed=9)
    ours = verify_proofs(proofs, replay)
    assert _our_stats(ours) == _ref_stats(proofs, replay)
    assert all(c.sign_mismatches == 0 for c in ours.chunks) or noise >= 0.2


@pytest.mark.parametrize("noise", [0.0, 0.01, 0.5])
def test_our_proofs_verify_in_the_reference(noise: float) -> None:
    hidden = _hidden(80, 96, seed=10)
    proofs = build_proofs(hidden)
    replay = hidden + noise * _hidden(80, 96, seed=11)
    assert _ref_stats(proofs, replay) == _our_stats(verify_proofs(proofs, replay))


def test_sign_flip_passes_the_reference_but_not_us() -> None:
    hidden = _hidden(64, 128, seed=12)
    forged = build_proofs(-hidden)
    ref_stats = _ref_stats(forged, hidden)
    assert all(exp == 0 and mean == 0 for exp, mean, _ in ref_stats)  # the reference accepts
    stats = verify_proofs(forged, hidden)
    assert all(c.sign_mismatches == TOPK for c in stats.chunks)
    assert not stats.passes(ToplocThresholds())
    assert any("sign" in f for f in stats.failures(ToplocThresholds()))


# --- statistics and thresholds -----------------------------------------------------------------------


def test_wrong_hidden_states_fail() -> None:
    hidden = _hidden(64, 128, seed=13)
    proofs = build_proofs(hidden)
    other = verify_proofs(proofs, _hidden(64, 128, seed=14))
    assert not other.passes(ToplocThresholds())
    worst = other.worst()
    assert worst is not None
    assert worst.exp_mismatches > 64


def test_threshold_scaling_for_short_chunks() -> None:
    hidden = _hidden(1, 64, seed=15)  # 64 values: 64 points
    proofs = build_proofs(hidden)
    stats = verify_proofs(proofs, hidden)
    assert stats.chunks[0].n_points == 64
    tampered = verify_proofs(proofs, hidden * 1.7)
    assert not tampered.passes(ToplocThresholds())


def test_thresholds_model_is_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        ToplocThresholds.model_validate({"max_exp_mismatches": 3, "bogus": 1})
    with pytest.raises(ValueError, match="greater than or equal"):
        ToplocThresholds(max_exp_mismatches=-1)
    thresholds = ToplocThresholds()
    with pytest.raises(ValueError, match="frozen"):
        thresholds.max_exp_mismatches = 99  # type: ignore[misc]


# --- robustness --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "258 bytes"),
        (b"\xff\xd9" + b"\x00" * 255, "258 bytes"),
        (b"\xff\xd9" + b"\x00" * 257, "258 bytes"),
        (b"\x00" * PROOF_BYTES, "null proof"),  # the reference's null proof
        ((PRIME + 1).to_bytes(2, "big") + b"\x00" * 256, "outside"),
        ((2**15).to_bytes(2, "big") + b"\x00" * 256, "outside"),
        (PRIME.to_bytes(2, "big") + b"\xff\xff" + b"\x00" * 254, "GF"),
    ],
)
def test_parse_proof_rejects_malformed(data: bytes, message: str) -> None:
    with pytest.raises(ProofFormatError, match=message):
        parse_proof(data)


def test_parse_proof_rejects_non_bytes() -> None:
    with pytest.raises(ProofFormatError, match="bytes"):
        parse_proof("ff" * 129)  # type: ignore[arg-type]
    assert issubclass(ProofFormatError, TrustrlError)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_parse_proof_never_crashes_on_random_bytes(data: bytes) -> None:
    try:
        proof = parse_proof(data)
    except ProofFormatError:
        return
    assert proof.to_bytes() == data


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=5), st.integers(0, 100))
def test_verify_proofs_never_crashes_on_random_proofs(proofs: list[bytes], n_tokens: int) -> None:
    stats = verify_proofs(proofs, _hidden(n_tokens, 32, seed=n_tokens))
    if n_tokens or proofs:
        assert not stats.passes(ToplocThresholds(max_exp_mismatches=TOPK, max_sign_mismatches=TOPK))


def test_random_well_formed_proof_fails() -> None:
    rng = random.Random(16)
    fake = PRIME.to_bytes(2, "big") + b"".join(rng.randrange(PRIME).to_bytes(2, "big") for _ in range(TOPK))
    stats = verify_proofs([fake], _hidden(32, 128, seed=17))
    assert not stats.format_errors
    assert stats.chunks[0].exp_mismatches > 100
    assert not stats.passes(ToplocThresholds())


def test_wrong_count_fails_with_a_reason() -> None:
    hidden = _hidden(70, 64, seed=18)
    proofs = build_proofs(hidden)
    for bad in (proofs[:-1], [*proofs, proofs[0]], [], proofs[:1] * 5):
        stats = verify_proofs(bad, hidden)
        assert not stats.passes(ToplocThresholds())
        assert any("expected 3" in f for f in stats.failures(ToplocThresholds()))


def test_null_and_truncated_proofs_fail_without_crashing() -> None:
    hidden = _hidden(64, 64, seed=19)
    proofs = build_proofs(hidden)
    for bad in ([b"\x00" * PROOF_BYTES, proofs[1]], [proofs[0][:-1], proofs[1]], [proofs[0], b""]):
        stats = verify_proofs(bad, hidden)
        assert stats.format_errors
        assert not stats.passes(ToplocThresholds())
        assert len(stats.chunks) == 1  # the good proof is still compared, for the report


def test_flipped_proof_bytes_fail() -> None:
    hidden = _hidden(32, 128, seed=20)
    (raw,) = build_proofs(hidden)
    for position in (2, 3, 100, 257):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        stats = verify_proofs([bytes(tampered)], hidden)
        assert not stats.passes(ToplocThresholds()), position


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e39])
def test_non_finite_hidden_states(bad: float) -> None:
    hidden = _hidden(40, 64, seed=21)
    proofs = build_proofs(hidden)
    broken = hidden.to(torch.float64)
    broken[5, 7] = bad  # 1e39 is finite in fp64 but inf in bf16
    with pytest.raises(HiddenStateError, match="NaN or inf"):
        build_proofs(broken)
    with pytest.raises(HiddenStateError):
        build_proofs_many([hidden, broken])
    stats = verify_proofs(proofs, broken)
    assert not stats.hidden_finite
    assert not stats.passes(ToplocThresholds())


@pytest.mark.parametrize(
    "hidden",
    [torch.zeros(4), torch.zeros(2, 3, 4), torch.zeros(3, 0), torch.zeros(3, 4, dtype=torch.long), [[1.0]]],
)
def test_bad_hidden_shapes_raise_clear_errors(hidden: object) -> None:
    with pytest.raises(HiddenStateError):
        build_proofs(hidden)  # type: ignore[arg-type]
    with pytest.raises(HiddenStateError):
        verify_proofs([], hidden)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_chunks", [1, 3, 9, 40])
def test_batched_verification_equals_one_by_one(n_chunks: int) -> None:
    # few chunks and many chunks take different evaluation paths; both must agree with the reference
    hidden = _hidden(32 * n_chunks - 5, 64, seed=22)
    proofs = _ref_proofs(hidden)
    replay = hidden + 0.01 * _hidden(32 * n_chunks - 5, 64, seed=23)
    many = verify_proofs_many([(proofs, replay), (proofs[:1], replay[:32])])
    assert many[0] == verify_proofs(proofs, replay)
    assert _our_stats(many[0]) == _ref_stats(proofs, replay)
    assert many[1] == verify_proofs(proofs[:1], replay[:32])
