"""DiLoCo outer side: golden aggregation vectors, an independent reference, int8 error bound, encodings."""

from __future__ import annotations

import hashlib
import json
import random
import struct
from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.checkpoint import canonical_bytes, load_tensors
from trainer.config import Compression, OuterConfig
from trainer.diloco import (
    TrainerUpdate,
    aggregate,
    compress_int8,
    decode_update,
    decompress_int8,
    encode_update,
    global_checkpoint_bytes,
    load_global_checkpoint,
    pseudo_gradient,
)
from trainer.errors import CheckpointError, ConfigError

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "aggregation.json").read_text())["cases"]


def _tensor(d: dict[str, Any], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.tensor(d["values"], dtype=dtype).reshape(d["shape"])


def _tensors(d: dict[str, Any], dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    return {k: _tensor(v, dtype) for k, v in d.items()}


def _updates(case: dict[str, Any]) -> list[TrainerUpdate]:
    out = []
    for u in case["updates"]:
        if "int8" in u:
            qs = _tensors(u["int8"]["q"], torch.int8)
            scales = _tensors(u["int8"]["scale"])
            blob = canonical_bytes(
                {**{f"q/{k}": v for k, v in qs.items()}, **{f"scale/{k}": v for k, v in scales.items()}}
            )
            assert hashlib.sha256(blob).hexdigest() == u["int8"]["update_sha256"]
            delta = decode_update(blob)
        else:
            delta = _tensors(u["delta"])
        out.append(TrainerUpdate(u["address"], u["work_units"], delta))
    return out


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_golden_vectors(case: dict[str, Any]) -> None:
    base = _tensors(case["base"])
    momentum = _tensors(case["momentum"]) if case["momentum"] else None
    updates = _updates(case)
    outer = OuterConfig(**case["outer"])
    expected = case["expected"]
    for trial in range(3):  # the input order never matters: trainers are sorted inside
        shuffled = list(updates)
        random.Random(trial).shuffle(shuffled)
        state = aggregate(base, shuffled, outer, momentum)
        data = state.to_bytes()
        assert hashlib.sha256(data).hexdigest() == expected["sha256"]
        assert len(data) == expected["bytes"]
    for name, t in expected["weights"].items():
        assert torch.equal(state.weights[name], _tensor(t))
    if expected["momentum"] is None:
        assert state.momentum is None
    else:
        assert state.momentum is not None
        for name, t in expected["momentum"].items():
            assert torch.equal(state.momentum[name], _tensor(t))


def _f32(x: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vectors_agree_with_a_pure_python_reference(case: dict[str, Any]) -> None:
    """Python floats are IEEE fp64 with correctly rounded + - * /; struct rounds to fp32 to nearest-even."""
    updates = sorted(_updates(case), key=lambda u: bytes.fromhex(str(u.address)[2:]))
    total = float(sum(u.work_units for u in updates))
    lr, mu = case["outer"]["lr"], case["outer"]["momentum"]
    for name, t in case["base"].items():
        flat_updates = [u.delta[name].reshape(-1).tolist() for u in updates]
        prior = case["momentum"][name]["values"] if case["momentum"] else [0.0] * len(t["values"])
        for i, b in enumerate(t["values"]):
            acc = 0.0
            for u, values in zip(updates, flat_updates, strict=True):
                acc = acc + float(u.work_units) * values[i]
            avg = acc / total
            if mu > 0:
                m_new = mu * prior[i] + avg
                step = avg + mu * m_new
                assert _f32(m_new) == case["expected"]["momentum"][name]["values"][i]
            else:
                step = avg
            assert _f32(b - lr * step) == case["expected"]["weights"][name]["values"][i]


def test_plain_averaging_is_the_work_weighted_mean() -> None:
    base = {"w": torch.tensor([1.0, 2.0, 3.0])}
    ups = [
        TrainerUpdate("0x" + "02" * 20, 1, {"w": torch.tensor([0.5, 0.0, -1.0])}),
        TrainerUpdate("0x" + "01" * 20, 3, {"w": torch.tensor([0.1, 0.2, 1.0])}),
    ]
    state = aggregate(base, ups)
    expected = base["w"] - (
        0.5 * torch.tensor([0.5, 0.0, -1.0]) / 2 + 1.5 * torch.tensor([0.1, 0.2, 1.0]) / 2
    )
    torch.testing.assert_close(state.weights["w"], expected)
    assert state.momentum is None
    weights, momentum = load_global_checkpoint(state.to_bytes())
    assert torch.equal(weights["w"], state.weights["w"])
    assert momentum is None


def test_aggregation_refuses_bad_inputs() -> None:
    base = {"w": torch.zeros(2)}
    good = TrainerUpdate("0x" + "01" * 20, 1, {"w": torch.zeros(2)})
    for bad in (
        [],
        [good, good],
        [TrainerUpdate("0x" + "01" * 20, 0, {"w": torch.zeros(2)})],
        [TrainerUpdate("0x" + "01" * 20, True, {"w": torch.zeros(2)})],
        [TrainerUpdate("0x" + "01" * 20, 1, {"v": torch.zeros(2)})],
        [TrainerUpdate("0x" + "01" * 20, 1, {"w": torch.zeros(3)})],
        [TrainerUpdate("0x" + "01" * 20, 1, {"w": torch.tensor([float("nan"), 0.0])})],
        [TrainerUpdate("0x" + "01" * 20, 1, {"w": torch.zeros(2, dtype=torch.float64)})],
        [TrainerUpdate("not-an-address", 1, {"w": torch.zeros(2)})],
    ):
        with pytest.raises(ConfigError):
            aggregate(base, bad)


@pytest.mark.parametrize("granularity", ["row", "tensor"])
def test_int8_error_is_at_most_half_a_step(granularity: str) -> None:
    gen = torch.Generator().manual_seed(0)
    delta = {
        "m": torch.randn(16, 33, generator=gen) * torch.logspace(-6, 0, 16)[:, None],
        "v": torch.randn(7, generator=gen) * 1e-3,
        "s": torch.tensor(-2.5e-4),
        "z": torch.zeros(3, 2),
    }
    qs, scales = compress_int8(delta, granularity)
    back = decompress_int8(qs, scales)
    for name, t in delta.items():
        rows = t.reshape(t.shape[0], -1) if granularity == "row" and t.dim() >= 2 else t.reshape(1, -1)
        scale = scales[name]
        assert scale.shape == (rows.shape[0],)
        assert torch.equal(scale, rows.abs().amax(dim=1) / 127)
        err = (back[name] - t).abs().reshape(rows.shape)
        assert bool((err <= scale[:, None] * 0.5 * (1 + 1e-6)).all())
        assert int(qs[name].abs().max()) <= 127
    assert torch.equal(back["z"], delta["z"])
    # per-row scales are never worse than one scale per tensor
    if granularity == "row":
        _, coarse = compress_int8(delta, "tensor")
        assert bool((scales["m"] <= coarse["m"]).all())


def test_update_encodings_round_trip_and_validate() -> None:
    delta = {"a": torch.randn(64, 3), "b": torch.randn(5)}
    raw = encode_update(delta, Compression())
    back = decode_update(raw, {"a": torch.Size([64, 3]), "b": torch.Size([5])})
    assert all(torch.equal(back[k], delta[k]) for k in delta)
    small = encode_update(delta, Compression(kind="int8"))
    assert len(small) < len(raw)
    decoded = decode_update(small)
    assert all((decoded[k] - delta[k]).abs().max() < delta[k].abs().max() / 127 for k in delta)
    with pytest.raises(CheckpointError, match="shape"):
        decode_update(raw, {"a": torch.Size([3, 64]), "b": torch.Size([5])})
    with pytest.raises(CheckpointError, match="names"):
        decode_update(raw, {"a": torch.Size([64, 3])})
    with pytest.raises(CheckpointError):
        decode_update(canonical_bytes({"delta/a": torch.tensor([float("inf")])}))
    with pytest.raises(CheckpointError):
        decode_update(canonical_bytes({"delta/a": torch.zeros(2), "other": torch.zeros(1)}))
    with pytest.raises(CheckpointError):
        decode_update(canonical_bytes({"q/a": torch.zeros(4, 3, dtype=torch.int8), "scale/a": torch.ones(3)}))
    with pytest.raises(CheckpointError):
        decode_update(canonical_bytes({"q/a": torch.zeros(2, dtype=torch.int8), "scale/a": -torch.ones(1)}))


def test_pseudo_gradient_and_global_checkpoint() -> None:
    base = {"w": torch.tensor([1.0, 2.0]), "b": torch.tensor([0.5])}
    final = {"w": torch.tensor([0.75, 2.5]), "b": torch.tensor([0.5])}
    delta = pseudo_gradient(base, final)
    assert delta["w"].tolist() == [0.25, -0.5]
    assert delta["b"].tolist() == [0.0]
    with pytest.raises(ConfigError):
        pseudo_gradient(base, {"w": final["w"]})
    data = global_checkpoint_bytes(base, {"w": torch.zeros(2), "b": torch.ones(1)})
    weights, momentum = load_global_checkpoint(data)
    assert momentum is not None
    assert torch.equal(weights["w"], base["w"])
    assert torch.equal(momentum["b"], torch.ones(1))
    assert set(load_tensors(data)) == {"model/w", "model/b", "outer_momentum/w", "outer_momentum/b"}
    with pytest.raises(CheckpointError):
        load_global_checkpoint(canonical_bytes({"model/w": torch.zeros(1), "junk": torch.zeros(1)}))
