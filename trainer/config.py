"""Configuration models of the ML side (pydantic v2, frozen, unknown keys refused).

A task spec (built by `protocol`) embeds these: `ModelConfig` says how to build the policy,
`GrpoConfig` how one inner step trains, `InnerConfig` how a trainer spends a round, `OuterConfig`
how validators aggregate. Everything a validator must reproduce bit for bit is in here; nothing
machine-specific (threads, device) is.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer.errors import ConfigError

__all__ = [
    "CALIBRATED_LRS",
    "LORA_TARGETS",
    "MAX_MODEL_FILE_BYTES",
    "MIN_CALIBRATED_ADAM_EPS",
    "QUALITY_MAX_LR",
    "Compression",
    "GrpoConfig",
    "InnerConfig",
    "LoraConfig",
    "ModelConfig",
    "OuterConfig",
    "ToplocThresholds",
    "VerifyThresholds",
    "WarmStartConfig",
    "outside_calibration",
    "parse_config",
    "rollout_step",
]


_M = TypeVar("_M", bound=BaseModel)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ModelConfig(_Frozen):
    """A tiny decoder-only policy built from a Hugging Face config, with no download."""

    arch: Literal["llama", "qwen2"] = "llama"
    """Hugging Face architecture family (`LlamaForCausalLM` or `Qwen2ForCausalLM`)."""
    hidden_size: int = Field(128, ge=8, le=8192)
    """Width of the residual stream (also the size of every hidden state TOPLOC sees)."""
    num_layers: int = Field(4, ge=1, le=128)
    """Number of decoder layers."""
    num_heads: int = Field(4, ge=1, le=128)
    """Attention heads; must divide `hidden_size`."""
    num_kv_heads: int = Field(4, ge=1, le=128)
    """Key/value heads (grouped-query attention); must divide `num_heads`."""
    intermediate_size: int = Field(256, ge=8, le=65536)
    """Width of the MLP."""
    max_position_embeddings: int = Field(128, ge=8, le=1 << 20)
    """Longest prompt + completion the model accepts."""
    rope_theta: float = Field(10000.0, gt=0)
    """Rotary embedding base."""
    init_seed: int = Field(0, ge=0, lt=1 << 63)
    """Seed of the random initialisation (the warm start starts from it)."""

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.hidden_size % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide hidden_size={self.hidden_size}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_kv_heads={self.num_kv_heads} must divide num_heads={self.num_heads}")
        return self


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""The linear layers of a Llama / Qwen2 decoder layer that LoRA adapters may wrap."""


class LoraConfig(_Frozen):
    """LoRA adapters (`trainer.lora`) trained on a frozen base: W x + (alpha / rank) B A x per target."""

    rank: int = Field(8, ge=1, le=1024)
    """r, the inner dimension of A [r, in] and B [out, r]."""
    alpha: int = Field(16, ge=1, le=1 << 16)
    """The adapter's output is scaled by alpha / rank."""
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Which linear layers of every decoder layer get an adapter (names from `LORA_TARGETS`)."""
    init_seed: int = Field(0, ge=0, lt=1 << 63)
    """Seed of A's random initialisation in round 0's checkpoint (B starts at zero)."""

    @model_validator(mode="after")
    def _known_targets(self) -> LoraConfig:
        if not self.targets:
            raise ValueError("lora.targets must name at least one layer")
        unknown = [t for t in self.targets if t not in LORA_TARGETS]
        if unknown:
            raise ValueError(f"lora.targets: unknown {unknown} (known: {', '.join(LORA_TARGETS)})")
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("lora.targets names a layer twice")
        return self


class GrpoConfig(_Frozen):
    """One GRPO inner step: clipped-ratio token-level loss, AdamW."""

    lr: float = Field(1e-4, gt=0, le=1.0)
    """Inner AdamW learning rate (constant)."""
    beta1: float = Field(0.9, ge=0, lt=1)
    """AdamW first-moment decay."""
    beta2: float = Field(0.999, ge=0, lt=1)
    """AdamW second-moment decay."""
    adam_eps: float = Field(1e-8, gt=0)
    """AdamW epsilon."""
    weight_decay: float = Field(0.0, ge=0)
    """AdamW decoupled weight decay."""
    clip_eps_low: float = Field(0.2, ge=0, lt=1)
    """Lower clip of the probability ratio (1 - eps)."""
    clip_eps_high: float = Field(0.2, ge=0)
    """Upper clip of the probability ratio (1 + eps)."""
    adv_eps: float = Field(1e-4, gt=0)
    """Added to the group's reward standard deviation before dividing."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Global gradient-norm clip (None: no clipping)."""
    temperature: float = Field(1.0, gt=0, le=100)
    """Sampling temperature; the loss uses log-softmax(logits / temperature) to match it."""


