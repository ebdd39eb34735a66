"""DiLoCo outer side: pseudo-gradients, their compression, and deterministic aggregation.

Pseudo-gradient of a trainer: `delta = base - theta_H` (fp32 weights only).

Aggregation of the accepted updates (a validator and an auditor must get the same bytes on any
machine, so only correctly rounded IEEE element-wise operations are used, one at a time):

    with clipping (cfg.clip = c), per trainer i, once:
        n_i  = sqrt(fsum over every element of every tensor of fp64(delta_i)^2)
                                                            (squares of fp32 values are exact in fp64 and
                                                             math.fsum rounds the exact sum once: the
                                                             same norm on every machine, in any order)
        med  = median of the n_i (the mean of the two middle ones for an even count)
        s_i  = c * med / n_i  if n_i > c * med, else 1      (fp64; no scaling at all when s_i = 1)
    for each element, trainers sorted by address (20 bytes, ascending):
        acc  = 0.0 (fp64)
        acc  = acc + (fp64(w_i) * (fp64(delta_i) * s_i))   w_i: integer work units; mul, then add
        avg  = acc / fp64(sum_i w_i)                        one division
        m'   = mu * fp64(m) + avg                           (mu > 0 only; m = 0 at the first round)
        step = avg + mu * m'                                Nesterov (step = avg when mu == 0)
        new  = fp32(fp64(base) - lr * step)                 one rounding to fp32
        m'   -> fp32 (stored with the checkpoint when mu > 0)

Plain averaging (lr 1, momentum 0) is the default: DESIGN.md measured the Nesterov outer step hurting
at small H. Clipping to a multiple of the median norm bounds how far one accepted update can move the
model, whatever its size, while a majority of honest updates sets the median (docs/protocol.md, "Why
cheating does not pay"). A global checkpoint is canonical bytes of `model/<name>` (weights) and, when
momentum is used, `outer_momentum/<name>`.

Updates travel as canonical bytes too: `delta/<name>` (fp32), or for int8 `q/<name>` (int8, the
tensor's shape) and `scale/<name>` (fp32, [rows] for per-row scales, [1] per tensor), where
value = fp32(q) * scale, scale = max|row| / 127 and q = round-half-even(x / scale) in [-127, 127].

Everything loaded here obeys the tensor rules (`trainer.checkpoint`: fp32, finite, |x| <= MAX_ABS), the
decoded update and the aggregate included; a breach raises `CheckpointError` (`AbsurdValueError` for
values), never reaches the model.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from trainer.checkpoint import canonical_bytes, check_values, load_tensors
from trainer.config import Compression, OuterConfig
from trainer.derive import address_bytes
from trainer.errors import CheckpointError, ConfigError

__all__ = [
    "GlobalState",
    "TrainerUpdate",
    "aggregate",
    "clip_scales",
    "compress_int8",
    "decode_update",
    "decompress_int8",
    "encode_update",
    "global_checkpoint_bytes",
    "load_global_checkpoint",
    "pseudo_gradient",
    "update_norm",
]

Tensors = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class TrainerUpdate:
    """One accepted submission: who, how much work, and its (decoded, fp32) pseudo-gradient."""

    address: str | bytes
    work_units: int
    delta: Tensors


@dataclass(frozen=True)
class GlobalState:
    """The next global checkpoint: fp32 weights and (momentum > 0 only) fp32 outer momentum."""

    weights: dict[str, torch.Tensor]
    momentum: dict[str, torch.Tensor] | None

    def to_bytes(self) -> bytes:
        """Canonical bytes (what validators hash and attest)."""
        return global_checkpoint_bytes(self.weights, self.momentum)


def _check_float32(name: str, t: torch.Tensor) -> None:
    if t.dtype != torch.float32:
        raise ConfigError(f"{name}: weights and updates are fp32, got {t.dtype}")


def pseudo_gradient(base: Tensors, final: Tensors) -> dict[str, torch.Tensor]:
    """delta = base - final for every weight (fp32)."""
    if set(base) != set(final):
        raise ConfigError("base and final weights have different names")
    out: dict[str, torch.Tensor] = {}
    for name in sorted(base):
        _check_float32(name, base[name])
        _check_float32(name, final[name])
        if base[name].shape != final[name].shape:
            raise ConfigError(
                f"{name}: shapes differ {tuple(base[name].shape)} vs {tuple(final[name].shape)}"
            )
        out[name] = (base[name].detach().cpu() - final[name].detach().cpu()).contiguous()
    return out


def _rows(t: torch.Tensor, granularity: str) -> torch.Tensor:
    """A 2-D view [rows, cols]: rows = first dimension (per-row), or one row (per-tensor, and 0/1-D)."""
    if granularity == "row" and t.dim() >= 2:
        return t.reshape(t.shape[0], -1)
    return t.reshape(1, -1)


def compress_int8(
    delta: Tensors, granularity: str = "row"
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Symmetric int8 quantization: (q [shape] int8, scales [rows] fp32). Error <= scale / 2 per element."""
    if granularity not in ("row", "tensor"):
        raise ConfigError(f"granularity must be 'row' or 'tensor', got {granularity!r}")
    qs: dict[str, torch.Tensor] = {}
    scales: dict[str, torch.Tensor] = {}
    for name in sorted(delta):
        t = delta[name]
        _check_float32(name, t)
        if not bool(torch.isfinite(t).all()):
            raise ConfigError(f"{name}: cannot compress NaN or inf")
        rows = _rows(t.detach().cpu(), granularity)
        scale = rows.abs().amax(dim=1) / 127.0 if rows.shape[1] else torch.zeros(rows.shape[0])
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        q = torch.round(rows / safe[:, None]).clamp_(-127, 127).to(torch.int8)
        qs[name] = q.reshape(t.shape).contiguous()
        scales[name] = scale.to(torch.float32).contiguous()
    return qs, scales


