"""The validator's lean prefill (`trainer.replay`) against the Hugging Face forward it replaces."""

from __future__ import annotations

import pytest
import torch
from core_helpers import TINY, one_thread, tiny_policy

from trainer.config import InnerConfig, ModelConfig
from trainer.errors import ConfigError
from trainer.model import hf_config, model_from_config
from trainer.replay import fast_path_reason, prefill_logits
from trainer.rollout import generate, make_requests
from trainer.toploc import ToplocThresholds
from trainer.verify import SubmissionContext, prefill_batch, replay_rollouts

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

TRAINER = "0x" + "7c" * 20


def _scrambled(arch: str) -> tuple[torch.nn.Module, int]:
    """A tiny policy whose every parameter (norm weights, Qwen2's q/k/v biases) is far from its init."""
    model, tokenizer, _ = tiny_policy(cfg=TINY.model_copy(update={"arch": arch}))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn(p.shape, generator=gen))
    return model, len(tokenizer)


def _right_padded(vocab: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(9)
    ids = torch.zeros((len(lengths), max(lengths)), dtype=torch.long)
    for b, n in enumerate(lengths):
        ids[b, :n] = torch.randint(3, vocab, (n,), generator=gen)
    return ids, torch.tensor(lengths)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_lean_forward_equals_the_hugging_face_forward(arch: str) -> None:
    model, vocab = _scrambled(arch)
    assert fast_path_reason(model) == ""
    assert any(
        layer.self_attn.k_proj.out_features < layer.self_attn.q_proj.out_features
        for layer in model.model.layers
    )  # GQA
    lengths = [37, 5, 64, 1, 20]
    ids, lens = _right_padded(vocab, lengths)
    fast_h, fast_l = prefill_logits(model, ids, lens, "fast")
    ref_h, ref_l = prefill_logits(model, ids, lens, "hf")
    for b, n in enumerate(lengths):  # padding rows are meaningless; real rows must agree
        assert torch.allclose(fast_h[b, :n], ref_h[b, :n], atol=2e-5, rtol=0), (
            b,
            (fast_h[b, :n] - ref_h[b, :n]).abs().max(),
        )
        assert torch.allclose(fast_l[b, :n], ref_l[b, :n], atol=2e-5, rtol=0)
        # and equal to the sequence run alone, unpadded (padding changes nothing)
        alone_h, _ = prefill_logits(model, ids[b : b + 1, :n], lens[b : b + 1], "fast")
        assert torch.allclose(alone_h[0], fast_h[b, :n], atol=2e-5, rtol=0)
    # the difference is float32 rounding, not a different computation: far below one bf16 unit
    real = torch.cat([(fast_h[b, :n] - ref_h[b, :n]).abs().flatten() for b, n in enumerate(lengths)])
    assert float(real.max()) < 1e-4


def test_honest_replays_pass_with_either_engine(one_thread: None) -> None:
    model, tokenizer, env = tiny_policy()
    inner = InnerConfig(steps=1, num_prompts=4, group_size=4, max_new_tokens=40)
    ctx = SubmissionContext(task_id=2, round_=0, trainer=TRAINER, inner=inner)
    requests = make_requests(
        env, tokenizer, task_id=2, round_=0, trainer=TRAINER, step=0, num_prompts=4, group_size=4
    )
    rollouts = generate(model, tokenizer, env, requests, max_new_tokens=40, temperature=1.0)
    for engine in ("fast", "hf"):
        for batch_size in (1, 16):
            replays = replay_rollouts(model, rollouts, ctx, batch_size=batch_size, engine=engine)
            for rep in replays:
                assert rep.proof is not None, (engine, rep)
                assert rep.proof.passes(ToplocThresholds()), (engine, rep)
                assert rep.max_gap <= 0, (engine, rep)
                assert rep.failures == (), (engine, rep)
    fast = prefill_batch(model, rollouts, 16, "fast")
    ref = prefill_batch(model, rollouts, 16, "hf")
    for (fh, fl), (rh, rl) in zip(fast, ref, strict=True):
        assert torch.allclose(fh, rh, atol=2e-5, rtol=0)
        assert torch.allclose(fl, rl, atol=2e-5, rtol=0)


def test_unsupported_models_fall_back_to_the_hugging_face_forward(one_thread: None) -> None:
    _, tokenizer, _ = tiny_policy()
    config = hf_config(TINY, tokenizer)
    config.hidden_act = "gelu"
    model = model_from_config(config)
    assert "gelu" in fast_path_reason(model)
    ids, lens = _right_padded(len(tokenizer), [12, 7])
    auto_h, _ = prefill_logits(model, ids, lens, "auto")
    ref_h, _ = prefill_logits(model, ids, lens, "hf")
    assert torch.equal(auto_h, ref_h)
    with pytest.raises(ConfigError, match="gelu"):
        prefill_logits(model, ids, lens, "fast")
    # a model in training mode (dropout would be live) is not replayed by the lean forward either
    ok, _, _ = tiny_policy()
    ok.train()
    assert "training" in fast_path_reason(ok)
    ok.eval()
    # nor one in another precision (HF's RMSNorm computes in float32 whatever the weights' dtype)
    assert "float32 only" in fast_path_reason(ok.to(torch.bfloat16))


def test_bad_shapes_are_refused() -> None:
    model, _, _ = tiny_policy()
    with pytest.raises(ConfigError, match=r"\[B, S\]"):
        prefill_logits(model, torch.zeros(4, dtype=torch.long), torch.tensor([4]))
    with pytest.raises(ConfigError, match=r"\[B, S\]"):
        prefill_logits(model, torch.zeros((2, 4), dtype=torch.long), torch.tensor([4]))


def test_the_default_model_is_replayed_by_the_lean_forward() -> None:
    model, _, _ = tiny_policy(cfg=ModelConfig())
    assert fast_path_reason(model) == ""
