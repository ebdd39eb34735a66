"""Canonical tensor files: safetensors-compatible, written by our own code, equal tensors -> equal bytes.

Layout (a valid safetensors file that the `safetensors` library also reads):

    u64 little-endian N | N bytes of JSON header | data

The header is `{"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}` with names
sorted by code point, no `__metadata__`, no whitespace (`json.dumps(..., separators=(",", ":"))`),
padded with spaces to a multiple of 8 bytes. The data holds every tensor, row-major, little-endian,
in the same sorted order, back to back with no gap. Checkpoints come from strangers, so
`load_tensors` validates everything and never unpickles.

The tensor rules, in one place, for every update, state and checkpoint a validator, an aggregator or an
auditor reads (`load_tensors` applies the value rule to everything it loads):

    values  every floating-point element finite and |x| <= MAX_ABS     (`check_values`; NaN fails it)
    layout  the expected names, and per name the expected shape and dtype   (`check_layout`)

Subnormal values are allowed: AdamW's second moments of an honest run decay into them.

A policy directory is `config.json` + the tokenizer's files + `model.safetensors` (canonical).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerBase

from trainer.errors import AbsurdValueError, CheckpointError, ConfigError

__all__ = [
    "DTYPES",
    "MAX_ABS",
    "MODEL_FILE",
    "canonical_bytes",
    "canonical_hash",
    "check_layout",
    "check_values",
    "content_hash",
    "copy_into",
    "load_policy",
    "load_tensors",
    "load_weights",
    "model_weights",
    "save_policy",
    "weights_bytes",
]

MODEL_FILE = "model.safetensors"

DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}
MAX_ABS = 1e6
"""The largest magnitude any element of a weight, optimizer moment, update or momentum may have. Honest
values are far below it (weights O(1), gradients clipped to norm 1, so AdamW moments <= 1); it keeps
every later product, square and fp32 rounding of the aggregation finite."""
_MAX_HEADER = 100 * 1024 * 1024
_MAX_NAME = 1024
_MAX_RANK = 16


def _canonical_parts(tensors: Mapping[str, torch.Tensor]) -> tuple[bytes, list[torch.Tensor]]:
    """The length-prefixed header and the flat byte views of the data, in canonical order."""
    header: dict[str, object] = {}
    views: list[torch.Tensor] = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(name, str) or not name or name == "__metadata__" or len(name) > _MAX_NAME:
            raise CheckpointError(f"invalid tensor name {name!r}")
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{name}: not a tensor ({type(t).__name__})")
        if t.dtype not in _NAMES:
            raise CheckpointError(f"{name}: unsupported dtype {t.dtype}")
        flat = t.detach().to("cpu").contiguous().reshape(-1)
        if sys.byteorder != "little" and flat.element_size() > 1:  # pragma: no cover - big-endian hosts
            flat = torch.from_numpy(flat.numpy().byteswap())
        view = flat.view(torch.uint8) if flat.numel() else torch.empty(0, dtype=torch.uint8)
        header[name] = {
            "dtype": _NAMES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + view.numel()],
        }
        views.append(view)
        offset += view.numel()
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text, views


def canonical_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """The canonical safetensors bytes of `tensors` (any device; sorted names, no metadata)."""
    head, views = _canonical_parts(tensors)
    out = bytearray(head)
    for v in views:
        out += v.numpy().data
    return bytes(out)


def canonical_hash(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """sha256 of `canonical_bytes(tensors)`, streamed without building the bytes."""
    head, views = _canonical_parts(tensors)
    h = hashlib.sha256(head)
    for v in views:
        h.update(v.numpy().data)
    return h.digest()


def content_hash(data: bytes) -> bytes:
    """sha256 of an artifact's canonical bytes (32 bytes, what goes on chain)."""
    return hashlib.sha256(data).digest()


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise CheckpointError(f"duplicate key {key!r} in the header")
        out[key] = value
    return out


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_values(tensors: Mapping[str, torch.Tensor], *, max_abs: float = MAX_ABS) -> None:
    """Every floating-point element finite with |x| <= `max_abs`, else `AbsurdValueError` naming the first
    tensor that breaks it and how. max |x| is exact in any dtype and NaN propagates through it; the bound
    is compared as a Python float (in fp16 it would round to inf)."""
    for name in sorted(tensors):
        t = tensors[name]
        if not t.is_floating_point() or t.numel() == 0:
            continue
        worst = float(t.abs().max())
        if not worst <= max_abs:
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            big = int((t.abs().double() > max_abs).sum()) - inf
            counts = {"NaN": nan, "infinite": inf, f"beyond |x| <= {max_abs:g}": big}
            shown = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            raise AbsurdValueError(f"{name} holds {shown} of {t.numel()} values")


def check_layout(tensors: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor]) -> None:
    """The names of `like`, each with its shape and dtype, else `CheckpointError` naming the difference."""
    missing = sorted(set(like) - set(tensors))
    extra = sorted(set(tensors) - set(like))
    if missing or extra:
        raise CheckpointError(f"tensors do not match: missing {missing[:5]}, unexpected {extra[:5]}")
    for name in sorted(like):
        got, want = tensors[name], like[name]
        if got.shape != want.shape or got.dtype != want.dtype:
            raise CheckpointError(
                f"{name}: got {tuple(got.shape)} {got.dtype}, expected {tuple(want.shape)} {want.dtype}"
            )


