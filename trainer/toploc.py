"""TOPLOC proofs of the final hidden states, byte-compatible with PrimeIntellect-ai/toploc 0.1.6.

For every 32 generated tokens the prover takes the chunk's final normalized hidden states (the input of
the LM head) cast to bf16 and flattened, picks the 128 values of largest magnitude, and interpolates the
polynomial of degree <= 127 over GF(65497) through the points

    x = flat index mod m,  y = bf16 bit pattern of the value,

where m is the largest modulus <= 65497 that keeps the 128 x's distinct. The proof is the big-endian u16
``m`` followed by the 128 big-endian u16 coefficients (ascending powers): 258 bytes.

A verifier recomputes the hidden states with one prefill, takes its own top-128, evaluates the proof
polynomial at its own ``index mod m`` and compares the bf16 fields of both sides: exponents exactly (count
of mismatches), signs exactly (the reference never compares them: a prover could flip every sign), and
mantissas statistically (mean and median absolute difference over the points whose exponents match).

Everything here is a pure function that returns statistics; the caller applies thresholds
(`ToplocThresholds`, calibrated for the task's model: see docs/toploc.md). Malformed proofs raise
`ProofFormatError` from `parse_proof` and become failing statistics in `verify_proofs`; hidden states
that cannot be proven raise `HiddenStateError` from `build_proofs` and become failing statistics in
`verify_proofs`.

The field arithmetic is vectorised with numpy over all chunks at once: one Python-level loop of 128
steps per batch of chunks, whatever their number.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from pydantic import BaseModel, ConfigDict

from trainer.config import ToplocThresholds
from trainer.errors import HiddenStateError, ProofFormatError

__all__ = [
    "CHUNK_TOKENS",
    "MIN_MODULUS",
    "NO_MATCH_ERR",
    "PRIME",
    "PROOF_BYTES",
    "TOPK",
    "ChunkStats",
    "Proof",
    "ProofStats",
    "ToplocThresholds",
    "build_proofs",
    "build_proofs_many",
    "expected_proof_count",
    "parse_proof",
    "verify_proofs",
    "verify_proofs_many",
]

PRIME = 65497
"""The field of the polynomial: the largest prime below 2**16 - 38 (the reference's constant)."""
TOPK = 128
"""Points per proof: the 128 values of largest magnitude of a chunk."""
CHUNK_TOKENS = 32
"""Generated tokens covered by one proof (the reference's decode batching size)."""
PROOF_BYTES = 2 + 2 * TOPK
"""Size of one serialized proof: u16 modulus + 128 u16 coefficients."""
MIN_MODULUS = 2**15 + 1
"""Smallest modulus a proof may carry (the reference's Python search stops above 2**15)."""
NO_MATCH_ERR = float(2**64)
"""Mantissa error reported when no exponent matches (the reference's sentinel)."""

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Proof:
    """One parsed proof: the x-modulus and the 128 coefficients (ascending powers) over GF(65497)."""

    modulus: int
    coeffs: tuple[int, ...]

    def to_bytes(self) -> bytes:
        """Serialize as the reference does: big-endian u16 modulus, then big-endian u16 coefficients."""
        return _encode(self.modulus, np.asarray(self.coeffs, dtype=np.int64))

    def evaluate(self, indices: Sequence[int] | Int64Array) -> Int64Array:
        """Values of the polynomial at ``index mod modulus`` for each flat index."""
        x = np.asarray(indices, dtype=np.int64).reshape(1, -1) % self.modulus
        coeffs = np.asarray(self.coeffs, dtype=np.int64).reshape(1, -1)
        return _evaluate(coeffs, x)[0]


class ChunkStats(BaseModel):
    """Comparison of one proof with the verifier's own hidden states of that chunk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    """Chunk number (tokens ``32*index .. 32*index+31``)."""
    n_points: int
    """Points compared: min(128, values in the chunk)."""
    exp_mismatches: int
    """Points whose bf16 exponent differs."""
    sign_mismatches: int
    """Exponent-matched points whose sign differs."""
    mant_err_mean: float
    """Mean |mantissa difference| over exponent-matched points (NO_MATCH_ERR when none match)."""
    mant_err_median: float
    """Upper median of the same differences, as the reference's C++ path computes it."""

    def failures(self, thresholds: ToplocThresholds) -> list[str]:
        """Why this chunk fails ``thresholds`` (empty when it passes)."""
        scale = self.n_points / TOPK
        out = []
        max_exp = math.floor(thresholds.max_exp_mismatches * scale)
        if self.exp_mismatches > max_exp:
            out.append(f"chunk {self.index}: {self.exp_mismatches} exponent mismatches > {max_exp}")
        max_sign = math.floor(thresholds.max_sign_mismatches * scale)
        if self.sign_mismatches > max_sign:
            out.append(f"chunk {self.index}: {self.sign_mismatches} sign mismatches > {max_sign}")
        if self.mant_err_mean > thresholds.max_mant_err_mean:
            out.append(
                f"chunk {self.index}: mantissa error mean {self.mant_err_mean:.3g}"
                f" > {thresholds.max_mant_err_mean}"
            )
        if self.mant_err_median > thresholds.max_mant_err_median:
            out.append(
                f"chunk {self.index}: mantissa error median {self.mant_err_median:.3g}"
                f" > {thresholds.max_mant_err_median}"
            )
        return out


class ProofStats(BaseModel):
    """Everything `verify_proofs` measured for one completion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_tokens: int
    """Tokens whose hidden states the verifier recomputed."""
    expected_proofs: int
    """ceil(n_tokens / 32)."""
    n_proofs: int
    """Proofs submitted."""
    format_errors: tuple[str, ...]
    """Wrong count, malformed proofs (size, modulus, coefficients)."""
    hidden_finite: bool
    """False when the verifier's own hidden states hold NaN/inf after the bf16 cast (nothing compared)."""
    chunks: tuple[ChunkStats, ...]
    """One entry per well-formed proof that has a chunk to compare with."""

    def failures(self, thresholds: ToplocThresholds) -> list[str]:
        """Why these statistics fail ``thresholds`` (empty when they pass)."""
        out = list(self.format_errors)
        if not self.hidden_finite:
            out.append("the recomputed hidden states are not finite")
        for chunk in self.chunks:
            out.extend(chunk.failures(thresholds))
        if self.hidden_finite and not self.format_errors and len(self.chunks) != self.expected_proofs:
            out.append(f"{len(self.chunks)} chunks compared, {self.expected_proofs} expected")
        return out

    def passes(self, thresholds: ToplocThresholds) -> bool:
        """True when the proofs are well formed, complete, and every chunk is within ``thresholds``."""
        return not self.failures(thresholds)

    def worst(self) -> ChunkStats | None:
        """The chunk with the most exponent mismatches (ties: larger mantissa mean), for reports."""
        if not self.chunks:
            return None
        return max(self.chunks, key=lambda c: (c.exp_mismatches, c.sign_mismatches, c.mant_err_mean))


def expected_proof_count(n_tokens: int) -> int:
    """Number of proofs a completion of ``n_tokens`` generated tokens carries: ceil(n_tokens / 32)."""
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    return -(-n_tokens // CHUNK_TOKENS)


def build_proofs(hidden: torch.Tensor) -> list[bytes]:
    """One 258-byte proof per 32 rows of ``hidden`` ([n_tokens, hidden_size], any float dtype).

    The values are cast to bf16 first, as the reference proves them. Raises `HiddenStateError` when the
    shape is not 2-D or a value is NaN/inf after the cast.
    """
    return build_proofs_many([hidden])[0]


def build_proofs_many(hiddens: Sequence[torch.Tensor]) -> list[list[bytes]]:
    """`build_proofs` for several completions at once (a generation batch): one vectorised pass.

    Rollout generation should call this once per batch: the field arithmetic costs about the same
    Python-level work for 1 chunk as for 256, so per-completion calls are several times slower.
    """
    chunks: list[torch.Tensor] = []
    owners: list[int] = []
    for n, hidden in enumerate(hiddens):
        for chunk in _chunks(_as_bf16(hidden)):
            chunks.append(chunk)
            owners.append(n)
    out: list[list[bytes]] = [[] for _ in hiddens]
    for owner, proof in zip(owners, _prove_chunks(chunks), strict=True):
        out[owner].append(proof)
    return out


def parse_proof(data: bytes) -> Proof:
    """Parse one proof strictly: exactly 258 bytes, modulus in [2**15+1, 65497], coefficients < 65497."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProofFormatError(f"a proof must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    if len(raw) != PROOF_BYTES:
        raise ProofFormatError(f"a proof has {PROOF_BYTES} bytes, got {len(raw)}")
    words = np.frombuffer(raw, dtype=">u2").astype(np.int64)
    modulus = int(words[0])
    if not MIN_MODULUS <= modulus <= PRIME:
        raise ProofFormatError(
            f"proof modulus {modulus} outside [{MIN_MODULUS}, {PRIME}] (a null proof has 0)"
        )
    coeffs = words[1:]
    if int(coeffs.max()) >= PRIME:
        raise ProofFormatError(f"proof coefficient {int(coeffs.max())} is not an element of GF({PRIME})")
    return Proof(modulus=modulus, coeffs=tuple(int(c) for c in coeffs))


def verify_proofs(proofs: Sequence[bytes], hidden: torch.Tensor) -> ProofStats:
    """Compare ``proofs`` with the verifier's own hidden states ``hidden`` ([n_tokens, hidden_size]).

    Never raises on bad proofs or non-finite hidden states: they are reported in the statistics, and
    `ProofStats.passes` fails them. Raises `HiddenStateError` only for a hidden tensor that is not 2-D
    floating point (the caller's bug, not the prover's).
    """
    return verify_proofs_many([(proofs, hidden)])[0]


def verify_proofs_many(items: Sequence[tuple[Sequence[bytes], torch.Tensor]]) -> list[ProofStats]:
    """`verify_proofs` for several completions at once: one vectorised evaluation for all their chunks."""
    partial: list[tuple[int, int, list[str], bool]] = []
    pending: list[tuple[int, int, Proof, torch.Tensor]] = []  # (completion, chunk index, proof, chunk)
    for n, (proofs, hidden) in enumerate(items):
        bf16 = _as_bf16(hidden)
        n_tokens = int(bf16.shape[0])
        expected = expected_proof_count(n_tokens)
        errors: list[str] = []
        if len(proofs) != expected:
            errors.append(f"{len(proofs)} proofs for {n_tokens} tokens, expected {expected}")
        finite = bool(torch.isfinite(bf16).all())
        chunks = _chunks(bf16)
        # proofs past the expected count are already a failure; parsing them would only cost time
        for i, raw in enumerate(proofs[:expected]):
            try:
                proof = parse_proof(raw)
            except ProofFormatError as exc:
                errors.append(f"proof {i}: {exc}")
                continue
            if finite:
                pending.append((n, i, proof, chunks[i]))
        partial.append((n_tokens, expected, errors, finite))
    compared = _compare([(i, proof, chunk) for _, i, proof, chunk in pending])
    per_item: list[list[ChunkStats]] = [[] for _ in items]
    for (n, _, _, _), stats in zip(pending, compared, strict=True):
        per_item[n].append(stats)
    return [
        ProofStats(
            n_tokens=n_tokens,
            expected_proofs=expected,
            n_proofs=len(items[n][0]),
            format_errors=tuple(errors),
            hidden_finite=finite,
            chunks=tuple(per_item[n]),
        )
        for n, (n_tokens, expected, errors, finite) in enumerate(partial)
    ]


# --- internals -----------------------------------------------------------------------------------------


def _as_bf16(hidden: torch.Tensor) -> torch.Tensor:
    if not isinstance(hidden, torch.Tensor):
        raise HiddenStateError(f"hidden states must be a torch.Tensor, got {type(hidden).__name__}")
    if hidden.dim() != 2:
        raise HiddenStateError(
            f"hidden states must be [n_tokens, hidden_size], got shape {tuple(hidden.shape)}"
        )
    if not hidden.is_floating_point():
        raise HiddenStateError(f"hidden states must be floating point, got {hidden.dtype}")
    if hidden.shape[1] == 0:
        raise HiddenStateError("hidden states must have a hidden size of at least 1")
    return hidden.detach().to(device="cpu", dtype=torch.bfloat16).contiguous()


def _chunks(bf16: torch.Tensor) -> list[torch.Tensor]:
    # [n_tokens, hidden] -> flat views of 32-token chunks, in the reference's concatenation order
    if bf16.shape[0] == 0:
        return []  # torch.split would return one empty chunk
    return [c.reshape(-1) for c in torch.split(bf16, CHUNK_TOKENS, dim=0)]


def _group_by_size(chunks: Sequence[torch.Tensor]) -> dict[int, list[int]]:
    groups: dict[int, list[int]] = {}
    for i, chunk in enumerate(chunks):
        groups.setdefault(chunk.numel(), []).append(i)
    return groups


def _top_points(stacked: torch.Tensor) -> tuple[Int64Array, Int64Array]:
    """Flat indices and bf16 bit patterns [G, k] of the k = min(128, n) largest magnitudes of [G, n]."""
    k = min(TOPK, stacked.shape[1])
    # the reference's call, batched (row-wise identical, ties included), so the proofs match it byte for byte
    idx = stacked.abs().topk(k, dim=1).indices
    bits = torch.gather(stacked, 1, idx).view(torch.int16).numpy().astype(np.int64) & 0xFFFF
    return idx.numpy().astype(np.int64), bits


def _injective_modulus(x: Int64Array) -> int:
    """Largest m <= 65497 keeping ``x mod m`` distinct (65497 when all x fit: top-k indices are distinct)."""
    if int(x.max()) < PRIME:
        return PRIME
    step = 256
    for start in range(PRIME, MIN_MODULUS - 1, -step):
        ms = np.arange(start, max(start - step, MIN_MODULUS - 1), -1, dtype=np.int64)
        residues = np.sort(x[None, :] % ms[:, None], axis=1)
        ok = ~(residues[:, 1:] == residues[:, :-1]).any(axis=1)
        if ok.any():
            return int(ms[int(ok.argmax())])
    raise HiddenStateError(f"no modulus in [{MIN_MODULUS}, {PRIME}] keeps the top-k indices distinct")


def _prove_chunks(chunks: Sequence[torch.Tensor]) -> list[bytes]:
    out: list[bytes] = [b""] * len(chunks)
    for members in _group_by_size(chunks).values():
        stacked = torch.stack([chunks[i] for i in members])
        if not bool(torch.isfinite(stacked).all()):
            raise HiddenStateError("hidden states hold NaN or inf after the bf16 cast: nothing to prove")
        idx, bits = _top_points(stacked)
        moduli = np.array([_injective_modulus(row) for row in idx], dtype=np.int64)
        coeffs = _interpolate(idx % moduli[:, None], bits)
        if coeffs.shape[1] < TOPK:
            # fewer values than points in the chunk: the same polynomial, padded with zero coefficients
            coeffs = np.pad(coeffs, ((0, 0), (0, TOPK - coeffs.shape[1])))
        for row, i in enumerate(members):
            out[i] = _encode(int(moduli[row]), coeffs[row])
    return out


def _encode(modulus: int, coeffs: Int64Array) -> bytes:
    return modulus.to_bytes(2, "big") + coeffs.astype(">u2").tobytes()


# Field arithmetic in float64: every intermediate is an integer below 2**53, so it is exact, and
# a - floor(a / p) * p is several times faster than numpy's integer modulo.
_PF = float(PRIME)
_PINV = 1.0 / _PF


def _fmod(a: npt.NDArray[np.float64], out: npt.NDArray[np.float64]) -> None:
    """out = a mod p for integer-valued |a| < 2**52, in [0, p] (p itself only for a multiple of p, ~ 0)."""
    q = a * _PINV
    np.floor(q, out=q)
    q *= _PF
    np.subtract(a, q, out=out)


@functools.cache
def _inverses() -> Int64Array:
    """inv[a] = a^(p-2) mod p for every a in GF(p) (inv[0] = 0)."""
    a = np.arange(PRIME, dtype=np.int64)
    result = np.ones(PRIME, dtype=np.int64)
    e = PRIME - 2
    while e:
        if e & 1:
            result = result * a % PRIME
        a = a * a % PRIME
        e >>= 1
    result.setflags(write=False)
    return result


@functools.cache
def _inverses_of_differences() -> npt.NDArray[np.float64]:
    """table[d + p] = 1/d mod p for d in (-p, p), so a difference of residues needs no modulo."""
    inv = _inverses().astype(np.float64)
    table = np.concatenate([inv, inv])
    table.setflags(write=False)
    return table


def _interpolate(x: Int64Array, y: Int64Array) -> Int64Array:
    """Coefficients [G, k] (ascending) of the polynomials of degree < k through (x[g], y[g]) over GF(p).

    Newton's divided differences, then the Newton form expanded by nested multiplication. The arrays are
    [k, G] so that every step is one contiguous numpy operation over all G chunks.
    """
    inv = _inverses_of_differences()
    k = x.shape[1]
    X = np.ascontiguousarray(x.T)  # [k, G], distinct residues < p in each column
    X_shifted = X + PRIME
    dd = (np.ascontiguousarray(y.T) % PRIME).astype(np.float64)  # [k, G]
    for i in range(1, k):
        # order-i divided differences; rows < i hold final Newton coefficients already
        num = dd[i:] - dd[i - 1 : k - 1]
        num *= np.take(inv, X_shifted[i:] - X[: k - i])
        _fmod(num, out=dd[i:])
    # P = dd[k-1]; for i = k-2 .. 0: P = P * (X - x_i) + dd[i]
    neg_x = _PF - X.astype(np.float64)
    poly = np.zeros((k, X.shape[1]))
    poly[0] = dd[k - 1]
    for i in range(k - 2, -1, -1):
        n = k - 1 - i  # coefficients held by P before this step
        top = poly[n - 1].copy()
        new = poly[:n] * neg_x[i]
        new[1:] += poly[: n - 1]
        new[0] += dd[i]
        _fmod(new, out=poly[:n])
        poly[n] = top
    poly[poly >= _PF] -= _PF
    return np.ascontiguousarray(poly.T).astype(np.int64)


def _evaluate(coeffs: Int64Array, x: Int64Array) -> Int64Array:
    """Evaluate the polynomials coeffs[g] (ascending) at x[g, :] over GF(p).

    A few chunks: a power table x^t mod p built by doubling (7 numpy steps), then exact float64 dot
    products (128 products below p**2 sum to less than 2**53). Many chunks: Horner's rule, whose 128
    steps each cover all chunks at once and touch far less memory.
    """
    xf = x.astype(np.float64)
    cf = coeffs.astype(np.float64)
    n_coeffs = coeffs.shape[1]
    if x.shape[0] <= 8:
        powers = np.ones((*x.shape, n_coeffs))
        x_to_b = xf.copy()  # x^b mod p
        b = 1
        while b < n_coeffs:
            e = min(2 * b, n_coeffs)
            block = powers[:, :, : e - b] * x_to_b[:, :, None]
            _fmod(block, out=powers[:, :, b:e])
            x_to_b *= x_to_b
            _fmod(x_to_b, out=x_to_b)
            b = e
        powers *= cf[:, None, :]
        result = powers.sum(axis=2)
        _fmod(result, out=result)
    else:
        result = np.zeros(x.shape)
        for j in range(n_coeffs - 1, -1, -1):
            result *= xf
            result += cf[:, j : j + 1]
            _fmod(result, out=result)
    result[result >= _PF] -= _PF
    return result.astype(np.int64)


def _compare(items: Sequence[tuple[int, Proof, torch.Tensor]]) -> list[ChunkStats]:
    """Statistics of (chunk index, proof, own flat bf16 chunk), evaluated together per chunk size."""
    stats: dict[int, ChunkStats] = {}
    for members in _group_by_size([chunk for _, _, chunk in items]).values():
        idx, own = _top_points(torch.stack([items[n][2] for n in members]))
        coeffs = np.array([items[n][1].coeffs for n in members], dtype=np.int64)
        moduli = np.array([items[n][1].modulus for n in members], dtype=np.int64)
        claimed = _evaluate(coeffs, idx % moduli[:, None])
        exp_ok = ((claimed >> 7) & 0xFF) == ((own >> 7) & 0xFF)
        sign_bad = exp_ok & ((claimed >> 15) != (own >> 15))
        mant_err = np.abs((claimed & 0x7F) - (own & 0x7F))
        for row, n in enumerate(members):
            errs = np.sort(mant_err[row][exp_ok[row]])
            if errs.size:
                mean, median = float(errs.mean()), float(errs[errs.size // 2])
            else:
                mean = median = NO_MATCH_ERR
            stats[n] = ChunkStats(
                index=items[n][0],
                n_points=int(own.shape[1]),
                exp_mismatches=int((~exp_ok[row]).sum()),
                sign_mismatches=int(sign_bad[row].sum()),
                mant_err_mean=mean,
                mant_err_median=median,
            )
    return [stats[n] for n in range(len(items))]