class Compression(_Frozen):
    """How a pseudo-gradient travels: fp32, or int8 with per-row or per-tensor scales."""

    kind: Literal["none", "int8"] = "none"
    """`none`: raw fp32; `int8`: symmetric int8 with fp32 scales."""
    granularity: Literal["row", "tensor"] = "row"
    """For int8: one scale per row (first dimension) or one per tensor."""


class InnerConfig(_Frozen):
    """How a trainer spends a round: H GRPO steps from the round's base (DiLoCo inner loop)."""

    steps: int = Field(32, ge=1, le=100_000)
    """H, the number of local steps per round."""
    rollout_every: int = Field(1, ge=1)
    """Rollouts are regenerated from the current weights at every `rollout_every`-th step."""
    num_prompts: int = Field(8, ge=1, le=100_000)
    """P, prompts per rollout batch."""
    group_size: int = Field(8, ge=2, le=1024)
    """G, completions per prompt (one GRPO group)."""
    max_new_tokens: int = Field(8, ge=1, le=100_000)
    """Generation stops here if no EOS came."""
    grpo: GrpoConfig = GrpoConfig()
    """The inner step."""
    compression: Compression = Compression()
    """How the pseudo-gradient is encoded."""


def rollout_step(j: int, rollout_every: int) -> int:
    """j0 = j - (j mod rollout_every): the step whose weights generated the rollouts step j trains on."""
    return j - (j % rollout_every)


class OuterConfig(_Frozen):
    """The validators' aggregation: outer Nesterov step on the work-weighted mean of the accepted
    pseudo-gradients, each clipped to `clip` x their median norm."""

    lr: float = Field(1.0, gt=0, le=10)
    """Outer learning rate (1.0 with momentum 0 is plain averaging)."""
    momentum: float = Field(0.0, ge=0, lt=1)
    """Outer Nesterov momentum (0: none, and no momentum is stored in the checkpoint)."""
    clip: float | None = Field(None, ge=1.0, le=100.0)
    """Robust aggregation: each accepted update's L2 norm is clipped to `clip` x the median norm of the
    round's accepted updates before averaging (`trainer.diloco.aggregate`); None: no clipping."""


class ToplocThresholds(_Frozen):
    """Acceptance limits for one chunk's statistics (per 128 points; scaled down for shorter chunks).

    The defaults are calibrated for the tiny CPU models of this project (docs/toploc.md: honest
    maxima, the attacks' minima and the margin in between). A task spec sets its own.
    """

    max_exp_mismatches: int = Field(default=4, ge=0, le=128)
    """Most top-k points whose bf16 exponent may differ (reference: 38; honest CPU replay: 0)."""
    max_sign_mismatches: int = Field(default=2, ge=0, le=128)
    """Most exponent-matched points whose sign may differ (the reference has no such check)."""
    max_mant_err_mean: float = Field(default=0.05, ge=0)
    """Largest mean |mantissa difference| over exponent-matched points (reference: 10; honest: < 0.01)."""
    max_mant_err_median: float = Field(default=0.0, ge=0)
    """Largest upper-median |mantissa difference| (reference: 8). A mean <= 0.05 already forces 0."""


class VerifyThresholds(_Frozen):
    """Acceptance limits of a validator; the defaults are calibrated in docs/toploc.md."""

    toploc: ToplocThresholds = ToplocThresholds()
    """Per-chunk limits of the TOPLOC statistics."""
    max_sampling_gap: float = Field(default=0.1, ge=0)
    """Largest allowed (best other score - chosen token's score) of logits/T + Gumbel noise."""
    max_step_rel: float = Field(default=1e-2, ge=0)
    """Largest ||W_o - W_c|| / ||W_o - W_j||: re-executed vs committed weights in units of the step."""
    max_step_lr: float = Field(default=1.0, ge=0)
    """Largest max |W_o - W_c| / lr: no weight may differ by more than one nominal Adam step."""
    max_step_moments: float = Field(default=1e-3, ge=0)
    """Largest relative L2 of the committed AdamW moments against the re-executed ones, in units of
    the step's own gradient term (`trainer.state.step_distances`)."""
    max_step_ulps: float = Field(default=16.0, ge=0)
    """Largest |committed weights - AdamW(committed moments)| in float32 ulps of |W_j| + |step|."""
    max_update_abs: float = Field(default=0.0, ge=0)
    """Largest |submitted update - encode(base - theta_H)| (0: the encoding is deterministic)."""
    max_quality_drop: float = Field(default=0.3, ge=0)
    """Largest drop of the reference answers' mean log-probability per token from the base to
    base - update, on the round's seed-derived problems (`trainer.quality`; nats). Calibrated for inner
    learning rates up to 1e-4 (scripts/calibrate_quality.py: honest worst 0.095)."""


