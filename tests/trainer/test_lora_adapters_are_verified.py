"""LoRA adapters on an offline-made Hugging Face model (`trainer.lora`): a training state is the adapters and
their AdamW state only, and every re-check works on the adapted model: honest rollouts and steps pass, a
1%-perturbed model (all weights, or the adapters alone) is caught by TOPLOC, a skipped step and a forged
adapter step by re-execution; the update and the aggregation hold adapters only. Nonsense settings are
refused with one error."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from hfworld import (
    CTX,
    INNER,
    THRESHOLDS,
    World,
    honest_submission,
    make_world,
    perturbed_rollouts,
    step_rollouts,
    verify_honest,
)

from trainer.checkpoint import load_tensors, load_weights, model_weights
from trainer.config import LoraConfig, OuterConfig
from trainer.diloco import TrainerUpdate, aggregate
from trainer.errors import CheckpointError, ConfigError
from trainer.grpo import make_optimizer, train_step
from trainer.lora import adapt, lora_of, trained, with_lora
from trainer.model import model_from_config
from trainer.pretrained import load_pretrained_files, pretrained_weights, read_pretrained_files
from trainer.quality import check_quality
from trainer.replay import fast_path_reason
from trainer.state import load_state, reexecute_step, state_bytes
from trainer.verify import check_step, replay_rollouts

LORA = LoraConfig(rank=4, alpha=8, targets=("q_proj", "v_proj", "up_proj"))


def lora_weights(directory: Path, config: Any) -> dict[str, torch.Tensor]:
    """Round 0's weights of the adapted model, with B moved off zero (as after some rounds of training)."""
    plain = model_from_config(config)
    load_weights(plain, pretrained_weights(directory, config))
    adapt(plain, LORA)
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if ".lora_B." in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    return model_weights(plain)


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def world(request: pytest.FixtureRequest, offline_hf_models: dict[str, Path]) -> World:
    directory = offline_hf_models[request.param]
    plain, tokenizer = load_pretrained_files(read_pretrained_files(directory))
    base = lora_weights(directory, plain)
    return make_world(tokenizer, with_lora(copy.deepcopy(plain), LORA), base)


def test_only_the_adapters_train(world: World) -> None:
    assert lora_of(world.config) == LORA
    names = set(trained(world.base, world.config))
    assert names
    assert all(".lora_A." in n or ".lora_B." in n for n in names)
    assert len(names) == 2 * len(LORA.targets) * int(world.config.num_hidden_layers)
    frozen = {n for n, p in world.model.named_parameters() if not p.requires_grad}
    assert frozen == set(world.base) - names
    assert "LoRA" in fast_path_reason(world.model)  # the Hugging Face forward applies the adapters


def test_honest_rollouts_pass_every_replay_check(world: World) -> None:
    for rep in replay_rollouts(world.model, world.honest, CTX, batch_size=8):
        assert rep.failures == ()
        assert rep.proof is not None
        assert rep.proof.passes(THRESHOLDS.toploc)
        assert rep.max_gap <= THRESHOLDS.max_sampling_gap


@pytest.mark.parametrize("edit", ["model", "adapters"])
def test_a_one_percent_perturbed_model_or_adapter_is_caught_by_toploc(world: World, edit: str) -> None:
    cheated = perturbed_rollouts(world, lambda name: edit == "model" or ".lora_" in name)
    replays = replay_rollouts(world.model, cheated, CTX, batch_size=8)
    flagged = [rep.proof is None or not rep.proof.passes(THRESHOLDS.toploc) for rep in replays]
    assert all(flagged), f"{sum(flagged)}/{len(replays)} flagged"


@pytest.fixture(scope="module")
def submission(world: World) -> dict[str, Any]:
    return honest_submission(world)


