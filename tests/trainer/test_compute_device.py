"""`--device` (`trainer.device`): the names a node accepts, and on a CUDA device (marker `gpu`, skipped
without one) deterministic kernels and a LoRA trainer on the GPU whose work a CPU validator accepts."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from trainer.checkpoint import load_weights, model_weights
from trainer.config import InnerConfig, LoraConfig, VerifyThresholds
from trainer.device import compute_device, parse_device, use_device
from trainer.diloco import encode_update
from trainer.envs import get_env
from trainer.errors import ConfigError
from trainer.inner import run_inner_loop
from trainer.lora import adapt, with_lora
from trainer.model import model_from_config
from trainer.pretrained import load_pretrained_files, pretrained_weights, read_pretrained_files
from trainer.verify import SubmissionContext, decide, verify_submission

NO_CUDA = not torch.cuda.is_available()


def test_the_cpu_is_the_default_and_auto_picks_what_there_is() -> None:
    assert compute_device() == torch.device("cpu")
    assert parse_device("cpu") == torch.device("cpu")
    assert parse_device("auto") == torch.device("cpu" if NO_CUDA else "cuda")


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "", "cpu:1"])
def test_a_device_that_is_not_one_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="give cpu, cuda, cuda:N or auto"):
        parse_device(name)


@pytest.mark.skipif(not NO_CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_refused_with_one_line() -> None:
    with pytest.raises(ConfigError, match="no CUDA device is available"):
        use_device("cuda")
    assert compute_device() == torch.device("cpu")


@pytest.fixture
def on_cuda() -> Iterator[None]:
    use_device("cuda")
    yield
    use_device("cpu")


@pytest.mark.usefixtures("on_cuda")
@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device (none here)")
def test_cuda_runs_deterministic_kernels_in_float32() -> None:
    import os

    assert torch.are_deterministic_algorithms_enabled()
    assert not torch.backends.cuda.matmul.allow_tf32
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


@pytest.mark.gpu
@pytest.mark.skipif(NO_CUDA, reason="needs a CUDA device (none here)")
def test_a_lora_trainer_on_cuda_is_accepted_by_a_cpu_validator(offline_hf_models: dict[str, Path]) -> None:
    directory = offline_hf_models["qwen2"]
    env = get_env("addition", {"digits": 1})
    plain, tokenizer = load_pretrained_files(read_pretrained_files(directory))
    lora = LoraConfig(rank=4, targets=("q_proj", "v_proj", "up_proj"))
    model = model_from_config(plain)
    load_weights(model, pretrained_weights(directory, plain))
    adapt(model, lora)
    base = model_weights(model)
    config = with_lora(copy.deepcopy(plain), lora)
    inner = InnerConfig(steps=2, num_prompts=4, group_size=4, max_new_tokens=6)
    states: dict[int, bytes] = {}
    use_device("cuda")
    try:
        trainer_model = model_from_config(config)
        assert next(trainer_model.parameters()).device.type == "cuda"
        result = run_inner_loop(
            trainer_model,
            tokenizer,
            env,
            base,
            inner,
            task_id=5,
            round_=0,
            trainer="0x" + "7e" * 20,
            state_sink=lambda j, data: states.__setitem__(j, data),
        )
    finally:
        use_device("cpu")
    report = verify_submission(
        ctx=SubmissionContext(task_id=5, round_=0, trainer="0x" + "7e" * 20, inner=inner),
        policy_config=config,
        tokenizer=tokenizer,
        env=env,
        base=base,
        rollouts=result.rollouts,
        sampled=list(range(len(result.rollouts))),
        picked_steps=[0, 1],
        states=states,
        update=encode_update(result.delta, inner.compression),
    )
    verdict = decide(report, VerifyThresholds())
    assert verdict.decision == "ACCEPT", verdict.reasons