MAX_MODEL_FILE_BYTES = 64 << 20
"""Largest config or tokenizer file of a pretrained model (`trainer.pretrained`; a 150k-token BPE
tokenizer.json is ~10 MiB)."""


QUALITY_MAX_LR = 1e-4
"""The largest inner learning rate `VerifyThresholds.max_quality_drop` is calibrated for (`trainer.quality`):
at 3e-4 honest training alone lowers the gate's score by up to 2.9 nats/token (and held-out accuracy to near
0) on the project's models, as much as the attacks the gate exists for (scripts/calibrate_quality.py), so no
threshold separates them."""


CALIBRATED_LRS = (1e-5, 1e-3)
"""Inner learning rates over which the default thresholds were calibrated (scripts/calibrate.py)."""
MIN_CALIBRATED_ADAM_EPS = 1e-8
"""Smallest AdamW epsilon calibrated (a smaller one widens the regime where rounding moves weights)."""


def _limits(thresholds: BaseModel, prefix: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for name, value in thresholds:
        if isinstance(value, BaseModel):
            out += _limits(value, f"{prefix}{name}.")
        else:
            out.append((prefix + name, float(value)))
    return out


def outside_calibration(inner: InnerConfig, verify: VerifyThresholds) -> str | None:
    """Why a task's settings lie outside what the thresholds were calibrated for, or None.

    Calibrated (docs/toploc.md): inner learning rates in `CALIBRATED_LRS`, AdamW epsilon at least
    `MIN_CALIBRATED_ADAM_EPS`, and limits no tighter than the defaults (a tighter limit would reject
    honest trainers on other hardware; a looser one only lets more through). The quality gate's default
    limit is calibrated for inner learning rates up to `QUALITY_MAX_LR` only (`trainer.quality`): above
    it a task must loosen `max_quality_drop` itself.
    """
    low, high = CALIBRATED_LRS
    lr = inner.grpo.lr
    if not low <= lr <= high:
        return f"inner.grpo.lr {lr:g} is outside the calibrated range [{low:g}, {high:g}] (docs/toploc.md)"
    if inner.grpo.adam_eps < MIN_CALIBRATED_ADAM_EPS:
        return (
            f"inner.grpo.adam_eps {inner.grpo.adam_eps:g} is below the calibrated {MIN_CALIBRATED_ADAM_EPS:g}"
            " (docs/toploc.md)"
        )
    default_gate = VerifyThresholds().max_quality_drop
    if lr > QUALITY_MAX_LR and verify.max_quality_drop <= default_gate:
        return (
            f"inner.grpo.lr {lr:g} is above {QUALITY_MAX_LR:g}, the largest the quality gate's"
            f" verify.max_quality_drop {default_gate:g} is calibrated for: honest updates would fail it"
            " (docs/protocol.md); set a lower lr, or a looser verify.max_quality_drop and let the deterrence"
            " rest on re-execution"
        )
    calibrated = dict(_limits(VerifyThresholds(), "verify."))
    for name, value in _limits(verify, "verify."):
        if value < calibrated[name]:
            return (
                f"{name} {value:g} is tighter than the calibrated {calibrated[name]:g}: honest trainers on"
                " other hardware would be rejected (docs/toploc.md)"
            )
    return None


class WarmStartConfig(_Frozen):
    """How long and how hard the supervised warm start trains."""

    seed: int = Field(0, ge=0, lt=1 << 63)
    """Salt of the training examples' seeds."""
    lr: float = Field(3e-3, gt=0, le=1)
    """AdamW learning rate."""
    batch_size: int = Field(64, ge=1, le=4096)
    """Examples per step."""
    max_steps: int = Field(2000, ge=1)
    """Hard cap on steps."""
    eval_every: int = Field(10, ge=1)
    """Steps between accuracy checks."""
    eval_size: int = Field(200, ge=1)
    """Problems in the warm start's own evaluation set."""
    target_accuracy: float = Field(0.3, gt=0, le=1)
    """Stop once the evaluation accuracy reaches this."""


def parse_config(cls: type[_M], data: object) -> _M:
    """Validate `data` as `cls`, turning pydantic's error into a `ConfigError` with its message."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from None
