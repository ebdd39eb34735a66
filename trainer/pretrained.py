"""A task's own model: a local Hugging Face causal LM directory (config, tokenizer, safetensors weights).

What a pretrained policy is made of, and how every node turns it into a model and a tokenizer:

    MODEL_FILES   config.json, tokenizer.json, tokenizer_config.json: the bytes the task pins (the
                  initiator puts them on IPFS; trainers, validators and the auditor fetch them by CID
                  and sha256 and call `load_pretrained_files`)
    weights       model.safetensors (or model.safetensors.index.json + shards) in the directory: read
                  once by the initiator (`pretrained_weights`) and published as the initial checkpoint

Loading never touches the hub, never unpickles and never runs code from the files: the config is parsed
from JSON into `LlamaConfig` / `Qwen2Config` (the architectures the project verifies; `ARCHITECTURES`),
the tokenizer is `tokenizer.json` read by the `tokenizers` library (`PreTrainedTokenizerFast`,
`local_files_only`, whatever `tokenizer_class` the config names), the weights are safetensors only.

A pretrained policy must have a pad and an EOS token, a vocabulary no larger than the model's
`vocab_size`, and untied input/output embeddings (a round's state has one tensor per name). The lean
prefill of `trainer.replay` replays it where `fast_path_reason` allows, else the Hugging Face forward.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from trainer.config import MAX_MODEL_FILE_BYTES, WarmStartConfig
from trainer.envs import Environment
from trainer.errors import CheckpointError, ConfigError

__all__ = [
    "ARCHITECTURES",
    "MAX_WEIGHT_BYTES",
    "MODEL_FILES",
    "TOKENIZER_TEXTS_DOMAIN",
    "load_pretrained_files",
    "make_offline_model",
    "parameter_count",
    "parse_pretrained_config",
    "pretrained_weights",
    "read_pretrained_files",
]

MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")
"""The files of a pretrained directory that define the policy (besides its weights)."""
ARCHITECTURES: dict[str, type[PretrainedConfig]] = {"llama": LlamaConfig, "qwen2": Qwen2Config}
"""`model_type` -> config class: the architectures whose replay, TOPLOC and re-execution are tested."""
MAX_WEIGHT_BYTES = 16 << 30
"""Largest total of safetensors weight files the initiator reads."""


def read_pretrained_files(directory: str | Path) -> dict[str, bytes]:
    """The bytes of `MODEL_FILES` in `directory` (`ConfigError` naming a missing or oversized one)."""
    path = Path(directory)
    if not path.is_dir():
        raise ConfigError(f"pretrained model {path} is not a directory")
    out: dict[str, bytes] = {}
    for name in MODEL_FILES:
        file = path / name
        if not file.is_file():
            raise ConfigError(f"pretrained model {path} has no {name} (needs {', '.join(MODEL_FILES)})")
        if file.stat().st_size > MAX_MODEL_FILE_BYTES:
            raise ConfigError(f"{file} is over {MAX_MODEL_FILE_BYTES} bytes")
        out[name] = file.read_bytes()
    return out


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{name} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must hold a JSON object")
    return value


def parse_pretrained_config(data: bytes) -> PretrainedConfig:
    """The Hugging Face config of config.json's bytes, for replay: eager attention, no dropout.

    Refused (`ConfigError`): not JSON, a `model_type` outside `ARCHITECTURES`, remote code (`auto_map`),
    tied word embeddings, attention dropout.
    """
    raw = _json_object(data, "config.json")
    model_type = raw.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ConfigError(
            f"config.json: model_type {model_type!r} is not supported (supported: {', '.join(ARCHITECTURES)})"
        )
    if "auto_map" in raw:
        raise ConfigError("config.json: auto_map names remote code, which trustrl never runs")
    if float(raw.get("attention_dropout", 0.0) or 0.0) != 0.0:
        raise ConfigError(
            "config.json: attention_dropout must be 0 (a replayed forward must be deterministic)"
        )
    fields = {
        k: v for k, v in raw.items() if k not in ("model_type", "architectures", "transformers_version")
    }
    try:
        config = ARCHITECTURES[model_type](**fields)
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"config.json: {exc}") from None
    if getattr(config, "tie_word_embeddings", False):
        raise ConfigError(
            "config.json: tie_word_embeddings must be false (tied embeddings are not supported yet)"
        )
    config._attn_implementation = "eager"
    return config


def parameter_count(config: PretrainedConfig) -> int:
    """Scalars of the model `config` describes, counted on the meta device (nothing is allocated)."""
    from transformers import LlamaForCausalLM, Qwen2ForCausalLM

    cls = Qwen2ForCausalLM if isinstance(config, Qwen2Config) else LlamaForCausalLM
    with torch.device("meta"):
        model = cls(config)
    return sum(p.numel() for p in model.parameters())


def load_pretrained_files(files: Mapping[str, bytes]) -> tuple[PretrainedConfig, PreTrainedTokenizerBase]:
    """(config, tokenizer) of a pretrained policy's `MODEL_FILES` bytes (see the module docstring)."""
    missing = [n for n in MODEL_FILES if n not in files]
    if missing:
        raise ConfigError(f"pretrained model files missing: {', '.join(missing)}")
    config = parse_pretrained_config(files["config.json"])
    _json_object(files["tokenizer.json"], "tokenizer.json")
    _json_object(files["tokenizer_config.json"], "tokenizer_config.json")
    with tempfile.TemporaryDirectory(prefix="trustrl-tok-") as tmp:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (Path(tmp) / name).write_bytes(files[name])
        try:
            tokenizer = PreTrainedTokenizerFast.from_pretrained(tmp, local_files_only=True)
        except Exception as exc:  # the Rust parser raises plain Exception
            raise ConfigError(f"tokenizer.json / tokenizer_config.json do not load: {exc}") from None
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise ConfigError("the pretrained tokenizer needs a pad and an eos token (tokenizer_config.json)")
    if len(tokenizer) > int(config.vocab_size):
        raise ConfigError(
            f"the tokenizer has {len(tokenizer)} tokens, the model's vocab_size is {config.vocab_size}"
        )
    return config, tokenizer


