"""Hostile values never stop the verification pipeline (`protocol.verification`), in process over a real tiny
policy: a forger that trains honestly, then publishes NaN, ±inf, subnormals, 1e38, values past the tensor
rules' bound, wrong dtypes, wrong shapes, missing or extra tensors or truncated bytes in any tensor of any
state it must reveal or of its update, or hostile values in any field of its manifest or bundle, with
consistent commitments, gets a verdict (never an exception): REJECT with a reason, the non-finite and
absurd values reported as such. Missing data is "unavailable", wrong data a REJECT. The aggregate of the
accepted updates leaves out an update that breaks the rules and never changes the model into one that
breaks them."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pytest
import torch
from eth_account import Account
from forge import Forged, Honest, MemoryStore, Tensors, publish, train, weights_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.artifacts import ArtifactUnavailableError, artifact_ref, fetch_verified
from protocol.contracts import Verdict
from protocol.verification import Checked, TaskContext, aggregate_accepted, verify
from protocol.wire import (
    EnvSpec,
    RolloutBundle,
    SizeLimits,
    TaskSpec,
    UpdateManifest,
    picked_steps,
    required_states,
    sampled_rollouts,
)
from trainer.checkpoint import MAX_ABS, canonical_bytes, load_tensors
from trainer.config import GrpoConfig, InnerConfig, ModelConfig, OuterConfig
from trainer.diloco import (
    TrainerUpdate,
    aggregate,
    decode_update,
    encode_update,
    global_checkpoint_bytes,
    load_global_checkpoint,
    pseudo_gradient,
)
from trainer.model import build_model
from trainer.verify import VerifyThresholds

# lr 1e-3 (an update that is never zero in two steps) is above what the quality gate's default limit is
# calibrated for (trainer.config.QUALITY_MAX_LR), so the spec loosens the gate, as such a task must.
GATE_LOOSENED = VerifyThresholds(max_quality_drop=5.0)

SEED = hashlib.sha256(b"the round's seed").digest()
SUBNORMAL = 1e-40
VALUES = {"nan": math.nan, "+inf": math.inf, "-inf": -math.inf, "1e38": 1e38, "-1e38": -1e38,
          "past the bound": 2 * MAX_ABS, "subnormal": SUBNORMAL}  # fmt: skip
DTYPES = [torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.int64, torch.uint8, torch.bool]
FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@dataclass(repr=False)
class World:
    task: TaskContext
    base: bytes
    base_weights: Tensors
    honest: Honest
    account: Any
    required: list[int]

    def __repr__(self) -> str:
        return "World(a tiny task, one honest forger)"

    def forge(self, **edits: Any) -> Forged:
        return publish(self.task, self.base, self.honest, self.account, **edits)

    def check(self, forged: Forged) -> Checked:
        fetch = partial(fetch_verified, MemoryStore(forged.artifacts))
        digest = hashlib.sha256(self.base).digest()
        return verify(fetch, self.task, forged.sub, SEED, digest, self.base_weights)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the checks run (tests/network/conftest.py): re-execution is exact then
    torch.manual_seed(0)
    spec_env = EnvSpec(name="reverse", params={"min_len": 1, "max_len": 1, "letters": "ab"})
    model_cfg = ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64,
                            max_position_embeddings=16)  # fmt: skip
    inner = InnerConfig(steps=2, rollout_every=1, num_prompts=2, group_size=4, max_new_tokens=1,
                        grpo=GrpoConfig(lr=1e-3))  # fmt: skip
    from trainer.envs import get_env
    from trainer.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(get_env(spec_env.name, spec_env.params).alphabet)
    base = global_checkpoint_bytes(
        {k: v.detach() for k, v in build_model(model_cfg, tokenizer).state_dict().items()}
    )
    n = len(base)
    spec = TaskSpec(
        env=spec_env, model=model_cfg, inner=inner, outer=OuterConfig(), verify=GATE_LOOSENED,
        initial_checkpoint=artifact_ref(base), sample_rollouts=2, sample_steps=1, heldout_size=8,
        limits=SizeLimits(checkpoint=2 * n, state=4 * n, update=2 * n, bundle=1 << 20),
    )  # fmt: skip
    account = Account.from_key(hashlib.sha256(b"forger").digest())
    task = TaskContext(31337, "0x" + "11" * 20, 7, spec)
    honest = train(task, base, account.address)
    n = len(honest.records)
    sampled = sampled_rollouts(SEED, account.address, spec.sample_rollouts, n)
    steps = picked_steps(SEED, account.address, spec.sample_steps, inner.steps)
    required = required_states(inner, [honest.records[i].step for i in sampled], steps)
    yield World(task, base, load_global_checkpoint(base)[0], honest, account, required)
    torch.set_num_threads(threads)


def test_the_honest_submission_is_accepted(world: World) -> None:
    checked = world.check(world.forge())
    assert checked.verdict == Verdict.ACCEPT, checked.reasons
    assert checked.hostile == []
    assert world.required == [0, 1, 2]  # every state is read, so every state is fuzzed below


# --- tensors of the states and of the update ----------------------------------------------------------


def _set(t: torch.Tensor, index: int, value: float) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[index % t.numel()] = value
    return t


def _reshape(t: torch.Tensor, how: str) -> torch.Tensor:
    if how == "flatten":
        return t.reshape(-1) if t.dim() != 1 else t.reshape(1, -1)
    if how == "one more":
        return torch.cat([t.reshape(-1), t.reshape(-1)[:1]])
    return t.reshape(-1)[:-1] if t.numel() > 1 else t.reshape(1, 1)


@st.composite
def tensor_edits(draw: st.DrawFn, names: list[str]) -> tuple[str, Callable[[Tensors], Tensors | bytes]]:
    """(what, an edit of a tensor map) over every name: a hostile value, a dtype, a shape, a missing or
    extra tensor, truncated or trailing bytes."""
    name = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["value", "dtype", "shape", "drop", "extra", "truncate", "trailing"]))
    if kind == "value":
        label = draw(st.sampled_from(sorted(VALUES)))
        index = draw(st.integers(0, 1 << 20))
        return label, lambda ts: {**ts, name: _set(ts[name], index, VALUES[label])}
    if kind == "dtype":
        dtype = draw(st.sampled_from(DTYPES))
        return "dtype", lambda ts: {**ts, name: ts[name].to(dtype)}
    if kind == "shape":
        how = draw(st.sampled_from(["flatten", "one more", "one less"]))
        return "shape", lambda ts: {**ts, name: _reshape(ts[name], how)}
    if kind == "drop":
        return "drop", lambda ts: {k: v for k, v in ts.items() if k != name}
    if kind == "extra":
        return "extra", lambda ts: {**ts, name + ".extra": torch.zeros(2)}
    cut = draw(st.integers(1, 4096))
    if kind == "truncate":
        return "bytes", lambda ts: canonical_bytes(ts)[:-cut]
    return "bytes", lambda ts: canonical_bytes(ts) + b"\0" * cut


def _assert_rejected_for(checked: Checked, label: str, where: str) -> None:
    assert checked.verdict == Verdict.REJECT, (label, where)
    assert any(where in r for r in checked.reasons), (label, where, checked.reasons)
    if label in ("nan", "+inf", "-inf", "1e38", "-1e38", "past the bound"):
        assert any(where in h for h in checked.hostile), (label, checked.hostile)


@FUZZ
@given(data=st.data())
def test_any_edit_of_any_state_tensor_is_a_verdict(world: World, data: st.DataObject) -> None:
    j = data.draw(st.sampled_from(world.required), label="state")
    label, edit = data.draw(tensor_edits(sorted(world.honest.states[j])), label="edit")
    checked = world.check(world.forge(states=lambda i, ts: edit(ts) if i == j else ts))
    if label == "subnormal":  # honest AdamW moments decay into subnormals: not a rule breach
        assert checked.hostile == []
        if j == 0:
            assert checked.verdict == Verdict.REJECT  # theta_0 must be the base, byte for byte
        return
    _assert_rejected_for(checked, label, f"theta_{j}")


@FUZZ
@given(data=st.data())
def test_any_edit_of_any_update_tensor_is_a_verdict(world: World, data: st.DataObject) -> None:
    final = world.honest.states[world.task.spec.inner.steps]
    delta = pseudo_gradient(
        world.base_weights, {k[6:]: v for k, v in final.items() if k.startswith("model/")}
    )
    honest = load_tensors(encode_update(delta, world.task.spec.inner.compression))
    label, edit = data.draw(tensor_edits(sorted(honest)), label="edit")
    out = edit(honest)
    checked = world.check(world.forge(update=out if isinstance(out, bytes) else canonical_bytes(out)))
    _assert_rejected_for(checked, label, "update")  # a subnormal too: it is not base - theta_H


# --- every field of the manifest and the bundle -------------------------------------------------------


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for k in sorted(value) for p in _leaves(value[k], (*path, k))] + ([path] if path else [])
    if isinstance(value, list):
        return [p for i in range(min(len(value), 2)) for p in _leaves(value[i], (*path, i))] + [path]
    return [path]


def _put(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _put(value[head], rest, new)}
    return [*value[:head], _put(value[head], rest, new), *value[head + 1 :]]


HOSTILE_JSON = st.sampled_from(
    [None, math.nan, math.inf, -math.inf, -1, 2**64, 1e308, -1e-320, 0.5, True, "", "0x", "0x" + "zz" * 32,
     "not a cid", "x" * 5000, [], {}, [None], {"": None}]
)  # fmt: skip


@FUZZ
@given(data=st.data())
def test_any_hostile_field_of_the_manifest_or_bundle_is_a_verdict(world: World, data: st.DataObject) -> None:
    import json

    which = data.draw(st.sampled_from([UpdateManifest, RolloutBundle]), label="artifact")
    honest = world.forge()
    original = json.loads(
        honest.artifacts[honest.sub.update_cid if which is UpdateManifest else honest.sub.bundle_cid]
    )
    path = data.draw(st.sampled_from(_leaves(original)), label="field")
    edited = _put(original, path, data.draw(HOSTILE_JSON, label="value"))
    try:
        well_typed = which.model_validate_json(json.dumps(edited, allow_nan=True))
    except ValueError:
        well_typed = None
    if well_typed == which.model_validate(original):
        return  # the same document (a value the wire model reads as the original one)
    checked = world.check(
        world.forge(**{"manifest" if which is UpdateManifest else "bundle": lambda _: edited})
    )
    if well_typed is None:
        assert checked.verdict == Verdict.REJECT, (path, checked.reasons)
        assert any(f"not a valid {which.__name__}" in r for r in checked.reasons), checked.reasons
    elif which is UpdateManifest:  # every field of a manifest is checked against the chain or fetched
        assert checked.verdict == Verdict.REJECT, (path, checked.reasons)
    # A well-typed edit of a rollout the seed did not sample may pass (catching it is the rollout checks'
    # coverage, not the tensor rules'): then the verdict, not an exception, is what is asserted.


# --- missing and wrong artifacts ----------------------------------------------------------------------


def test_a_missing_artifact_is_unavailable_and_names_its_cid(world: World) -> None:
    honest = world.forge()
    for cid in honest.artifacts:
        gone = replace(honest, artifacts={k: v for k, v in honest.artifacts.items() if k != cid})
        with pytest.raises(ArtifactUnavailableError) as err:
            world.check(gone)
        assert err.value.cid == cid


def test_other_bytes_or_too_many_bytes_under_a_committed_cid_are_rejected(world: World) -> None:
    honest = world.forge()
    for cid, data in honest.artifacts.items():
        for wrong in (data[:-1] + bytes([data[-1] ^ 1]), data + b" " * (4 << 20)):
            checked = world.check(replace(honest, artifacts={**honest.artifacts, cid: wrong}))
            assert checked.verdict == Verdict.REJECT
            assert any(("sha256" in r or "limit" in r) and cid in r for r in checked.reasons), checked.reasons


def test_a_reference_that_states_another_size_is_rejected(world: World) -> None:
    def lie(manifest: Any) -> Any:
        return {**manifest, "update": {**manifest["update"], "size": manifest["update"]["size"] - 1}}

    checked = world.check(world.forge(manifest=lie))
    assert checked.verdict == Verdict.REJECT
    assert any("the manifest says" in r for r in checked.reasons), checked.reasons


# --- the aggregate ------------------------------------------------------------------------------------


def _accepted(world: World, *edits: dict[str, Any]) -> tuple[list[Any], dict[str, bytes], list[Any]]:
    """Submissions of distinct forgers (each trained for itself), edited as `edits` say, all accepted."""
    subs, artifacts, deltas = [], {}, []
    for i, edit in enumerate(edits):
        account = Account.from_key(hashlib.sha256(f"trainer {i}".encode()).digest())
        honest = train(world.task, world.base, account.address)
        forged = publish(world.task, world.base, honest, account, index=i, **edit)
        subs.append(forged.sub)
        artifacts.update(forged.artifacts)
        final = weights_of(honest.states[world.task.spec.inner.steps])
        delta = pseudo_gradient(world.base_weights, final)
        deltas.append(TrainerUpdate(account.address, forged.sub.work_units, delta))
    return subs, artifacts, deltas


def test_the_aggregate_leaves_out_an_accepted_update_that_breaks_the_rules(world: World) -> None:
    def nan_state(j: int, ts: Tensors) -> Tensors:
        return {k: _set(v, 0, math.nan) for k, v in ts.items()} if j == world.task.spec.inner.steps else ts

    subs, artifacts, deltas = _accepted(world, {}, {"states": nan_state}, {})
    fetch = partial(fetch_verified, MemoryStore(artifacts))
    result = aggregate_accepted(fetch, world.task.spec, world.base, subs)
    assert [s.index for s, _ in result.used] == [0, 2]
    (why,) = result.left_out
    assert "submission 1" in why
    assert "NaN" in why
    expected = aggregate(world.base_weights, [deltas[0], deltas[2]], world.task.spec.outer).to_bytes()
    assert result.checkpoint == expected
    # Only hostile updates: the model does not change.
    alone = aggregate_accepted(fetch, world.task.spec, world.base, [subs[1]])
    assert alone.checkpoint == world.base
    assert alone.used == []


def test_an_aggregate_that_would_break_the_rules_keeps_the_base(world: World) -> None:
    def far(j: int, ts: Tensors) -> Tensors:  # every weight of theta_H near the bound: a legal update...
        if j != world.task.spec.inner.steps:
            return ts
        return {k: torch.full_like(v, -0.9 * MAX_ABS) if k.startswith("model/") else v for k, v in ts.items()}

    subs, artifacts, _ = _accepted(world, {"states": far})
    spec = world.task.spec.model_copy(
        update={"outer": OuterConfig(lr=3.0)}
    )  # ... that an outer lr of 3 overshoots
    result = aggregate_accepted(partial(fetch_verified, MemoryStore(artifacts)), spec, world.base, subs)
    assert result.checkpoint == world.base
    assert result.used == []
    assert "breaks the tensor rules" in result.left_out[-1]
    manifest = UpdateManifest.model_validate_json(artifacts[subs[0].update_cid])
    assert decode_update(artifacts[manifest.update.cid])  # the update itself obeys the rules
