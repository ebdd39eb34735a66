"""Smoke test of the learning demonstration: the mechanics, with a budget of seconds.

The full run (3 trainers, 8 rounds, +25 points or more) is `scripts/learning_curve.py`; see docs/trainer.md.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from core_helpers import one_thread

from trainer import diloco
from trainer.config import GrpoConfig, InnerConfig, ModelConfig
from trainer.derive import address_bytes
from trainer.simulate import SimulationConfig, run_simulation, trainer_addresses
from trainer.warmstart import WarmStartConfig

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

# reversing one or two letters: a few warm-start steps give rewards, so the updates are not zero
TINY = SimulationConfig(
    env="reverse",
    env_params={"letters": "ab", "min_len": 1, "max_len": 2},
    model=ModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2, intermediate_size=64),
    warmstart=WarmStartConfig(
        lr=1e-2, max_steps=20, eval_every=5, eval_size=8, batch_size=16, target_accuracy=0.5
    ),
    inner=InnerConfig(
        steps=3, rollout_every=2, num_prompts=2, group_size=4, max_new_tokens=3, grpo=GrpoConfig(lr=1e-3)
    ),
    trainers=3,
    rounds=2,
    heldout_size=10,
)


def test_simulation_mechanics(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    real = diloco.aggregate

    def spy(base: Any, updates: Any, *args: Any, **kwargs: Any) -> diloco.GlobalState:
        calls.append([str(u.address) for u in updates])
        return real(base, updates, *args, **kwargs)

    monkeypatch.setattr(diloco, "aggregate", spy)
    result = run_simulation(TINY)
    addresses = trainer_addresses(3)
    assert addresses != sorted(addresses, key=address_bytes)  # the simulation really has to sort
    expected_order = sorted(addresses, key=address_bytes)
    assert calls == [expected_order, expected_order]
    assert len(result.accuracy) == 3
    assert all(0.0 <= a <= 1.0 for a in result.accuracy)
    assert [r.round for r in result.rounds] == [1, 2]
    for rec in result.rounds:
        assert rec.state_hash_counts == {a: 4 for a in addresses}  # theta_0 .. theta_H
        assert set(rec.work_units) == set(addresses)
        assert all(w >= 2 * 2 * 4 for w in rec.work_units.values())  # 2 rollout steps x P x G
        assert len(rec.checkpoint_hash) == 64
        assert 0.0 < rec.mean_reward < 1.0  # groups with signal: the updates are not zero
    assert result.rounds[0].checkpoint_hash != result.rounds[1].checkpoint_hash
    # rollout_every = 2: step 1 trains on theta_0's rollouts, so its ratio is pi_1 / pi_0, not 1
    assert any(rec.ratio_max > 1.0 for rec in result.rounds)
    assert all(0.0 <= rec.clip_frac <= 1.0 for rec in result.rounds)
    summary = result.to_json()
    assert summary["rounds"] == 2
    assert summary["accuracy"] == result.accuracy
    assert summary["config"]["trainers"] == 3
    json.dumps(summary)


def test_learning_curve_script_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).parents[2] / "scripts" / "learning_curve.py"
    spec = importlib.util.spec_from_file_location("learning_curve", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "curve.json"
    argv = [
        "--json",
        str(out),
        "--rounds",
        "1",
        "--trainers",
        "2",
        "--steps",
        "1",
        "--prompts",
        "2",
        "--group",
        "2",
        "--layers",
        "1",
        "--hidden",
        "32",
        "--heldout",
        "5",
        "--warmstart-steps",
        "2",
        "--threads",
        "1",
        "--no-proofs",
    ]
    assert module.main(argv) == 0
    data = json.loads(out.read_text())
    assert data["rounds"] == 1
    assert len(data["accuracy"]) == 2
    assert data["config"]["inner"]["steps"] == 1
    assert data["config"]["build_proofs"] is False
    assert "round" in capsys.readouterr().out
