"""Tiny policies for the trainer-core tests (seconds on 2 cores), and a one-thread fixture.

Tiny models gain nothing from intra-op threads, and two threads on a busy 2-core machine run many
times slower; `one_thread` sets torch to one thread for a test and restores the previous count.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer.config import ModelConfig
from trainer.envs import Environment, get_env
from trainer.model import build_model
from trainer.tokenizer import build_tokenizer

TRAINER_A = "0x" + "11" * 20
TRAINER_B = "0x" + "22" * 20

TINY = ModelConfig(
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=64,
    max_position_embeddings=64,
)


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Run the test with one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def tiny_policy(
    env: Environment | None = None, cfg: ModelConfig = TINY
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Environment]:
    """A randomly initialised 2-layer policy for `env` (2-digit addition by default)."""
    env = env or get_env("addition", {"digits": 2})
    tok = build_tokenizer(env.alphabet)
    return build_model(cfg, tok), tok, env
