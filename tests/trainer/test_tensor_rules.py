"""The tensor rules (`trainer.checkpoint`): every floating-point element finite and |x| <= MAX_ABS, the layout
as expected. Whatever bytes a stranger sends, loading them raises `CheckpointError` or gives tensors that obey
the rules; decoded updates, global checkpoints and aggregates obey them too; statistics that NaN touches fail
every threshold."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from trainer.checkpoint import MAX_ABS, canonical_bytes, check_layout, check_values, load_tensors
from trainer.config import OuterConfig
from trainer.diloco import (
    TrainerUpdate,
    aggregate,
    decode_update,
    global_checkpoint_bytes,
    load_global_checkpoint,
)
from trainer.errors import AbsurdValueError, CheckpointError
from trainer.verify import _exceeds, _l2, _max_abs

TENSORS = {"a": torch.linspace(-1, 1, 12).reshape(3, 4), "b": torch.ones(5), "c": torch.tensor(2.0)}
DATA = canonical_bytes(TENSORS)


@pytest.mark.parametrize(
    ("value", "what"),
    [(math.nan, "1 NaN"), (math.inf, "1 infinite"), (-math.inf, "1 infinite"), (1e38, "1 (beyond|infinite)"),
     (2 * MAX_ABS, "1 (beyond|infinite)")],  # fp16 stores the last two as inf
)  # fmt: skip
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_a_non_finite_or_absurd_value_breaks_the_rules(value: float, what: str, dtype: torch.dtype) -> None:
    t = torch.zeros(4, dtype=dtype)
    t[2] = value
    with pytest.raises(AbsurdValueError, match=f"x holds {what}"):
        check_values({"x": t})
    with pytest.raises(AbsurdValueError):
        load_tensors(canonical_bytes({"x": t}))


def test_subnormals_the_bound_itself_and_integers_obey_the_rules() -> None:
    check_values({"s": torch.tensor([1e-40, -1e-45, MAX_ABS, -MAX_ABS]), "i": torch.tensor([2**40])})
    check_values({"b": torch.tensor([True]), "e": torch.empty(0)})


def test_the_layout_is_names_shapes_and_dtypes() -> None:
    check_layout(TENSORS, TENSORS)
    for other, match in [
        ({**TENSORS, "d": torch.zeros(1)}, "unexpected"),
        ({k: v for k, v in TENSORS.items() if k != "b"}, "missing"),
        ({**TENSORS, "a": TENSORS["a"].reshape(-1)}, "a: got"),
        ({**TENSORS, "a": TENSORS["a"].double()}, "a: got"),
    ]:
        with pytest.raises(CheckpointError, match=match):
            check_layout(other, TENSORS)
        with pytest.raises(CheckpointError, match=match):
            load_tensors(canonical_bytes(other), like=TENSORS)


@settings(max_examples=300, deadline=None)
@given(
    cuts=st.lists(st.tuples(st.integers(0, len(DATA) - 1), st.integers(0, 255)), max_size=4),
    keep=st.integers(0, len(DATA) + 8),
)
def test_any_bytes_load_as_rule_abiding_tensors_or_raise_checkpoint_error(
    cuts: list[tuple[int, int]], keep: int
) -> None:
    data = bytearray(DATA + b"\0" * 8)[:keep]
    for position, byte in cuts:
        if position < len(data):
            data[position] = byte
    try:
        tensors = load_tensors(bytes(data))
    except CheckpointError:
        return
    check_values(tensors)  # whatever loaded obeys the rules


def test_decoded_updates_global_checkpoints_and_aggregates_obey_the_rules() -> None:
    q = torch.full((2, 3), 127, dtype=torch.int8)
    with pytest.raises(AbsurdValueError):  # q * scale past the bound, though each stored value is legal
        decode_update(canonical_bytes({"q/w": q, "scale/w": torch.full((2,), MAX_ABS / 100)}))
    with pytest.raises(CheckpointError, match="fp32"):
        load_global_checkpoint(global_checkpoint_bytes({"w": torch.zeros(2, dtype=torch.float64)}))
    base = {"w": torch.zeros(3)}
    far = TrainerUpdate("0x" + "01" * 20, 1, {"w": torch.full((3,), -0.9 * MAX_ABS)})
    assert aggregate(base, [far]).weights["w"][0] == pytest.approx(0.9 * MAX_ABS)  # plain averaging: inside
    with pytest.raises(AbsurdValueError):  # an outer learning rate of 3 takes it past the bound
        aggregate(base, [far], OuterConfig(lr=3.0))


def test_statistics_that_nan_touches_fail_every_threshold() -> None:
    nan, zero = {"x": torch.tensor([math.nan, 0.0])}, {"x": torch.zeros(2)}
    assert _max_abs(nan, zero) == math.inf
    assert _l2(nan, zero) == math.inf
    assert _max_abs({"x": torch.tensor([math.inf])}, {"x": torch.tensor([math.inf])}) == math.inf
    assert _exceeds(math.nan, 1.0)
    assert _exceeds(math.inf, 1.0)
    assert not _exceeds(1.0, 1.0)
