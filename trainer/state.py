"""Training states theta_j: weights + AdamW state in canonical bytes, and single-step re-execution.

A state is `checkpoint.canonical_bytes` of these tensors (names sorted by the serializer):

    model/<name>               every trained entry of model.state_dict() (fp32 master weights): all of them,
                               or with LoRA the adapters only (`trainer.lora`; the frozen base is the round's
                               global checkpoint, never part of a state)
    optim/<name>/exp_avg       AdamW first moment of parameter <name> (fp32, its shape)
    optim/<name>/exp_avg_sq    AdamW second moment (fp32, its shape)
    optim/<name>/step          AdamW step count (fp32 scalar, as torch keeps it)

theta_0 is the round's base weights with a fresh optimizer state (zero moments, step 0), which is
exactly what AdamW would create lazily. Hyper-parameters (lr, betas, ...) are not in the state; they
come from the task's `GrpoConfig`. Its content hash is sha256 of the bytes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from transformers import PretrainedConfig

from trainer.checkpoint import (
    canonical_bytes,
    canonical_hash,
    copy_into,
    load_tensors,
    load_weights,
)
from trainer.config import GrpoConfig
from trainer.device import compute_device
from trainer.errors import CheckpointError
from trainer.grpo import behaviour_logprobs, make_optimizer, train_step
from trainer.rollout import Rollout

__all__ = [
    "StepDistances",
    "adamw_weights",
    "fresh_optimizer",
    "load_state",
    "load_trained",
    "max_abs_diff",
    "reexecute_step",
    "state_bytes",
    "state_digest",
    "state_hash",
    "state_tensors",
    "state_weights",
    "step_distances",
    "trained_state_dict",
]

_MOMENTS = ("exp_avg", "exp_avg_sq")


def _param_names(model: torch.nn.Module) -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


def _optimizer_params(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> list[tuple[str, torch.Tensor]]:
    names = _param_names(model)
    out: list[tuple[str, torch.Tensor]] = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            if id(p) not in names:
                raise CheckpointError("the optimizer holds a parameter that is not the model's")
            out.append((names[id(p)], p))
    return out


def fresh_optimizer(model: torch.nn.Module, cfg: GrpoConfig) -> torch.optim.AdamW:
    """AdamW for `model` with its state materialized as a fresh one (zero moments, step 0)."""
    optimizer = make_optimizer(model, cfg)
    for p in model.parameters():
        if not p.requires_grad:
            continue
        optimizer.state[p] = {
            "step": torch.tensor(0.0, dtype=torch.float32),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }
    return optimizer


def trained_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict without its frozen parameters (all of it without LoRA), detached."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach() for k, v in model.state_dict().items() if k not in frozen}


def load_trained(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy `tensors` into the model's trained weights, which must have exactly these names and shapes."""
    copy_into(trained_state_dict(model), tensors)


def state_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The named tensors of a training state (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v for k, v in trained_state_dict(model).items()}
    for name, p in _optimizer_params(model, optimizer):
        st = optimizer.state.get(p)
        if st is None or len(st) == 0:
            st = {
                "step": torch.tensor(0.0),
                "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.zeros_like(p),
            }
        if set(st) != {"step", *_MOMENTS}:
            raise CheckpointError(f"optimizer state of {name} has keys {sorted(st)}, expected AdamW's")
        tensors[f"optim/{name}/step"] = torch.as_tensor(st["step"], dtype=torch.float32).detach().reshape(())
        for key in _MOMENTS:
            tensors[f"optim/{name}/{key}"] = st[key].detach()
    return tensors


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bytes:
    """Canonical bytes of (weights, AdamW state)."""
    return canonical_bytes(state_tensors(model, optimizer))


def state_hash(data: bytes) -> bytes:
    """sha256 of a state's bytes (a leaf of the stateRoot Merkle tree)."""
    return hashlib.sha256(data).digest()


