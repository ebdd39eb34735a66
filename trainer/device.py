"""Where a node computes: the CPU (the default) or a CUDA device, with deterministic settings.

`use_device(name)` sets the process's compute device once, at start-up (the CLI's `--device`, as `--threads`
sets torch's threads): `cpu`, `cuda`, `cuda:N`, or `auto` (the first CUDA device when there is one, else the
CPU). `trainer.model.model_from_config` puts every model it builds there; every tensor the pipeline makes
for a model follows the model's device, and everything that is hashed, uploaded or compared leaves it as
CPU tensors (`trainer.checkpoint.canonical_bytes`), so bytes on the wire never depend on the device.

On CUDA, `use_device` makes the kernels deterministic (run to run on one GPU):

    CUBLAS_WORKSPACE_CONFIG=:4096:8                   cuBLAS reproducible (set before CUDA is initialised)
    torch.use_deterministic_algorithms(True)          an op without a deterministic kernel raises
    torch.backends.cuda.matmul.allow_tf32 = False     full fp32 matmuls (TF32 rounds to 10 mantissa bits)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False            no autotuned (run-dependent) kernel choice
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False (and bf16)

A GPU rounds differently from a CPU (other reduction orders and kernels); that is the same cross-hardware
difference the thresholds were calibrated for between CPU kernel levels (docs/toploc.md), but no GPU was
available where this was built: see docs/models.md, "GPU", for what was and was not measured.
"""

from __future__ import annotations

import os

import torch

from trainer.errors import ConfigError

__all__ = ["compute_device", "deterministic_cuda", "parse_device", "use_device"]

_current = torch.device("cpu")


def parse_device(name: str) -> torch.device:
    """The device `name` names (`cpu`, `cuda`, `cuda:N`, `auto`); `ConfigError` for any other or a CUDA device
    this machine does not have."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name!r}: give cpu, cuda, cuda:N or auto") from None
    if device.type == "cpu" and device.index is None:
        return device
    if device.type != "cuda":
        raise ConfigError(f"--device {name!r}: give cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name!r}: no CUDA device is available (torch {torch.__version__})")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA devices")
    return device


def deterministic_cuda() -> None:
    """The deterministic CUDA settings of the module docstring (harmless without CUDA)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False


def use_device(name: str) -> torch.device:
    """Make `name` (see `parse_device`) the process's compute device; returns it."""
    global _current
    device = parse_device(name)
    if device.type == "cuda":
        deterministic_cuda()
    _current = device
    return device


def compute_device() -> torch.device:
    """The process's compute device (the CPU unless `use_device` chose another)."""
    return _current
