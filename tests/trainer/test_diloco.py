"""DiLoCo outer side: golden aggregation vectors, an independent reference, int8 error bound, encodings."""

from __future__ import annotations

import hashlib
import json
import math
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
    clip_scales,
    compress_int8,
    decode_update,
    decompress_int8,
    encode_update,
    global_checkpoint_bytes,
    load_global_checkpoint,
    pseudo_gradient,
    update_norm,
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


def _reference_scales(updates: list[TrainerUpdate], clip: float | None) -> list[float]:
    """Clipping to `clip` x the median norm, in plain Python: fp32 values squared exactly in fp64 (24-bit
    mantissas, 48-bit products), summed exactly by `math.fsum`, one square root."""
    norms = [
        math.sqrt(math.fsum(x * x for t in u.delta.values() for x in t.reshape(-1).tolist())) for u in updates
    ]
    if clip is None:
        return [1.0] * len(norms)
    ordered = sorted(norms)
    n = len(ordered)
    median = ordered[n // 2] if n % 2 else (ordered[n // 2 - 1] + ordered[n // 2]) / 2
    return [clip * median / x if x > clip * median else 1.0 for x in norms]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_vectors_agree_with_a_pure_python_reference(case: dict[str, Any]) -> None:
    """Python floats are IEEE fp64 with correctly rounded + - * /; struct rounds to fp32 to nearest-even."""
    updates = sorted(_updates(case), key=lambda u: bytes.fromhex(str(u.address)[2:]))
    total = float(sum(u.work_units for u in updates))
    lr, mu = case["outer"]["lr"], case["outer"]["momentum"]
    scales = _reference_scales(updates, case["outer"].get("clip"))
    for name, t in case["base"].items():
        flat_updates = [u.delta[name].reshape(-1).tolist() for u in updates]
        prior = case["momentum"][name]["values"] if case["momentum"] else [0.0] * len(t["values"])
        for i, b in enumerate(t["values"]):
            acc = 0.0
            for u, values, s in zip(updates, flat_updates, scales, strict=True):
                acc = acc + float(u.work_units) * (values[i] if s == 1.0 else values[i] * s)
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


def test_clipping_bounds_one_update_to_a_multiple_of_the_median_norm() -> None:
    """However large one update is, it moves the aggregate by at most clip x median / (number of trainers)
    more than an update of the median's norm; updates within the limit are averaged untouched."""
    gen = torch.Generator().manual_seed(3)
    base = {"w": torch.randn(50, 40, generator=gen), "b": torch.randn(40, generator=gen)}
    honest = [
        TrainerUpdate(
            f"0x{i:040x}", 7, {k: torch.randn(v.shape, generator=gen) * 1e-3 for k, v in base.items()}
        )
        for i in (1, 2, 3)
    ]
    norms = sorted(update_norm(u.delta) for u in honest)
    direction = {k: torch.randn(v.shape, generator=gen) for k, v in base.items()}
    outer = OuterConfig(clip=1.5)
    for size in (1e3, 1e5):
        attacker = TrainerUpdate(f"0x{9:040x}", 7, {k: v * size / 1e3 for k, v in direction.items()})
        with_it = aggregate(base, [*honest, attacker], outer).weights
        without = {k: base[k] - sum(u.delta[k] for u in honest) / 4 for k in base}
        moved = update_norm({k: (with_it[k].double() - without[k].double()).float() for k in base})
        median = (norms[1] + norms[2]) / 2  # of the four norms: two honest middle ones
        assert moved <= 1.5 * median / 4 * (1 + 1e-5)
    small = [*honest[:2], TrainerUpdate(f"0x{9:040x}", 7, {k: v * 1e-3 for k, v in direction.items()})]
    assert update_norm(small[2].delta) <= 1.5 * sorted(update_norm(u.delta) for u in small)[1]
    assert aggregate(base, small, outer).to_bytes() == aggregate(base, small, OuterConfig()).to_bytes()


def test_update_norm_is_the_exact_norm_in_any_order() -> None:
    gen = torch.Generator().manual_seed(4)
    delta = {
        "a": torch.randn(300, generator=gen) * torch.logspace(-20, 5, 300),
        "b": torch.randn(7, generator=gen),
    }
    reference = math.sqrt(math.fsum(x * x for t in delta.values() for x in t.tolist()))
    assert update_norm(delta) == reference
    assert update_norm({"b": delta["b"], "a": delta["a"].flip(0)}) == reference
    assert clip_scales([1.0, 2.0, 9.0], 2.0) == [1.0, 1.0, 4.0 / 9.0]
    assert clip_scales([1.0, 3.0, 5.0, 9.0], 1.0) == [1.0, 1.0, 4.0 / 5.0, 4.0 / 9.0]
    assert clip_scales([1.0, 100.0], None) == [1.0, 1.0]


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
