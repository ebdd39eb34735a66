"""A task's own Hugging Face model (Llama, Qwen2, byte-level BPE tokenizer, made offline): it loads the way
every node loads it, the lean prefill replays it, and the re-checks work on it as on the tiny model: honest
rollouts and steps pass, a 1%-perturbed model is caught by TOPLOC, a skipped step by re-execution; the
quality gate and the aggregation run on it. Broken or unsupported directories are refused with one error."""

from __future__ import annotations

import json
import shutil
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

from trainer.config import OuterConfig
from trainer.diloco import TrainerUpdate, aggregate
from trainer.errors import CheckpointError, ConfigError
from trainer.grpo import make_optimizer, train_step
from trainer.model import model_from_config
from trainer.pretrained import load_pretrained_files, pretrained_weights, read_pretrained_files
from trainer.quality import check_quality
from trainer.replay import fast_path_reason
from trainer.state import load_state, state_bytes
from trainer.tokenizer import decode_completion, decode_prompt, encode_prompt
from trainer.verify import check_rollout, check_step, replay_rollouts


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def world(request: pytest.FixtureRequest, offline_hf_models: dict[str, Path]) -> World:
    directory = offline_hf_models[request.param]
    config, tokenizer = load_pretrained_files(read_pretrained_files(directory))
    return make_world(tokenizer, config, pretrained_weights(directory, config))


def test_the_directory_loads_as_every_node_loads_it(world: World, offline_hf_models: dict[str, Path]) -> None:
    assert world.config.model_type in ("llama", "qwen2")
    assert world.config._attn_implementation == "eager"
    assert len(world.tokenizer) == world.config.vocab_size
    assert fast_path_reason(world.model) == ""  # the lean prefill replays it
    prompt = encode_prompt(world.tokenizer, "7+8=")
    assert prompt[0] == world.tokenizer.bos_token_id
    assert decode_prompt(world.tokenizer, prompt) == "7+8="
    assert world.tokenizer.backend_tokenizer.model.__class__.__name__ == "BPE"
    answer = [*world.tokenizer("15", add_special_tokens=False)["input_ids"], world.tokenizer.eos_token_id]
    assert decode_completion(world.tokenizer, answer) == "15"


def test_honest_rollouts_pass_every_replay_check(world: World) -> None:
    vocab = int(world.config.vocab_size)
    assert all(check_rollout(r, CTX, world.env, world.tokenizer, vocab).failures == () for r in world.honest)
    for batch_size in (1, 8):
        for rep in replay_rollouts(world.model, world.honest, CTX, batch_size=batch_size):
            assert rep.failures == ()
            assert rep.proof is not None
            assert rep.proof.passes(THRESHOLDS.toploc)
            assert rep.max_gap <= THRESHOLDS.max_sampling_gap


def test_a_one_percent_perturbed_model_is_caught_by_toploc(world: World) -> None:
    replays = replay_rollouts(world.model, perturbed_rollouts(world), CTX, batch_size=8)
    flagged = [rep.proof is None or not rep.proof.passes(THRESHOLDS.toploc) for rep in replays]
    assert all(flagged), f"{sum(flagged)}/{len(replays)} flagged"


@pytest.fixture(scope="module")
def submission(world: World) -> dict[str, Any]:
    return honest_submission(world)


def test_an_honest_submission_is_accepted(world: World, submission: dict[str, Any]) -> None:
    verify_honest(world, submission)
    delta = submission["result"].delta
    quality = check_quality(world.config, world.tokenizer, world.env, world.base, delta, b"\x42" * 32)
    assert quality.drop <= THRESHOLDS.max_quality_drop


def test_a_skipped_step_is_caught_by_re_execution(world: World, submission: dict[str, Any]) -> None:
    states, rollouts = submission["states"], step_rollouts(submission)
    model = model_from_config(world.config)
    opt = make_optimizer(model, INNER.grpo)
    load_state(states[0], model, opt)
    train_step(model, opt, rollouts, INNER.grpo)
    honest = check_step(world.config, 0, states[0], state_bytes(model, opt), rollouts, INNER)
    assert honest.exact
    assert honest.over(THRESHOLDS) == []
    skipped = check_step(world.config, 0, states[0], states[0], rollouts, INNER)
    assert not skipped.exact
    assert skipped.rel_l2 == pytest.approx(1.0)
    assert len(skipped.over(THRESHOLDS)) >= 3


def test_aggregation_is_deterministic(world: World) -> None:
    gen = torch.Generator().manual_seed(9)
    deltas = [
        {k: 1e-3 * torch.randn(v.shape, generator=gen) for k, v in world.base.items()} for _ in range(3)
    ]
    updates = [TrainerUpdate(f"0x{i:040x}", 8, d) for i, d in enumerate(deltas)]
    first = aggregate(world.base, updates, OuterConfig(clip=1.0)).to_bytes()
    again = aggregate(world.base, list(reversed(updates)), OuterConfig(clip=1.0)).to_bytes()
    assert first == again


# --- refused directories -----------------------------------------------------------------------------------


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_config(path: Path, **changes: object) -> None:
    raw = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**raw, **changes}))


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"model_type": "gpt2"}, "model_type 'gpt2' is not supported"),
        ({"auto_map": {"AutoModelForCausalLM": "evil.Model"}}, "remote code"),
        ({"tie_word_embeddings": True}, "tie_word_embeddings must be false"),
        ({"attention_dropout": 0.1}, "attention_dropout must be 0"),
        ({"vocab_size": 100}, r"the tokenizer has \d+ tokens, the model.s vocab_size is 100"),
    ],
)
def test_an_unsupported_config_is_refused(
    offline_hf_models: dict[str, Path], tmp_path: Path, change: dict[str, object], error: str
) -> None:
    path = _copy(offline_hf_models["llama"], tmp_path / "m")
    _edit_config(path, **change)
    with pytest.raises(ConfigError, match=error):
        load_pretrained_files(read_pretrained_files(path))


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("config.json", b"{not json", "config.json is not valid JSON"),
        ("tokenizer.json", b"[1, 2]", "tokenizer.json must hold a JSON object"),
        ("tokenizer.json", b'{"model": {"type": "nothing"}}', "do not load"),
        ("tokenizer_config.json", b'{"pad_token": null, "eos_token": null}', "needs a pad and an eos token"),
    ],
)
def test_a_corrupt_file_gives_one_clear_error(
    offline_hf_models: dict[str, Path], tmp_path: Path, name: str, data: bytes, error: str
) -> None:
    path = _copy(offline_hf_models["qwen2"], tmp_path / "m")
    (path / name).write_bytes(data)
    with pytest.raises(ConfigError, match=error):
        load_pretrained_files(read_pretrained_files(path))


def test_weights_must_be_safetensors_that_fit(offline_hf_models: dict[str, Path], tmp_path: Path) -> None:
    path = _copy(offline_hf_models["llama"], tmp_path / "m")
    config, _ = load_pretrained_files(read_pretrained_files(path))
    (path / "model.safetensors").write_bytes(b"\x08" + b"\0" * 7 + b"{}")
    with pytest.raises(CheckpointError):
        pretrained_weights(path, config)
    (path / "model.safetensors").unlink()
    (path / "pytorch_model.bin").write_bytes(b"pickles are never read")
    with pytest.raises(CheckpointError, match="only safetensors"):
        pretrained_weights(path, config)
    other = _copy(offline_hf_models["qwen2"], tmp_path / "q")
    with pytest.raises(CheckpointError, match="do not match"):
        pretrained_weights(other, config)
    (other / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"has no tokenizer\.json"):
        read_pretrained_files(other)