def decompress_int8(qs: Tensors, scales: Tensors) -> dict[str, torch.Tensor]:
    """fp32(q) * scale, row by row (exact inverse of the encoding's layout)."""
    if set(qs) != set(scales):
        raise CheckpointError("int8 update: q and scale names differ")
    out: dict[str, torch.Tensor] = {}
    for name in sorted(qs):
        q, scale = qs[name], scales[name]
        if q.dtype != torch.int8 or scale.dtype != torch.float32 or scale.dim() != 1:
            raise CheckpointError(f"{name}: int8 update needs int8 q and a 1-D fp32 scale")
        if not bool(torch.isfinite(scale).all()) or bool((scale < 0).any()):
            raise CheckpointError(f"{name}: scales must be finite and >= 0")
        if q.dim() >= 2 and scale.shape[0] == q.shape[0] and scale.shape[0] != 1:
            rows = q.reshape(q.shape[0], -1)
        elif scale.shape[0] == 1:
            rows = q.reshape(1, -1)
        else:
            raise CheckpointError(f"{name}: {scale.shape[0]} scales do not fit shape {tuple(q.shape)}")
        out[name] = (rows.to(torch.float32) * scale[:, None]).reshape(q.shape).contiguous()
    return out


def encode_update(delta: Tensors, compression: Compression) -> bytes:
    """Canonical bytes of a pseudo-gradient, raw fp32 or int8 + scales."""
    if compression.kind == "none":
        for name, t in delta.items():
            _check_float32(name, t)
        return canonical_bytes({f"delta/{k}": v for k, v in delta.items()})
    qs, scales = compress_int8(delta, compression.granularity)
    tensors = {f"q/{k}": v for k, v in qs.items()}
    tensors.update({f"scale/{k}": v for k, v in scales.items()})
    return canonical_bytes(tensors)


def decode_update(
    data: bytes, shapes: Mapping[str, torch.Size] | None = None, *, max_bytes: int | None = None
) -> dict[str, torch.Tensor]:
    """fp32 pseudo-gradient from update bytes (either encoding), checked against `shapes` if given."""
    tensors = load_tensors(data, max_bytes=max_bytes, require_canonical=True)
    if tensors and all(k.startswith("delta/") for k in tensors):
        delta = {k[len("delta/") :]: v for k, v in tensors.items()}
        for name, t in delta.items():
            if t.dtype != torch.float32:
                raise CheckpointError(f"{name}: update must be fp32, got {t.dtype}")
    elif tensors and all(k.startswith(("q/", "scale/")) for k in tensors):
        qs = {k[2:]: v for k, v in tensors.items() if k.startswith("q/")}
        scales = {k[len("scale/") :]: v for k, v in tensors.items() if k.startswith("scale/")}
        delta = decompress_int8(qs, scales)
    else:
        raise CheckpointError("update holds neither delta/* nor q/* + scale/* tensors only")
    check_values(delta)
    if shapes is not None:
        if set(shapes) != set(delta):
            raise CheckpointError("update names do not match the model's weights")
        for name, shape in shapes.items():
            if delta[name].shape != shape:
                raise CheckpointError(f"{name}: update shape {tuple(delta[name].shape)} != {tuple(shape)}")
    return delta


def update_norm(delta: Tensors) -> float:
    """The L2 norm of a pseudo-gradient over every element, identical on every machine: the squares of fp32
    values are exact in fp64 and `math.fsum` rounds their exact sum once, whatever the order."""
    for name, t in delta.items():
        _check_float32(name, t)
    squares = (
        t.detach().cpu().to(torch.float64).square().reshape(-1).tolist() for _, t in sorted(delta.items())
    )
    return math.sqrt(math.fsum(itertools.chain.from_iterable(squares)))