def test_a_state_and_the_update_hold_the_adapters_only(world: World, submission: dict[str, Any]) -> None:
    adapters = set(trained(world.base, world.config))
    state = load_tensors(submission["states"][1])
    assert {k.split("/", 1)[1] for k in state if k.startswith("model/")} == adapters
    assert {k.split("/")[1] for k in state if k.startswith("optim/")} == adapters
    assert set(submission["result"].delta) == adapters
    full = sum(v.numel() for v in world.base.values())
    assert 4 * sum(v.numel() for v in state.values()) < full  # adapters + 2 moments: well under the base


def test_an_honest_submission_is_accepted(world: World, submission: dict[str, Any]) -> None:
    report = verify_honest(world, submission)
    assert report.update.exact
    assert report.initial_state.exact
    delta = submission["result"].delta
    quality = check_quality(world.config, world.tokenizer, world.env, world.base, delta, b"\x42" * 32)
    assert quality.drop <= THRESHOLDS.max_quality_drop


def test_a_skipped_or_forged_step_is_caught_by_re_execution(world: World, submission: dict[str, Any]) -> None:
    states, rollouts = submission["states"], step_rollouts(submission)
    model = model_from_config(world.config)
    load_weights(model, world.base)
    opt = make_optimizer(model, INNER.grpo)
    load_state(states[0], model, opt)
    train_step(model, opt, rollouts, INNER.grpo)
    honest_bytes = state_bytes(model, opt)
    honest = check_step(world.config, 0, states[0], honest_bytes, rollouts, INNER, base=world.base)
    assert honest.exact
    skipped = check_step(world.config, 0, states[0], states[0], rollouts, INNER, base=world.base)
    assert not skipped.exact
    assert skipped.rel_l2 == pytest.approx(1.0)
    assert len(skipped.over(THRESHOLDS)) >= 3
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # the committed step's adapters off by 1% of their own size
        for p in model.parameters():
            if p.requires_grad:
                p.mul_(1 + 0.01 * torch.randn(p.shape, generator=gen))
    forged = check_step(world.config, 0, states[0], state_bytes(model, opt), rollouts, INNER, base=world.base)
    assert forged.over(THRESHOLDS), forged


def test_re_execution_needs_the_base(world: World, submission: dict[str, Any]) -> None:
    with pytest.raises(CheckpointError, match="base weights"):
        reexecute_step(world.config, submission["states"][0], step_rollouts(submission), INNER.grpo)


def test_aggregation_moves_the_adapters_only_and_is_deterministic(world: World) -> None:
    adapters = trained(world.base, world.config)
    gen = torch.Generator().manual_seed(9)
    deltas = [{k: 1e-3 * torch.randn(v.shape, generator=gen) for k, v in adapters.items()} for _ in range(3)]
    updates = [TrainerUpdate(f"0x{i:040x}", 8, d) for i, d in enumerate(deltas)]
    first = aggregate(adapters, updates, OuterConfig(clip=1.0)).to_bytes()
    again = aggregate(adapters, list(reversed(updates)), OuterConfig(clip=1.0)).to_bytes()
    assert first == again


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        ({"rank": 0}, "greater than or equal to 1"),
        ({"targets": ["q_proj", "attn"]}, r"unknown \['attn'\]"),
        ({"targets": []}, "at least one layer"),
        ({"alpha": 0}, "greater than or equal to 1"),
    ],
)
def test_nonsense_lora_settings_are_refused(settings: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        LoraConfig.model_validate(settings)


def test_lora_a_model_cannot_take_is_refused(world: World) -> None:
    plain = copy.deepcopy(world.config)
    with pytest.raises(ConfigError, match="exceeds the width"):
        model_from_config(with_lora(plain, LoraConfig(rank=512, targets=("q_proj",))))
    with_lora(plain, None)
    assert lora_of(plain) is None
    mlp_less = torch.nn.Sequential(torch.nn.Linear(4, 4))
    from trainer.lora import inject

    with pytest.raises(ConfigError, match="no linear layer named 'gate_proj'"):
        inject(mlp_less, LoraConfig(targets=("gate_proj",)))
