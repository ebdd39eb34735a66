"""The validator's prefill engine: final hidden states and logits of whole sequences in one pass.

A validator replays rollouts with one forward pass over `prompt + completion[:-1]` (docs/trainer.md,
"Hidden states proved"). For the two architectures the project builds (`LlamaForCausalLM`,
`Qwen2ForCausalLM`) this module runs that pass with a lean forward of its own instead of the Hugging
Face module tree: the same weights and the same operations in the same order (RMSNorm, rotary
embedding from the model's own `rotary_emb`, grouped-query attention, SiLU-gated MLP), but

* attention is `torch.nn.functional.scaled_dot_product_attention(is_causal=True)`: the batch is
  right-padded, and in a causal model no real position ever looks at a later one, so no mask is built
  or applied and the fused kernel never materialises the [S, S] scores (eager attention spends more
  time on the scores' scaling, masking and softmax than on the projections);
* nothing the replay does not use is kept (per-layer hidden states, attention weights, caches).

The result equals the Hugging Face forward up to float32 rounding (max |diff| ~2e-6 on the hidden
states of the tested models, far inside one bf16 unit, which is what TOPLOC compares), and is ~1.4x
faster on a CPU core for the task's default model (`scripts/bench_toploc.py`). Any other model, or
a configuration this forward does not reproduce (another activation, sliding-window attention,
tensor-parallel Llama slices, extra norms, parameters other than float32), goes through the Hugging
Face forward: `fast_path_reason` says why.
"""

from __future__ import annotations

from typing import Literal, cast

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM, PreTrainedModel, Qwen2ForCausalLM

from trainer.errors import ConfigError

__all__ = ["Engine", "fast_path_reason", "prefill_logits"]

Engine = Literal["auto", "fast", "hf"]
"""`auto`: the lean forward where supported, else Hugging Face; `fast`: the lean forward or an error;
`hf`: always the Hugging Face forward (the reference the lean one is tested against)."""

_SUPPORTED = (LlamaForCausalLM, Qwen2ForCausalLM)


def fast_path_reason(model: PreTrainedModel) -> str:
    """Why the lean forward cannot replay `model` ('' when it can)."""
    if type(model) not in _SUPPORTED:
        return f"{type(model).__name__} is not one of {', '.join(c.__name__ for c in _SUPPORTED)}"
    cfg = model.config
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"activation {cfg.hidden_act!r} (the lean forward implements silu)"
    if int(getattr(cfg, "pretraining_tp", 1) or 1) != 1:
        return "pretraining_tp > 1"
    if getattr(cfg, "use_sliding_window", False):
        return "sliding-window attention"
    layer_types = getattr(cfg, "layer_types", None)
    if layer_types and any(t != "full_attention" for t in layer_types):
        return "layers other than full attention"
    if model.training:
        return "the model is in training mode"
    if any(hasattr(m, "base_layer") for m in model.modules()):
        return "LoRA adapters (the Hugging Face forward applies them)"
    dtypes = {p.dtype for p in model.parameters()}
    if dtypes != {torch.float32}:
        return f"parameters in {sorted(str(d) for d in dtypes)} (the lean forward is exact for float32 only)"
    if len(model.model.layers) != int(cfg.num_hidden_layers):
        return f"{len(model.model.layers)} layers for num_hidden_layers={cfg.num_hidden_layers}"
    for layer in model.model.layers:
        attn, mlp = layer.self_attn, layer.mlp
        if getattr(attn, "sliding_window", None) is not None:
            return "sliding-window attention"
        if any(hasattr(attn, name) for name in ("q_norm", "k_norm")):
            return "per-head q/k norms"
        if not all(hasattr(mlp, name) for name in ("gate_proj", "up_proj", "down_proj")):
            return "an MLP without gate/up/down projections"
    return ""


def _rms_norm(x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    # LlamaRMSNorm / Qwen2RMSNorm on fp32 activations, same operations in the same order
    weight = cast(torch.Tensor, norm.weight)
    eps = cast(float, norm.variance_epsilon)
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


@torch.inference_mode()
def _lean_forward(model: PreTrainedModel, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    inner = model.model
    batch, seq = ids.shape
    x = inner.embed_tokens(ids)
    positions = torch.arange(seq, device=ids.device)[None]
    cos, sin = inner.rotary_emb(x, positions)  # [1, S, head_dim]
    cos, sin = cos[:, None], sin[:, None]
    for layer in inner.layers:
        attn, mlp = layer.self_attn, layer.mlp
        d = attn.head_dim
        h = _rms_norm(x, layer.input_layernorm)
        q = attn.q_proj(h).view(batch, seq, -1, d).transpose(1, 2)
        k = attn.k_proj(h).view(batch, seq, -1, d).transpose(1, 2)
        v = attn.v_proj(h).view(batch, seq, -1, d).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        o = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, scale=attn.scaling, enable_gqa=q.shape[1] != k.shape[1]
        )
        x = x + attn.o_proj(o.transpose(1, 2).reshape(batch, seq, -1))
        h = _rms_norm(x, layer.post_attention_layernorm)
        x = x + mlp.down_proj(F.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
    hidden = _rms_norm(x, inner.norm)
    return hidden, model.lm_head(hidden)


@torch.inference_mode()
def prefill_logits(
    model: PreTrainedModel, ids: torch.Tensor, lengths: torch.Tensor, engine: Engine = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(final normalized hidden states [B, S, hidden], logits [B, S, vocab]) of right-padded `ids`.

    `lengths[b]` real tokens start row b; positions at or after it are padding and their outputs are
    meaningless. Positions count from 0 in every row.
    """
    if ids.dim() != 2 or lengths.shape != (ids.shape[0],):
        raise ConfigError(
            f"ids [B, S] and lengths [B] expected, got {tuple(ids.shape)}, {tuple(lengths.shape)}"
        )
    if engine == "hf" or (engine == "auto" and fast_path_reason(model)):
        mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths.to(ids.device)[:, None]).long()
        out = model(input_ids=ids, attention_mask=mask, use_cache=False, output_hidden_states=True)
        return out.hidden_states[-1], out.logits
    if engine == "fast":
        reason = fast_path_reason(model)
        if reason:
            raise ConfigError(f"the lean forward cannot replay this model: {reason}")
    return _lean_forward(model, ids)