def _weight_files(path: Path) -> list[Path]:
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        raw = _json_object(index.read_bytes(), str(index))
        weight_map = raw.get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise CheckpointError(f"{index}: weight_map must map tensor names to file names")
        names = sorted(set(weight_map.values()))
        if any("/" in n or "\\" in n or n.startswith(".") for n in names):
            raise CheckpointError(f"{index}: shard names must be plain file names in the directory")
        return [path / n for n in names]
    raise CheckpointError(
        f"pretrained model {path} has no model.safetensors (only safetensors weights are read)"
    )


def pretrained_weights(directory: str | Path, config: PretrainedConfig) -> dict[str, torch.Tensor]:
    """The directory's safetensors weights as float32, checked against the model `config` builds and the
    tensor rules (`CheckpointError` naming what does not fit)."""
    from safetensors.torch import load as load_safetensors

    from trainer.checkpoint import check_values, load_weights, model_weights
    from trainer.model import model_from_config

    files = _weight_files(Path(directory))
    total = sum(f.stat().st_size for f in files if f.is_file())
    if total > MAX_WEIGHT_BYTES:
        raise CheckpointError(f"pretrained weights are {total} bytes, over {MAX_WEIGHT_BYTES}")
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        if not file.is_file():
            raise CheckpointError(f"missing weight shard {file}")
        try:
            part = load_safetensors(file.read_bytes())
        except Exception as exc:  # safetensors raises its own SafetensorError (an Exception)
            raise CheckpointError(f"{file} is not a valid safetensors file: {exc}") from None
        for name, t in part.items():
            if name in tensors:
                raise CheckpointError(f"tensor {name} appears in more than one shard")
            if not t.is_floating_point():
                raise CheckpointError(f"{file}: tensor {name} is {t.dtype}, not floating point")
            tensors[name] = t.float()
    check_values(tensors)
    model = model_from_config(config)
    load_weights(model, tensors)
    return model_weights(model)


TOKENIZER_TEXTS_DOMAIN = hashlib.sha256(b"trustrl/pretrained/tokenizer-texts").digest()
"""Domain of the problems whose text `make_offline_model` trains its BPE tokenizer on."""


def make_offline_model(
    directory: str | Path,
    env: Environment,
    *,
    arch: str = "llama",
    warmstart: WarmStartConfig | None = None,
    texts: int = 2000,
    vocab_size: int = 320,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int = 128,
    max_position_embeddings: int = 128,
    seed: int = 0,
) -> Path:
    """Write a small Hugging Face causal LM directory made with no download: a byte-level BPE tokenizer
    (`tokenizers`, special tokens `<pad>` `<bos>` `<eos>`) trained on the text of `texts` problems of
    `env`, and a Llama or Qwen2 over its vocabulary initialised from `seed` and, with `warmstart`,
    trained on `env`'s answers (`trainer.warmstart.supervise`); saved with `save_pretrained`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from trainer.model import model_from_config
    from trainer.warmstart import problems, supervise

    if arch not in ARCHITECTURES:
        raise ConfigError(f"arch {arch!r} is not one of {', '.join(ARCHITECTURES)}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(
        [p.prompt + p.answer for p in problems(env, TOKENIZER_TEXTS_DOMAIN, texts)],
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=["<pad>", "<bos>", "<eos>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_layers,
        "num_attention_heads": num_heads,
        "num_key_value_heads": num_kv_heads,
        "max_position_embeddings": max_position_embeddings,
        "attention_dropout": 0.0,
        "tie_word_embeddings": False,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    config = LlamaConfig(**common) if arch == "llama" else Qwen2Config(**common, use_sliding_window=False)
    config._attn_implementation = "eager"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_from_config(config)
    if warmstart is not None:
        supervise(model, tokenizer, env, warmstart)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path