def clip_scales(norms: Sequence[float], clip: float | None) -> list[float]:
    """Per update, the factor that brings its norm down to `clip` x the median of `norms` (1.0 when it is
    within; all 1.0 without clipping). The median of an even count is the mean of the two middle ones."""
    if clip is None or not norms:
        return [1.0] * len(norms)
    ordered = sorted(norms)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0
    limit = clip * median
    return [limit / n if n > limit else 1.0 for n in norms]


def aggregate(
    base: Tensors,
    updates: Sequence[TrainerUpdate],
    cfg: OuterConfig = OuterConfig(),
    momentum: Tensors | None = None,
) -> GlobalState:
    """The next global state from the accepted updates (order of `updates` does not matter). A state
    that breaks the tensor rules (outer steps can grow values) raises `AbsurdValueError`."""
    if not updates:
        raise ConfigError("aggregation needs at least one accepted update")
    keyed = sorted(((address_bytes(u.address), u) for u in updates), key=lambda x: x[0])
    addresses = [k for k, _ in keyed]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("two updates from the same trainer address")
    for _, u in keyed:
        if isinstance(u.work_units, bool) or not isinstance(u.work_units, int) or u.work_units <= 0:
            raise ConfigError(f"work units must be a positive integer, got {u.work_units!r}")
        if set(u.delta) != set(base):
            raise ConfigError("an update's names differ from the base weights'")
    total = sum(u.work_units for _, u in keyed)
    if total >= 1 << 53:
        raise ConfigError("total work units exceed 2**53 (not exact in fp64)")
    use_momentum = cfg.momentum > 0
    if momentum is not None and set(momentum) != set(base):
        raise ConfigError("outer momentum names differ from the base weights'")
    mu, lr = float(cfg.momentum), float(cfg.lr)
    scales = clip_scales([update_norm(u.delta) for _, u in keyed], cfg.clip)

    weights: dict[str, torch.Tensor] = {}
    new_momentum: dict[str, torch.Tensor] = {}
    for name in sorted(base):
        b = base[name].detach().cpu()
        _check_float32(name, b)
        acc = torch.zeros(b.shape, dtype=torch.float64)
        for (_, u), scale in zip(keyed, scales, strict=True):
            d = u.delta[name].detach().cpu()
            _check_float32(name, d)
            if d.shape != b.shape:
                raise ConfigError(f"{name}: update shape {tuple(d.shape)} != base {tuple(b.shape)}")
            if not bool(torch.isfinite(d).all()):
                raise ConfigError(f"{name}: an update holds NaN or inf")
            clipped = d.to(torch.float64) if scale == 1.0 else torch.mul(d.to(torch.float64), scale)
            weighted = torch.mul(clipped, float(u.work_units))
            acc = torch.add(acc, weighted)
        avg = torch.div(acc, float(total))
        if use_momentum:
            m = (
                momentum[name].detach().cpu().to(torch.float64)
                if momentum is not None
                else torch.zeros_like(avg)
            )
            m_new = torch.add(torch.mul(m, mu), avg)
            step = torch.add(avg, torch.mul(m_new, mu))
            new_momentum[name] = m_new.to(torch.float32)
        else:
            step = avg
        new = torch.sub(b.to(torch.float64), torch.mul(step, lr))
        weights[name] = new.to(torch.float32).contiguous()
    check_values(weights)
    check_values(new_momentum)
    return GlobalState(weights=weights, momentum=new_momentum if use_momentum else None)


def global_checkpoint_bytes(weights: Tensors, momentum: Tensors | None = None) -> bytes:
    """Canonical bytes of a global checkpoint: `model/<name>` [+ `outer_momentum/<name>`]."""
    tensors = {f"model/{k}": v for k, v in weights.items()}
    if momentum is not None:
        tensors.update({f"outer_momentum/{k}": v for k, v in momentum.items()})
    return canonical_bytes(tensors)


def load_global_checkpoint(
    data: bytes, *, max_bytes: int | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None]:
    """(weights, momentum or None) of a global checkpoint's bytes: fp32 tensors under the tensor rules. The
    momentum covers the trained weights (all of them, or the LoRA adapters: `trainer.lora`)."""
    tensors = load_tensors(data, max_bytes=max_bytes, require_canonical=True)
    for name, t in tensors.items():
        if t.dtype != torch.float32:
            raise CheckpointError(f"{name}: a global checkpoint is fp32, got {t.dtype}")
    weights = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
    momentum = {k[len("outer_momentum/") :]: v for k, v in tensors.items() if k.startswith("outer_momentum/")}
    if len(weights) + len(momentum) != len(tensors) or not weights:
        raise CheckpointError("a global checkpoint holds model/* and optionally outer_momentum/* only")
    if momentum and not set(momentum) <= set(weights):
        raise CheckpointError("outer momentum names a tensor the weights do not have")
    return weights, (momentum or None)
