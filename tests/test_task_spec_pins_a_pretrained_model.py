"""A task spec pins a pretrained model's config and tokenizer files by CID, sha256 and size; every role loads
them through `protocol.verification.policy_of`. A spec without one keeps its bytes (and hash); a file that
is missing, other bytes or too large gives one clear error; the tiny model's path does not change."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pytest

from protocol.artifacts import ArtifactInvalidError, ArtifactUnavailableError, artifact_ref
from protocol.errors import ConfigError
from protocol.ipfs import canonical_json
from protocol.roles.initiator import InitialModel, TaskFile, load_task_file
from protocol.verification import Fetch, TaskContext, policy_of
from protocol.wire import EnvSpec, PretrainedSpec, SizeLimits, TaskSpec
from trainer.config import InnerConfig, ModelConfig, OuterConfig, VerifyThresholds
from trainer.model import hf_config
from trainer.pretrained import read_pretrained_files
from trainer.tokenizer import build_tokenizer

LIMITS = SizeLimits(checkpoint=1 << 20, state=1 << 20, update=1 << 20, bundle=1 << 20)


def _spec(pretrained: PretrainedSpec | None = None, model: ModelConfig = ModelConfig()) -> TaskSpec:
    return TaskSpec(
        env=EnvSpec(name="addition", params={"digits": 1}),
        model=model,
        inner=InnerConfig(),
        outer=OuterConfig(),
        initial_checkpoint=artifact_ref(b"weights"),
        verify=VerifyThresholds(),
        sample_rollouts=1,
        sample_steps=1,
        limits=LIMITS,
        pretrained=pretrained,
    )


def _pinned(files: Mapping[str, bytes], arch: str = "llama") -> PretrainedSpec:
    return PretrainedSpec(
        arch=arch,  # type: ignore[arg-type]
        config=artifact_ref(files["config.json"]),
        tokenizer=artifact_ref(files["tokenizer.json"]),
        tokenizer_config=artifact_ref(files["tokenizer_config.json"]),
    )


def _fetch(blobs: Mapping[str, bytes]) -> Fetch:
    """`fetch_verified` over a dict of CID -> bytes."""

    def fetch(cid: str, sha256: bytes, limit: int, what: str) -> bytes:
        if cid not in blobs:
            raise ArtifactUnavailableError(f"{what} {cid}: not found", cid)
        data = blobs[cid]
        if len(data) > limit:
            raise ArtifactInvalidError(f"{what} {cid} exceeds the limit of {limit} bytes")
        if hashlib.sha256(data).digest() != sha256:
            raise ArtifactInvalidError(f"{what} {cid} has other content than committed")
        return data

    return fetch


def test_a_spec_without_a_pretrained_model_keeps_its_bytes() -> None:
    spec = _spec()
    data = canonical_json(spec)
    assert b"pretrained" not in data
    assert TaskSpec.model_validate_json(data) == spec
    assert canonical_json(TaskSpec.model_validate_json(data)) == data
    ctx = TaskContext(1, "0x" + "11" * 20, 1, spec)
    tiny = build_tokenizer(ctx.env.alphabet)
    assert ctx.tokenizer.get_vocab() == tiny.get_vocab()
    assert ctx.hf.to_dict() == hf_config(spec.model, tiny).to_dict()


def test_a_pinned_model_loads_through_policy_of(offline_hf_models: dict[str, Path]) -> None:
    files = read_pretrained_files(offline_hf_models["qwen2"])
    spec = _spec(_pinned(files, "qwen2"))
    again = TaskSpec.model_validate_json(canonical_json(spec))
    assert again == spec
    blobs = {artifact_ref(d).cid: d for d in files.values()}
    _, tokenizer, config = policy_of(again, _fetch(blobs))
    assert config.model_type == "qwen2"
    assert len(tokenizer) == config.vocab_size
    assert TaskContext(1, "0x" + "11" * 20, 1, again, _fetch(blobs)).hf.model_type == "qwen2"
    with pytest.raises(ConfigError, match="needs its files fetched"):
        policy_of(again, None)


def test_a_wrong_or_missing_file_gives_one_clear_error(offline_hf_models: dict[str, Path]) -> None:
    files = read_pretrained_files(offline_hf_models["llama"])
    spec = _spec(_pinned(files))
    blobs = {artifact_ref(d).cid: d for d in files.values()}
    tampered = {**blobs, spec.pretrained.tokenizer.cid: files["tokenizer.json"][:-1] + b" "}  # type: ignore[union-attr]
    with pytest.raises(
        ConfigError, match=r"unusable: pretrained model file tokenizer\.json .* other content"
    ):
        policy_of(spec, _fetch(tampered))
    missing = {k: v for k, v in blobs.items() if k != spec.pretrained.config.cid}  # type: ignore[union-attr]
    with pytest.raises(ArtifactUnavailableError, match=r"config\.json"):
        policy_of(spec, _fetch(missing))
    small = _spec(_pinned(files)).model_copy(
        update={"limits": LIMITS.model_copy(update={"checkpoint": 1000})}
    )
    with pytest.raises(
        ConfigError, match="bytes of float32 weights, over the task's checkpoint limit of 1000"
    ):
        policy_of(small, _fetch(blobs))
    wrong_arch = _spec(_pinned(files, "qwen2"))
    with pytest.raises(ConfigError, match=r"config\.json is 'llama', the spec says 'qwen2'"):
        policy_of(wrong_arch, _fetch(blobs))


def test_a_pretrained_spec_is_refused_with_a_model_or_oversized_files(
    offline_hf_models: dict[str, Path],
) -> None:
    files = read_pretrained_files(offline_hf_models["llama"])
    with pytest.raises(ValueError, match="model must be left at its default"):
        _spec(_pinned(files), model=ModelConfig(hidden_size=64))
    big = _pinned(files).config.model_copy(update={"size": (64 << 20) + 1})
    with pytest.raises(ValueError, match="over"):
        PretrainedSpec.model_validate({**_pinned(files).model_dump(), "config": big.model_dump()})


def test_a_task_file_names_the_directory_under_initial() -> None:
    base = {"env": {"name": "addition"}, "chain": {"num_rounds": 1, "reward_per_round": 1}}
    task = TaskFile.model_validate({**base, "initial": {"pretrained": "/models/m"}})
    assert task.initial == InitialModel(pretrained=Path("/models/m"))
    with pytest.raises(ValueError, match="leave model out"):
        TaskFile.model_validate({**base, "model": {"hidden_size": 64}, "initial": {"pretrained": "/m"}})
    with pytest.raises(ValueError, match="give one of warmstart, checkpoint and pretrained"):
        TaskFile.model_validate({**base, "initial": {"pretrained": "/m", "checkpoint": "/c"}})


def test_the_example_task_file_names_its_model_relative_to_itself() -> None:
    path = Path(__file__).resolve().parents[1] / "examples" / "task-pretrained.yaml"
    task = load_task_file(path)
    assert task.initial.pretrained == path.parent / "../out/hf-qwen2"
    assert task.deterrence().ok
