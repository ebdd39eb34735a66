"""Write tests/vectors/aggregation.json: inputs of the deterministic DiLoCo aggregation, inlined, with
the expected output values and the sha256 of the output checkpoint's canonical bytes (docs/trainer.md).

The file is checked in; tests/trainer/test_diloco.py recomputes every case with `trainer.diloco` and
with an independent pure-Python reference. Regenerate only when the formula changes on purpose:

    .venv/bin/python tests/vectors/aggregation_make.py

Tensors are {"shape": [...], "values": [...]} with fp32 values written as the shortest decimal that
reads back to the same fp64 (hence the same fp32): exact.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from trainer.checkpoint import load_tensors
from trainer.config import Compression, OuterConfig
from trainer.diloco import TrainerUpdate, aggregate, decode_update, encode_update

OUT = Path(__file__).with_name("aggregation.json")
ADDRESSES = ["0x" + "c3" * 20, "0x" + "0a" * 20, "0x" + "7f" * 19 + "01", "0x" + "01" * 20]  # unsorted


def _t(t: torch.Tensor) -> dict[str, Any]:
    return {"shape": list(t.shape), "values": [float(v) for v in t.reshape(-1).tolist()]}


def _tensors(gen: torch.Generator, scale: float) -> dict[str, torch.Tensor]:
    # awkward magnitudes: tiny and large entries in the same tensor stress the rounding
    w = torch.randn(3, 4, generator=gen) * scale
    w[0, 0] = 1e-7
    w[1, 1] = 3.0e4
    return {
        "layer.weight": w,
        "norm.weight": torch.randn(5, generator=gen) * scale,
        "scalar": torch.randn((), generator=gen),
    }


def _case(
    name: str,
    outer: OuterConfig,
    work: list[int],
    momentum: bool,
    int8: str | None,
    sizes: list[float] | None = None,
) -> dict[str, Any]:
    """`sizes` multiplies each update (a large one is clipped when `outer.clip` is set)."""
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    base = _tensors(gen, 1.0)
    prior = _tensors(gen, 0.01) if momentum else None
    updates: list[dict[str, Any]] = []
    decoded: list[TrainerUpdate] = []
    for i, (address, units) in enumerate(zip(ADDRESSES[: len(work)], work, strict=True)):
        delta = _tensors(gen, 0.001 * (1 + len(updates)))
        if sizes:
            delta = {k: v * sizes[i] for k, v in delta.items()}
        entry: dict[str, Any] = {"address": address, "work_units": units}
        if int8 is not None and len(updates) == 0:
            blob = encode_update(delta, Compression(kind="int8", granularity=int8))
            raw = load_tensors(blob)
            entry["int8"] = {
                "granularity": int8,
                "q": {k[2:]: _t(v) for k, v in raw.items() if k.startswith("q/")},
                "scale": {k[6:]: _t(v) for k, v in raw.items() if k.startswith("scale/")},
                "update_sha256": hashlib.sha256(blob).hexdigest(),
            }
            delta = decode_update(blob)
        else:
            entry["delta"] = {k: _t(v) for k, v in delta.items()}
        updates.append(entry)
        decoded.append(TrainerUpdate(address, units, delta))
    state = aggregate(base, decoded, outer, prior)
    data = state.to_bytes()
    return {
        "name": name,
        "outer": outer.model_dump(),
        "base": {k: _t(v) for k, v in base.items()},
        "momentum": {k: _t(v) for k, v in prior.items()} if prior is not None else None,
        "updates": updates,
        "expected": {
            "weights": {k: _t(v) for k, v in state.weights.items()},
            "momentum": {k: _t(v) for k, v in state.momentum.items()} if state.momentum is not None else None,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
        },
    }


def main() -> None:
    cases = [
        _case("plain_average", OuterConfig(), [37, 5, 1021], momentum=False, int8=None),
        _case("single_trainer", OuterConfig(), [9], momentum=False, int8=None),
        _case("nesterov_first_round", OuterConfig(lr=0.7, momentum=0.9), [3, 4], momentum=False, int8=None),
        _case(
            "nesterov_with_momentum",
            OuterConfig(lr=0.7, momentum=0.9),
            [100, 1, 50],
            momentum=True,
            int8=None,
        ),
        _case("int8_row_update", OuterConfig(), [12, 30, 7], momentum=False, int8="row"),
        _case("int8_tensor_update", OuterConfig(), [2, 2], momentum=False, int8="tensor"),
        _case(
            "clipped_to_median",
            OuterConfig(clip=1.5),
            [5, 5, 5],
            momentum=False,
            int8=None,
            sizes=[1.0, 30.0, 0.5],
        ),
        _case(
            "clipped_even_count",
            OuterConfig(clip=1.0),
            [3, 8, 3, 1],
            momentum=False,
            int8=None,
            sizes=[2.0, 1.0, 30.0, 0.25],
        ),
        _case(
            "clipped_with_momentum",
            OuterConfig(lr=0.7, momentum=0.9, clip=2.0),
            [1, 2, 3],
            momentum=True,
            int8="row",
            sizes=[25.0, 1.0, 1.0],
        ),
    ]
    doc = {
        "description": (
            "Deterministic DiLoCo aggregation (trainer.diloco.aggregate): with outer.clip = c, each update "
            "is scaled by s = c * median(norms) / norm when its norm exceeds c * median (norm = sqrt of the "
            "correctly rounded sum of the exact fp64 squares; the median of an even count is the mean of the "
            "two middle norms); per element, trainers sorted by "
            "address, acc += fp64(work) * (fp64(delta) * s) (separate multiplies and add; no multiply when "
            "s = 1), "
            "avg = acc / fp64(sum work), "
            "Nesterov m' = mu*m + avg, step = avg + mu*m' (step = avg when mu = 0), "
            "new = fp32(fp64(base) - lr*step); output = canonical bytes of model/* [+ outer_momentum/*]."
        ),
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
