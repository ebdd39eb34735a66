"""LoRA: low-rank adapters (the `peft` library) trained on a frozen base.

With `LoraConfig` set, every targeted linear layer y = W x of every decoder layer becomes

    y = W x + (alpha / rank) * B (A x)        A [rank, in], B [out, rank]; W frozen

(`peft.inject_adapter_in_model`, dropout 0, no bias: the forward stays a pure function). The model keeps its
class (`LlamaForCausalLM` / `Qwen2ForCausalLM`); its state dict names W `<layer>.base_layer.weight` and the
adapter `<layer>.lora_A.default.weight` / `<layer>.lora_B.default.weight`.

What is trained is decided by one rule, `is_trained(name, lora)`: with LoRA the adapter tensors only, without
it every weight. The global checkpoint holds every weight (base and adapters); a training state, an update
(pseudo-gradient) and the aggregation hold the trained tensors only (`trained`), so what a trainer commits,
uploads and a validator re-executes per step is the adapters plus their AdamW state.

The policy's Hugging Face config carries the task's `LoraConfig` (`with_lora`, read back by `lora_of`), so
`trainer.model.model_from_config` builds the adapted model wherever a node builds the policy. Round 0's
adapters come from `adapt` with A seeded by `LoraConfig.init_seed` and B = 0, so the adapted model starts
as the base model exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import torch
from transformers import PretrainedConfig

from trainer.config import LoraConfig
from trainer.errors import ConfigError

__all__ = [
    "adapt",
    "inject",
    "is_trained",
    "lora_of",
    "trained",
    "trained_parameters",
    "with_lora",
]

_ATTR = "trustrl_lora"
_ADAPTER_PARTS = (".lora_A.", ".lora_B.")
_T = TypeVar("_T")


def with_lora(config: PretrainedConfig, lora: LoraConfig | None) -> PretrainedConfig:
    """`config` carrying `lora` (None: carrying none); the config is changed in place and returned."""
    if lora is None:
        if hasattr(config, _ATTR):
            delattr(config, _ATTR)
        return config
    setattr(config, _ATTR, lora.model_dump(mode="json"))
    return config


def lora_of(config: PretrainedConfig) -> LoraConfig | None:
    """The `LoraConfig` a policy config carries, or None."""
    raw = getattr(config, _ATTR, None)
    return None if raw is None else LoraConfig.model_validate(raw)


def is_trained(name: str, lora: bool) -> bool:
    """Whether weight `name` is trained: every weight without LoRA, the adapters' A and B with it."""
    return not lora or any(part in name for part in _ADAPTER_PARTS)


def trained(weights: Mapping[str, _T], config: PretrainedConfig) -> dict[str, _T]:
    """The entries of `weights` that the policy `config` describes trains (all of them without LoRA)."""
    lora = lora_of(config) is not None
    return {k: v for k, v in weights.items() if is_trained(k, lora)}


def trained_parameters(model: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) of the parameters that train (requires_grad), in the model's order."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def _check_targets(model: torch.nn.Module, lora: LoraConfig) -> None:
    """Every target names linear layers of the model, each at least `rank` wide in and out."""
    for target in lora.targets:
        layers = [
            m
            for n, m in model.named_modules()
            if n.rsplit(".", 1)[-1] == target and isinstance(m, torch.nn.Linear)
        ]
        if not layers:
            raise ConfigError(f"lora.targets: the model has no linear layer named {target!r}")
        narrow = min(min(m.in_features, m.out_features) for m in layers)
        if lora.rank > narrow:
            raise ConfigError(f"lora.rank {lora.rank} exceeds the width {narrow} of a {target} layer")


def inject(model: torch.nn.Module, lora: LoraConfig) -> None:
    """Add `lora`'s adapters to `model` in place and freeze everything else (A from the global RNG, B = 0).

    `ConfigError` when peft is missing, a target names no linear layer or the rank exceeds a layer's width.
    """
    _check_targets(model, lora)
    try:
        from peft import LoraConfig as PeftLoraConfig
        from peft import inject_adapter_in_model
    except ImportError:
        raise ConfigError("LoRA needs the peft package: pip install 'trustrl[lora]'") from None
    peft_config: Any = PeftLoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,
        target_modules=list(lora.targets),
        lora_dropout=0.0,
        bias="none",
        init_lora_weights=True,
    )
    inject_adapter_in_model(peft_config, model)
    for name, p in model.named_parameters():
        p.requires_grad_(is_trained(name, True))
    model.eval()


def adapt(model: torch.nn.Module, lora: LoraConfig) -> None:
    """Round 0's adapters on a model holding the base weights: `inject` with A seeded by `lora.init_seed`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(lora.init_seed)
        inject(model, lora)