def load_tensors(
    data: bytes,
    *,
    max_bytes: int | None = None,
    require_canonical: bool = False,
    like: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Parse a safetensors blob strictly; every defect raises `CheckpointError`.

    Checked: total size against `max_bytes`, header length and JSON (no duplicate keys), entry
    keys, dtype names, shapes, that each entry's byte range matches its shape and dtype, and that
    the ranges tile the data section exactly (no gap, no overlap, nothing after). `__metadata__`
    (string to string) is accepted unless `require_canonical`, which also demands that the blob is
    byte-for-byte what `canonical_bytes` writes for its tensors. Then the tensor rules (module
    docstring): the values always (`AbsurdValueError`), the layout of `like` when given.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CheckpointError(f"checkpoint data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if max_bytes is not None and len(data) > max_bytes:
        raise CheckpointError(f"checkpoint is {len(data)} bytes, more than the limit {max_bytes}")
    if len(data) < 8:
        raise CheckpointError(f"checkpoint truncated: {len(data)} bytes, no header length")
    n = int.from_bytes(data[:8], "little")
    if n > _MAX_HEADER:
        raise CheckpointError(f"header length {n} exceeds {_MAX_HEADER}")
    if 8 + n > len(data):
        raise CheckpointError(f"checkpoint truncated: header needs {n} bytes, {len(data) - 8} present")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"header is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError("header is not a JSON object")
    body = memoryview(data)[8 + n :]
    metadata = header.pop("__metadata__", None)
    if metadata is not None:
        if require_canonical:
            raise CheckpointError("a canonical checkpoint has no __metadata__")
        if not isinstance(metadata, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
        ):
            raise CheckpointError("__metadata__ must map strings to strings")

    entries: list[tuple[int, int, str, torch.dtype, list[int]]] = []
    for name, entry in header.items():
        if not name or len(name) > _MAX_NAME:
            raise CheckpointError(f"invalid tensor name {name!r}")
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise CheckpointError(f"{name}: entry must have exactly dtype, shape and data_offsets")
        dtype_name, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype_name not in DTYPES:
            raise CheckpointError(f"{name}: unsupported dtype {dtype_name!r}")
        if (
            not isinstance(shape, list)
            or len(shape) > _MAX_RANK
            or not all(_is_int(d) and d >= 0 for d in shape)
        ):
            raise CheckpointError(f"{name}: invalid shape {shape!r}")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets):
            raise CheckpointError(f"{name}: invalid data_offsets {offsets!r}")
        begin, end = offsets
        dtype = DTYPES[dtype_name]
        size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        if not 0 <= begin <= end or end - begin != size:
            raise CheckpointError(
                f"{name}: data_offsets {offsets} do not hold {size} bytes for shape {shape} {dtype_name}"
            )
        if end > len(body):
            raise CheckpointError(f"{name}: data ends at {end}, beyond the {len(body)} data bytes")
        entries.append((begin, end, name, dtype, shape))

    position = 0
    for begin, end, name, _, _ in sorted(entries):
        if begin < position:
            raise CheckpointError(f"{name}: its data overlaps the previous tensor's")
        if begin > position:
            raise CheckpointError(f"{name}: gap of {begin - position} bytes before its data")
        position = end
    if position != len(body):
        raise CheckpointError(f"{len(body) - position} trailing bytes after the last tensor")

    tensors: dict[str, torch.Tensor] = {}
    for begin, end, name, dtype, shape in entries:
        raw = bytearray(body[begin:end])
        if dtype == torch.bool and any(b > 1 for b in raw):
            raise CheckpointError(f"{name}: bool tensor holds a byte other than 0 or 1")
        if end == begin:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=torch.uint8).view(dtype).reshape(shape)
            if sys.byteorder != "little" and t.element_size() > 1:
                t = torch.from_numpy(t.numpy().byteswap())  # pragma: no cover - big-endian hosts only
        tensors[name] = t
    if require_canonical and canonical_bytes(tensors) != data:
        raise CheckpointError("checkpoint is not in canonical form")
    if like is not None:
        check_layout(tensors, like)
    check_values(tensors)
    return tensors


def model_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict, detached (names as `state_dict()` gives them)."""
    return {k: v.detach() for k, v in model.state_dict().items()}


def weights_bytes(model: torch.nn.Module) -> bytes:
    """Canonical bytes of the model's weights."""
    return canonical_bytes(model_weights(model))


def load_weights(model: torch.nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy `tensors` into `model`, which must have exactly these names, shapes and dtypes."""
    copy_into(model.state_dict(), tensors)


def copy_into(own: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy `tensors` into the model tensors `own`, after checking they have exactly their names, shapes and
    dtypes (`CheckpointError` otherwise, nothing copied)."""
    try:
        check_layout(tensors, own)
    except CheckpointError as exc:
        raise CheckpointError(f"weights do not match the model: {exc}") from None
    with torch.no_grad():
        for name, target in own.items():
            target.copy_(tensors[name])


def save_policy(directory: str | Path, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> bytes:
    """Write config.json, the tokenizer files and canonical model.safetensors; returns the weight bytes."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(path / "config.json"), use_diff=False)
    tokenizer.save_pretrained(str(path))
    data = weights_bytes(model)
    (path / MODEL_FILE).write_bytes(data)
    return data


def load_policy(
    directory: str | Path, *, max_bytes: int | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a policy directory written by `save_policy` (or any local HF causal LM with safetensors)."""
    from trainer.model import model_from_config
    from trainer.tokenizer import load_tokenizer

    path = Path(directory)
    if not (path / "config.json").is_file():
        raise ConfigError(f"no config.json in {path}")
    if not (path / MODEL_FILE).is_file():
        raise CheckpointError(f"no {MODEL_FILE} in {path}")
    try:
        config = AutoConfig.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"cannot read {path / 'config.json'}: {exc}") from None
    if config.model_type in ("llama", "qwen2"):
        config._attn_implementation = "eager"
    model = model_from_config(config)
    load_weights(model, load_tensors((path / MODEL_FILE).read_bytes(), max_bytes=max_bytes))
    return model, load_tokenizer(path)
