"""Training states theta_j: weights + AdamW state in canonical bytes, and single-step re-execution.

A state is `checkpoint.canonical_bytes` of these tensors (names sorted by the serializer):

    model/<name>               every entry of model.state_dict() (fp32 master weights)
    optim/<name>/exp_avg       AdamW first moment of parameter <name> (fp32, its shape)
    optim/<name>/exp_avg_sq    AdamW second moment (fp32, its shape)
    optim/<name>/step          AdamW step count (fp32 scalar, as torch keeps it)

theta_0 is the round's base weights with a fresh optimizer state (zero moments, step 0), which is
exactly what AdamW would create lazily. Hyper-parameters (lr, betas, ...) are not in the state; they
come from the task's `GrpoConfig`. Its content hash is sha256 of the bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import PretrainedConfig

from trainer.checkpoint import canonical_bytes, canonical_hash, load_tensors, load_weights
from trainer.config import GrpoConfig
from trainer.errors import CheckpointError
from trainer.grpo import make_optimizer, train_step

__all__ = [
    "fresh_optimizer",
    "load_state",
    "max_abs_diff",
    "reexecute_step",
    "state_bytes",
    "state_digest",
    "state_hash",
    "state_tensors",
    "state_weights",
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
        optimizer.state[p] = {
            "step": torch.tensor(0.0, dtype=torch.float32),
            "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
        }
    return optimizer


def state_tensors(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The named tensors of a training state (see the module docstring)."""
    tensors: dict[str, torch.Tensor] = {f"model/{k}": v.detach() for k, v in model.state_dict().items()}
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
    """Load a state into `model` and `optimizer`; names, shapes and dtypes must match exactly."""
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
    load_weights(model, {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")})
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
    """Largest |a - b| over all elements of two tensor maps with the same names and shapes (inf if not)."""
    if set(a) != set(b):
        return float("inf")
    worst = 0.0
    for name in a:
        if a[name].shape != b[name].shape:
            return float("inf")
        if a[name].numel():
            diff = (a[name].to(torch.float64) - b[name].to(torch.float64)).abs().max()
            worst = max(worst, float(diff))
    return worst


def reexecute_step(
    policy_config: PretrainedConfig, state_j: bytes, rollouts_j: Sequence[Any], grpo_cfg: GrpoConfig
) -> bytes:
    """Re-run one inner step from theta_j's bytes on the step's rollouts; returns theta_{j+1}'s bytes."""
    from trainer.model import model_from_config

    model = model_from_config(policy_config)
    optimizer = make_optimizer(model, grpo_cfg)
    load_state(state_j, model, optimizer)
    train_step(model, optimizer, rollouts_j, grpo_cfg)
    return state_bytes(model, optimizer)
