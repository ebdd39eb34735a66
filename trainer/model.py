"""The policy: a Hugging Face causal LM, built from a config (no download) or loaded from a directory.

The master weights are fp32. Models built here use eager attention and no dropout so that a forward
pass is a pure function of weights and inputs (what the validators re-execute).
"""

from __future__ import annotations

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from trainer.config import ModelConfig
from trainer.device import compute_device
from trainer.errors import ConfigError
from trainer.lora import inject, lora_of

__all__ = ["build_model", "hf_config", "model_from_config", "num_parameters"]


def hf_config(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PretrainedConfig:
    """The Hugging Face config of a tiny policy whose vocabulary is `tokenizer`'s."""
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads,
        "max_position_embeddings": cfg.max_position_embeddings,
        "rope_theta": cfg.rope_theta,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "use_cache": True,
    }
    config: PretrainedConfig
    config = LlamaConfig(**common) if cfg.arch == "llama" else Qwen2Config(**common, use_sliding_window=False)
    config._attn_implementation = "eager"
    return config


def model_from_config(config: PretrainedConfig) -> PreTrainedModel:
    """An fp32 model with freshly initialised weights for a Llama or Qwen2 config (eval mode), with the LoRA
    adapters of `trainer.lora` when the config carries them (base frozen), on the process's compute device
    (`trainer.device`; the CPU by default)."""
    model: PreTrainedModel
    if isinstance(config, Qwen2Config):
        model = Qwen2ForCausalLM(config)
    elif isinstance(config, LlamaConfig):
        model = LlamaForCausalLM(config)
    else:
        from transformers import AutoModelForCausalLM

        try:
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=False)
        except (ValueError, KeyError) as exc:
            raise ConfigError(f"cannot build a causal LM from this config: {exc}") from None
    model.float()
    lora = lora_of(config)
    if lora is not None:
        inject(model, lora)
    model.eval()
    device = compute_device()
    if device.type != "cpu":
        torch.nn.Module.to(model, device)  # transformers' typing of `to` hides nn.Module's
    return model


def build_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    """A new policy with a deterministic random initialisation from `cfg.init_seed`."""
    config = hf_config(cfg, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.init_seed)
        return model_from_config(config)


def num_parameters(model: torch.nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
