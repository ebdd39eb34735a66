"""Canonical checkpoints: equal tensors give equal bytes; anything corrupt raises CheckpointError."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from core_helpers import one_thread, tiny_policy
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from trainer.checkpoint import (
    canonical_bytes,
    content_hash,
    load_policy,
    load_tensors,
    load_weights,
    save_policy,
    weights_bytes,
)
from trainer.errors import CheckpointError

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def _tensors() -> dict[str, torch.Tensor]:
    return {
        "w": torch.arange(6, dtype=torch.float32).reshape(2, 3) / 7,
        "b": torch.tensor([-0.0, 1.5], dtype=torch.float32),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "half": torch.tensor([1.25, -3.0], dtype=torch.bfloat16),
        "step": torch.tensor(3.0),
        "empty": torch.zeros((0, 4)),
        "flag": torch.tensor([True, False]),
    }


def _with_header(header: object, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, "little") + text + body


def test_equal_tensors_give_equal_bytes_whatever_the_order_or_layout() -> None:
    a = _tensors()
    b = {k: a[k].clone() for k in reversed(list(a))}
    b["w"] = a["w"].t().contiguous().t()  # same values, non-contiguous layout
    assert canonical_bytes(a) == canonical_bytes(b)
    assert content_hash(canonical_bytes(a)) == content_hash(canonical_bytes(b))
    c = dict(a)
    c["w"] = a["w"].clone()
    c["w"][0, 0] = torch.nextafter(c["w"][0, 0], torch.tensor(1.0))
    assert canonical_bytes(c) != canonical_bytes(a)


def test_format_is_sorted_metadata_free_safetensors() -> None:
    data = canonical_bytes(_tensors())
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    header = json.loads(data[8 : 8 + n])
    assert list(header) == sorted(header)
    assert "__metadata__" not in header
    offsets = [header[k]["data_offsets"] for k in sorted(header)]
    assert offsets[0][0] == 0
    assert all(x[1] == y[0] for x, y in itertools.pairwise(offsets))
    lib = st_load(data)  # the reference reader agrees
    ours = load_tensors(data, require_canonical=True)
    for k, v in _tensors().items():
        assert torch.equal(lib[k], v)
        assert torch.equal(ours[k], v)
        assert ours[k].dtype == v.dtype
    assert canonical_bytes(lib) == data


def test_files_written_by_the_safetensors_library_load() -> None:
    data = st_save(_tensors(), metadata={"format": "pt"})
    loaded = load_tensors(data)
    assert canonical_bytes(loaded) == canonical_bytes(_tensors())
    with pytest.raises(CheckpointError, match="metadata"):
        load_tensors(data, require_canonical=True)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d[:5], "truncated"),
        (lambda d: d[:-1], "beyond|trailing|truncated"),
        (lambda d: d + b"\x00", "trailing"),
        (lambda d: (10**9).to_bytes(8, "little") + d[8:], "exceeds"),
        (lambda d: (len(d)).to_bytes(8, "little") + d[8:], "truncated"),
        (lambda d: d[:8] + b"\xff" + d[9:], "JSON"),
    ],
)
def test_corrupt_blobs_raise(mutate: object, match: str) -> None:
    data = canonical_bytes(_tensors())
    with pytest.raises(CheckpointError, match=match):
        load_tensors(mutate(data))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("header", "body", "match"),
    [
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]},
            },
            bytes(8),
            "overlap|beyond",
        ),
        ({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8), "gap"),
        ({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8), "do not hold"),
        ({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, bytes(8), "shape"),
        ({"a": {"dtype": "F31", "shape": [2], "data_offsets": [0, 8]}}, bytes(8), "dtype"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], "x": 1}}, bytes(8), "exactly"),
        ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}, bytes(8), "beyond"),
        ({"a": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}}, b"\x01\x07", "bool"),
        ({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, bytes(4), "shape"),
        ([1, 2], b"", "object"),
    ],
)
def test_bad_headers_raise(header: object, body: bytes, match: str) -> None:
    with pytest.raises(CheckpointError, match=match):
        load_tensors(_with_header(header, body))


def test_duplicate_keys_and_size_limit() -> None:
    entry = b'{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'
    text = b'{"a":' + entry + b',"a":' + entry + b"}"
    with pytest.raises(CheckpointError, match="duplicate"):
        load_tensors(len(text).to_bytes(8, "little") + text + b"\x00")
    data = canonical_bytes(_tensors())
    assert load_tensors(data, max_bytes=len(data))
    with pytest.raises(CheckpointError, match="limit"):
        load_tensors(data, max_bytes=len(data) - 1)


def test_non_canonical_order_is_detected() -> None:
    header = {
        "b": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
        "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]},
    }
    data = _with_header(header, b"\x01\x02")
    assert load_tensors(data)["a"].item() == 2
    with pytest.raises(CheckpointError, match="canonical"):
        load_tensors(data, require_canonical=True)


def test_policy_directory_round_trip(tmp_path: Path) -> None:
    model, tok, _ = tiny_policy()
    data = save_policy(tmp_path / "p", model, tok)
    assert (tmp_path / "p" / "model.safetensors").read_bytes() == data == weights_bytes(model)
    loaded, loaded_tok = load_policy(tmp_path / "p")
    assert weights_bytes(loaded) == data
    assert len(loaded_tok) == len(tok)
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, loaded(input_ids=ids).logits)


def test_load_weights_refuses_mismatch() -> None:
    model, _, _ = tiny_policy()
    weights = dict(model.state_dict())
    name = next(iter(weights))
    with pytest.raises(CheckpointError, match="missing"):
        load_weights(model, {k: v for k, v in weights.items() if k != name})
    with pytest.raises(CheckpointError):
        load_weights(model, {**weights, name: torch.zeros(3)})