def state_digest(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> bytes:
    """`state_hash(state_bytes(model, optimizer))`, streamed without building the bytes."""
    return canonical_hash(state_tensors(model, optimizer))


def load_state(
    data: bytes, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, max_bytes: int | None = None
) -> None:
    """Load a state into `model` and `optimizer`; names, shapes and dtypes must match exactly. With LoRA
    the model must already hold the round's base (a state holds the adapters only)."""
    tensors = load_tensors(data, max_bytes=max_bytes, require_canonical=True)
    expected = state_tensors(model, optimizer)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise CheckpointError(
            f"state does not match the model: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    for name, ref in expected.items():
        got = tensors[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise CheckpointError(
                f"{name}: got {tuple(got.shape)} {got.dtype}, need {tuple(ref.shape)} {ref.dtype}"
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            raise CheckpointError(f"{name}: holds NaN or inf")
    load_trained(model, {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")})
    for name, p in _optimizer_params(model, optimizer):
        step = tensors[f"optim/{name}/step"]
        if float(step) < 0 or float(step) != int(float(step)):
            raise CheckpointError(f"optim/{name}/step must be a non-negative integer, got {float(step)}")
        optimizer.state[p] = {
            "step": step.clone(),
            "exp_avg": tensors[f"optim/{name}/exp_avg"].clone().to(p.device),
            "exp_avg_sq": tensors[f"optim/{name}/exp_avg_sq"].clone().to(p.device),
        }


def state_weights(data: bytes, *, max_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """The weights of a state (names without the `model/` prefix)."""
    tensors = load_tensors(data, max_bytes=max_bytes, require_canonical=True)
    return {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}


def max_abs_diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Largest |a - b| over all elements of two tensor maps with the same names and shapes.

    inf when the names or shapes differ or any element of either is NaN or infinite: a distance that
    is not a finite number never passes a threshold.
    """
    if set(a) != set(b):
        return math.inf
    worst = 0.0
    for name in a:
        if a[name].shape != b[name].shape:
            return math.inf
        if a[name].numel():
            diff = (a[name].to(torch.float64) - b[name].to(torch.float64)).abs()
            if not bool(torch.isfinite(diff).all()):
                return math.inf
            worst = max(worst, float(diff.max()))
    return worst


def _on(model: torch.nn.Module, device: str | torch.device) -> torch.nn.Module:
    return torch.nn.Module.to(model, device)  # transformers' typing of `to` hides nn.Module's


def reexecute_step(
    policy_config: PretrainedConfig,
    state_j: bytes,
    rollouts_j: Sequence[Rollout],
    grpo_cfg: GrpoConfig,
    behaviour_state: bytes | None = None,
    *,
    base: Mapping[str, torch.Tensor] | None = None,
    device: str | torch.device | None = None,
) -> bytes:
    """Re-run one inner step from theta_j's bytes on the step's rollouts; returns theta_{j+1}'s bytes.

    `behaviour_state`: theta_{j0}'s bytes when the rollouts came from an earlier state (j0 < j, see
    `trainer.grpo`); None when they are theta_j's own. `base`: the round's global weights, which a LoRA
    policy's frozen base comes from (`trainer.lora`; required then, unused otherwise). `device`: where the
    step runs (None: the process's compute device, `trainer.device`).
    """
    from trainer.lora import lora_of
    from trainer.model import model_from_config

    if lora_of(policy_config) is not None and base is None:
        raise CheckpointError("re-executing a LoRA step needs the round's base weights")

    def policy() -> torch.nn.Module:
        model = model_from_config(policy_config)
        if base is not None and lora_of(policy_config) is not None:
            load_weights(model, base)
        return _on(model, compute_device() if device is None else device)

    old_logprobs = None
    if behaviour_state is not None:
        behaviour = policy()
        load_state(behaviour_state, behaviour, make_optimizer(behaviour, grpo_cfg))  # checks it whole
        old_logprobs = behaviour_logprobs(behaviour, rollouts_j, grpo_cfg)
    model = policy()
    optimizer = make_optimizer(model, grpo_cfg)
    load_state(state_j, model, optimizer)
    train_step(model, optimizer, rollouts_j, grpo_cfg, old_logprobs)
    tensors = state_tensors(model, optimizer)
    bad = sorted(k for k, v in tensors.items() if not bool(torch.isfinite(v).all()))
    if bad:
        raise CheckpointError(f"the re-executed step holds NaN or inf in {bad[:3]}")
    return canonical_bytes(tensors)


# --- comparing a re-executed step with a committed one ----------------------------------------------------

_U = 2.0**-24
"""Unit roundoff of float32: the largest relative error of one correctly rounded operation."""
_MOMENT_ROUNDING = 4 * 2 * _U
"""Rounding allowance of the moments' own elementwise update, relative to the moment (in L2): 4 float32
ulps, twice what two implementations of `lerp` / `addcmul` (with or without FMA) can differ by."""


@dataclass(frozen=True)
class StepDistances:
    """How far a committed theta_{j+1} is from the validator's re-execution, in the step's own units.

    Every field is a non-negative float, and inf when it cannot be computed or is not finite (a NaN
    or inf anywhere never yields a small distance).
    """

    max_abs: float
    """max |re-executed - committed| over every tensor (weights, moments, step counts)."""
    rel_l2: float
    """||W_o - W_c|| / ||W_o - W_j||: the weights' distance in units of the step's own update."""
    max_abs_lr: float
    """max |W_o - W_c| / lr: the largest weight distance in units of one nominal Adam step."""
    moment_rel: float
    """max over (X, beta) = (exp_avg, beta1), (exp_avg_sq, beta2) of
    max(0, ||X_o - X_c|| - 8u ||X_o||) / ||X_o - beta X_j||: beyond rounding, in units of the step's term."""
    adam_ulps: float
    """max_i |W_c - AdamW(W_j; committed moments)| / (u (|W_j| + |W_c - W_j|)), u = 2^-24."""
    step_counts_match: bool
    """The committed AdamW step counts equal the re-executed ones exactly."""


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64)


def _norm(x: torch.Tensor) -> float:
    value = float(torch.linalg.vector_norm(x)) if x.numel() else 0.0
    return value if math.isfinite(value) else math.inf


def _max_abs(x: torch.Tensor) -> float:
    """max |x| (0 for an empty tensor), inf when any element is NaN or infinite."""
    if not x.numel():
        return 0.0
    value = float(x.abs().max())
    return value if math.isfinite(value) and bool(torch.isfinite(x).all()) else math.inf


def _ratio(num: float, den: float) -> float:
    """num / den for distances: 0 when num is 0, inf when den is 0 or either is not finite."""
    if not (math.isfinite(num) and math.isfinite(den)):
        return math.inf
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else math.inf


def _l2_over(parts: Sequence[float]) -> float:
    return math.sqrt(math.fsum(p * p for p in parts)) if all(math.isfinite(p) for p in parts) else math.inf


def adamw_weights(
    before: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: float, cfg: GrpoConfig
) -> torch.Tensor:
    """AdamW's new weights from the old ones and the step's (already updated) moments, with the same
    operations in the same order as torch's single-tensor AdamW:

        p = W_j * (1 - lr wd);  p += -(lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """
    bias1 = 1 - cfg.beta1**step
    bias2_sqrt = (1 - cfg.beta2**step) ** 0.5
    p = before.detach().clone().mul_(1 - cfg.lr * cfg.weight_decay)
    denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(cfg.adam_eps)
    return p.addcdiv_(exp_avg, denom, value=-cfg.lr / bias1)


def step_distances(
    before: Mapping[str, torch.Tensor],
    recomputed: Mapping[str, torch.Tensor],
    committed: Mapping[str, torch.Tensor],
    cfg: GrpoConfig,
) -> StepDistances:
    """Distances of a committed state from the re-executed one (theta_j `before`, all three laid out as
    `state_tensors`), each scaled by what the step itself changes:

    * the moments, beyond their own elementwise rounding, against the step's own gradient term
      (X_o - beta X_j = (1 - beta) g or g^2): linear in the gradient, so honest hardware differs only
      by the gradient's rounding (~1e-5 relative), never amplified;
    * the committed weights, against AdamW applied to the committed moments: elementwise operations
      only, so an honest trainer is within a few float32 ulps on any hardware;
    * the weights, against the re-executed ones, in units of the step's update (L2) and of lr (max):
      both invariant to lr; they bound what Adam's epsilon regime lets rounding (or a forger) move.

    The three maps must have the same names and shapes (the caller checks); anything else is inf.
    """
    inf = StepDistances(math.inf, math.inf, math.inf, math.inf, math.inf, False)
    if not (set(before) == set(recomputed) == set(committed)) or any(
        before[k].shape != recomputed[k].shape or before[k].shape != committed[k].shape for k in before
    ):
        return inf
    max_abs = max_abs_diff(recomputed, committed)
    weights = sorted(k[len("model/") :] for k in before if k.startswith("model/"))
    params = [n for n in weights if f"optim/{n}/step" in before]
    counts_match = all(
        bool(torch.equal(recomputed[f"optim/{n}/step"], committed[f"optim/{n}/step"])) for n in params
    )
    w_diff: list[float] = []
    w_moved: list[float] = []
    worst_abs = 0.0
    for n in weights:
        w_o, w_c = _f64(recomputed[f"model/{n}"]), _f64(committed[f"model/{n}"])
        d = w_o - w_c
        w_diff.append(_norm(d))
        w_moved.append(_norm(w_o - _f64(before[f"model/{n}"])))
        worst_abs = max(worst_abs, _max_abs(d))
    moment_rel = 0.0
    for key, beta in (("exp_avg", cfg.beta1), ("exp_avg_sq", cfg.beta2)):
        num, own, size = [], [], []
        for n in params:
            x_o, x_c = _f64(recomputed[f"optim/{n}/{key}"]), _f64(committed[f"optim/{n}/{key}"])
            num.append(_norm(x_o - x_c))
            own.append(_norm(x_o - beta * _f64(before[f"optim/{n}/{key}"])))
            size.append(_norm(x_o))
        dist, scale = _l2_over(num), _l2_over(size)
        excess = max(0.0, dist - _MOMENT_ROUNDING * scale) if math.isfinite(dist + scale) else math.inf
        moment_rel = max(moment_rel, _ratio(excess, _l2_over(own)))
    adam_ulps = 0.0
    for n in params:
        w_j, w_c = before[f"model/{n}"], committed[f"model/{n}"]
        t = float(committed[f"optim/{n}/step"])
        if not (math.isfinite(t) and t >= 1 and t == int(t)):  # a count after a step: integer >= 1
            adam_ulps = math.inf
            break
        expected = adamw_weights(
            w_j, committed[f"optim/{n}/exp_avg"], committed[f"optim/{n}/exp_avg_sq"], t, cfg
        )
        err = _f64(expected) - _f64(w_c)
        tol = _U * (_f64(w_j).abs() + (_f64(w_c) - _f64(w_j)).abs()) + 2.0**-149
        adam_ulps = max(adam_ulps, _max_abs(err / tol))
    rel_l2 = _ratio(_l2_over(w_diff), _l2_over(w_moved))
    max_abs_lr = worst_abs / cfg.lr
    return StepDistances(
        max_abs=max_abs,
        rel_l2=rel_l2,
        max_abs_lr=max_abs_lr if math.isfinite(max_abs_lr) else math.inf,
        moment_rel=moment_rel,
        adam_ulps=adam_ulps,
        step_counts_match=counts_match,
    )
