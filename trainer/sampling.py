"""Seeded Gumbel-max sampling: the sampled token is a deterministic function of logits and a seed.

    noise = gumbel_noise(sample_seed, max_new_tokens, vocab)      # [positions, vocab], fp32, on CPU
    token_t = argmax(logits_t / temperature + noise[t])            # t = 0, 1, ... generated positions

argmax(logits / T + Gumbel) samples from softmax(logits / T), so this is ordinary temperature
sampling whose randomness is pinned by the seed: a validator who replays the prefill can check that
every token was the argmax of its own noise row (up to a tolerance on the score gap, since its
logits may differ by float noise). The noise is drawn on the CPU with a `torch.Generator` seeded from
the first 8 bytes of sha256(seed), whatever device the model runs on, so every machine gets the same
noise. Temperature 0 means greedy decoding (the noise is ignored).
"""

from __future__ import annotations

import hashlib

import torch

from trainer.errors import ConfigError

__all__ = ["generator_seed", "gumbel_noise", "scores", "select"]

_TINY = torch.finfo(torch.float32).tiny


def generator_seed(seed: bytes) -> int:
    """The 64-bit `torch.Generator.manual_seed` value of a sampling seed."""
    if not isinstance(seed, bytes | bytearray) or len(seed) == 0:
        raise ConfigError("a sampling seed is non-empty bytes")
    return int.from_bytes(hashlib.sha256(bytes(seed)).digest()[:8], "big")


def gumbel_noise(seed: bytes, positions: int, vocab: int) -> torch.Tensor:
    """Standard Gumbel noise [positions, vocab] (fp32, CPU): -log(-log(u)), u ~ U(0, 1) from the seed."""
    if positions < 0 or vocab < 1:
        raise ConfigError(f"bad noise shape ({positions}, {vocab})")
    gen = torch.Generator(device="cpu")
    gen.manual_seed(generator_seed(seed))
    u = torch.rand((positions, vocab), generator=gen, dtype=torch.float32, device="cpu")
    return -torch.log(-torch.log(u.clamp_(min=_TINY)))


def scores(logits: torch.Tensor, noise: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / T + noise in fp32 (on the logits' device): the quantity whose argmax is sampled."""
    if temperature < 0:
        raise ConfigError(f"temperature must be >= 0, got {temperature}")
    logits = logits.float()
    if temperature == 0:
        return logits
    return logits / temperature + noise.to(device=logits.device, dtype=torch.float32)


def select(logits: torch.Tensor, noise: torch.Tensor, temperature: float) -> torch.Tensor:
    """Token ids argmax(logits / T + noise) over the last dimension (greedy when T == 0)."""
    if logits.shape[-1] != noise.shape[-1]:
        raise ConfigError(f"logits have {logits.shape[-1]} classes, noise {noise.shape[-1]}")
    return scores(logits, noise, temperature).argmax(dim=-1)
