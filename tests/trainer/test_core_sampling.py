"""Seeded Gumbel-max sampling: deterministic noise, argmax rule, the sampled distribution."""

from __future__ import annotations

import hashlib

import pytest
import torch

from trainer.errors import ConfigError
from trainer.sampling import generator_seed, gumbel_noise, scores, select


def test_noise_is_a_function_of_the_seed() -> None:
    a = gumbel_noise(b"seed-a", 5, 11)
    assert a.shape == (5, 11)
    assert a.dtype == torch.float32
    assert a.device.type == "cpu"
    assert torch.equal(a, gumbel_noise(b"seed-a", 5, 11))
    assert not torch.equal(a, gumbel_noise(b"seed-b", 5, 11))
    assert torch.equal(gumbel_noise(b"seed-a", 8, 11)[:5], a)  # a longer budget extends the same rows
    assert bool(torch.isfinite(a).all())


def test_noise_recipe() -> None:
    seed = b"recipe"
    assert generator_seed(seed) == int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")
    gen = torch.Generator().manual_seed(generator_seed(seed))
    u = torch.rand((3, 4), generator=gen)
    assert torch.equal(gumbel_noise(seed, 3, 4), -torch.log(-torch.log(u)))


def test_select_is_argmax_of_scaled_logits_plus_noise() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]])
    noise = torch.tensor([[5.0, 0.0, 0.0], [0.0, 0.0, 4.0]])
    assert select(logits, noise, 1.0).tolist() == [0, 2]
    assert select(logits, noise, 0.2).tolist() == [2, 0]  # a low temperature lets the logits win
    assert torch.equal(scores(logits, noise, 0.5), logits / 0.5 + noise)
    assert select(logits, noise, 0.0).tolist() == [2, 0]  # greedy ignores the noise


def test_sampling_follows_softmax() -> None:
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    temperature = 0.8
    n = 6000
    counts = torch.zeros(4)
    noise = gumbel_noise(b"distribution", n, 4)
    for tok in select(logits.expand(n, 4), noise, temperature).tolist():
        counts[tok] += 1
    expected = torch.softmax(logits / temperature, dim=0) * n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.3  # 3 degrees of freedom, p = 0.001


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError):
        gumbel_noise(b"", 1, 1)
    with pytest.raises(ConfigError):
        gumbel_noise(b"x", 1, 0)
    with pytest.raises(ConfigError):
        select(torch.zeros(2, 3), torch.zeros(2, 4), 1.0)
    with pytest.raises(ConfigError):
        select(torch.zeros(3), torch.zeros(3), -1.0)
