"""A validator on another CPU accepts honest work and still rejects a forged step, with the whole model
training and with LoRA adapters alone.

The trainer's process runs PyTorch's best CPU kernels; the validator's runs another kernel level
(`ATEN_CPU_CAPABILITY=default`: no vectorisation, with MKL's matching code path), so that matrix
products, reductions and elementwise kernels all round differently. Both are real processes running
`scripts/calibrate.py worker` (the calibration's own worker, at a tiny size): the trainer makes honest
submissions at lr 1e-5 and 1e-3, with rollouts every step and every second step; the validator runs
`verify_submission` (every rollout replayed, every step re-executed) and `decide` with the default
thresholds. The full calibration over every pairing is `scripts/calibrate.py` (docs/toploc.md).

The `lora` case gives the spec rank-4 adapters on q/v/up, their B moved off zero as after some rounds: the
states are adapter-only. It is the check behind docs/models.md's statement that LoRA stays inside the
calibrated step thresholds; the measured maxima are printed by the test (`-s`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from trainer.checkpoint import canonical_bytes, load_tensors, model_weights
from trainer.config import LoraConfig, ModelConfig, VerifyThresholds
from trainer.envs import get_env
from trainer.lora import adapt
from trainer.warmstart import WarmStartConfig, warm_start

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "calibrate.py"
ENV = {"name": "reverse", "params": {"letters": "ab", "min_len": 1, "max_len": 2}}
MODEL = ModelConfig(
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    num_kv_heads=2,
    intermediate_size=64,
    max_position_embeddings=48,
)
LORA = LoraConfig(rank=4, alpha=8, targets=("q_proj", "v_proj", "up_proj"))
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def _worker(action: str, work: Path, extra_env: dict[str, str], *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    env.update(extra_env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable,
        str(SCRIPT),
        "worker",
        action,
        "--dir",
        str(work),
        "--spec",
        str(work / "spec.json"),
    ]
    done = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


def _verify(work: Path) -> dict[str, Any]:
    out = work / "verified.json"
    _worker("verify", work, OTHER_KERNELS, "--out", str(out))
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.fixture(scope="module", params=[None, LORA], ids=["full", "lora"])
def honest_work(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if torch.backends.cpu.get_cpu_capability() == "DEFAULT":
        pytest.skip("this CPU has no vectorised kernels: there is no other kernel level to compare with")
    lora: LoraConfig | None = request.param
    work = tmp_path_factory.mktemp("honest")
    env = get_env(ENV["name"], ENV["params"])
    warm = warm_start(
        env,
        MODEL,
        WarmStartConfig(lr=1e-2, max_steps=20, eval_every=5, eval_size=8, batch_size=16, target_accuracy=0.5),
    )
    if lora is not None:
        adapt(warm.model, lora)
        gen = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for name, p in warm.model.named_parameters():
                if ".lora_B." in name:
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    (work / "base.safetensors").write_bytes(canonical_bytes(model_weights(warm.model)))
    spec = {
        "env": ENV["name"],
        "env_params": ENV["params"],
        "model": MODEL.model_dump_json(),
        **({"lora": lora.model_dump(mode="json")} if lora is not None else {}),
        "thresholds": VerifyThresholds().model_dump(mode="json"),
        "task_id": 3,
        "lrs": [1e-5, 1e-3],
        "rollout_every": [1, 2],
        "submissions": 1,
        "steps": 3,
        "prompts": 4,
        "group": 4,
        "max_new_tokens": 3,
        "long_prompts": 1,
        "long_tokens": 40,
    }
    (work / "spec.json").write_text(json.dumps(spec))
    _worker("make", work, {})  # the trainer: this CPU's best kernels
    return work


def test_honest_steps_made_with_other_kernels_are_accepted(honest_work: Path) -> None:
    state = load_tensors((honest_work / "sub-0000" / "state-1").read_bytes())
    spec = json.loads((honest_work / "spec.json").read_text())
    assert all(".lora_" in k for k in state) == ("lora" in spec)  # adapter-only states with LoRA
    result = _verify(honest_work)
    subs = result["submissions"]
    assert len(subs) == 4
    assert [s["decision"] for s in subs] == ["ACCEPT"] * 4, [s["reasons"] for s in subs]
    steps = [st for s in subs for st in s["steps"]]
    assert len(steps) == 12
    # the other kernels really computed other numbers: the tolerance, not byte equality, accepted them
    inexact = [st for st in steps if not st["exact"]]
    print(
        f"other-kernel steps ({'lora' if 'lora' in spec else 'full'}):",
        len(inexact),
        "inexact of",
        len(steps),
    )
    for key in ("rel_l2", "max_abs_lr", "moment_rel", "adam_ulps"):
        print(f"  max {key}: {max(st[key] for st in steps):.3g}")
    assert len(inexact) >= 4
    assert {s["lr"] for s in subs} == {1e-5, 1e-3}
    assert result["long"]["replays"] == 3 * 4
    assert result["long"]["flagged"] == 0


def test_a_step_one_percent_longer_is_rejected_on_other_kernels(honest_work: Path, tmp_path: Path) -> None:
    work = tmp_path / "forged"
    shutil.copytree(honest_work, work)
    for sub in sorted(work.glob("sub-*")):
        before, after = (load_tensors((sub / f"state-{j}").read_bytes()) for j in (1, 2))
        forged = {
            k: after[k] if k.endswith("/step") else before[k] + 1.01 * (after[k] - before[k]) for k in after
        }  # theta_1 + 1.01 (theta_2 - theta_1): weights and moments, the step counts kept
        (sub / "state-2").write_bytes(canonical_bytes(forged))
    subs = _verify(work)["submissions"]
    assert [s["decision"] for s in subs] == ["REJECT"] * 4
    for s in subs:
        assert any(r.startswith("step 1: re-execution") for r in s["reasons"]), s["reasons"]
