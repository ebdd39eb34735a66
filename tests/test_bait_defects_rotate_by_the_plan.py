"""A bait's defect per honeypot (`protocol.baits.honeypot_defect`): a deterministic pseudo-random function
of the plan's key and (chain, escrow, task, round) under its own HMAC label ("defect"), so it is independent
of which rounds hold a honeypot and of their bait; every defect of the rotation (the expensive ones) is used
about equally; the trainer node's
`--cheat bait` takes it, and `--cheat bait` without a plan is refused with one line."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import Counter
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from typer.testing import CliRunner

from protocol.baits import (
    BAIT_DEFECTS,
    EXPENSIVE_DEFECTS,
    ROTATION,
    BaitPlan,
    RoundScope,
    honeypot_bait,
    honeypot_defect,
    honeypot_salt,
)
from protocol.cli import app
from protocol.errors import ConfigError
from protocol.roles.trainer import BAIT_CHEATS, CHEATS, bait_cheat_error

BAITS = tuple(to_checksum_address("0x" + f"{i:02x}" * 20) for i in (1, 2))
SCOPE = RoundScope(31337, "0x" + "ee" * 20, 7)
ROUNDS = 3000


def plan(key: bytes = b"k" * 32, rate: float = 0.5) -> BaitPlan:
    return BaitPlan(key, rate, BAITS)


def test_the_defect_is_deterministic_and_depends_on_key_and_scope() -> None:
    defects = [honeypot_defect(plan(), SCOPE, r) for r in range(64)]
    assert defects == [honeypot_defect(plan(), SCOPE, r) for r in range(64)]
    assert defects != [honeypot_defect(plan(b"x" * 32), SCOPE, r) for r in range(64)]
    assert defects != [honeypot_defect(plan(), RoundScope(31337, SCOPE.escrow, 8), r) for r in range(64)]
    assert set(defects) <= set(ROTATION)


def test_every_defect_is_used_about_equally() -> None:
    counts = Counter(honeypot_defect(plan(), SCOPE, r) for r in range(ROUNDS))
    share = ROUNDS / len(ROTATION)
    assert set(counts) == set(ROTATION)
    assert all(abs(n - share) < 5 * math.sqrt(share) for n in counts.values()), counts


def test_the_defect_has_its_own_label_independent_of_the_round_choice() -> None:
    p = plan(rate=0.5)
    joint = Counter(
        (honeypot_bait(p, SCOPE, r) is not None, honeypot_defect(p, SCOPE, r)) for r in range(ROUNDS)
    )
    assert len(joint) == 2 * len(ROTATION)  # every defect in honeypot rounds and in the others
    quarter = ROUNDS / (2 * len(ROTATION))
    assert all(abs(n - quarter) < 5 * math.sqrt(quarter) for n in joint.values()), joint
    # the label is "defect": neither the round's word nor its salt decides it
    for r in range(32):
        message = b"|".join(
            (
                b"trustrl honeypot",
                b"defect",
                SCOPE.chain_id.to_bytes(32, "big"),
                bytes.fromhex(to_checksum_address(SCOPE.escrow)[2:]),
                SCOPE.task_id.to_bytes(32, "big"),
                r.to_bytes(32, "big"),
            )
        )
        u = hmac.new(p.key, message, hashlib.sha256).digest()
        assert honeypot_defect(p, SCOPE, r) == ROTATION[int.from_bytes(u[:8], "big") % len(ROTATION)]
        assert u != honeypot_salt(p, SCOPE, r)


def test_the_rotation_is_the_expensive_defects_only() -> None:
    # poison (the cheap update equation) would spare the validator that runs the cheap checks alone on a
    # share of the honeypots, and catches nobody the expensive defects miss
    assert set(ROTATION) == set(EXPENSIVE_DEFECTS)
    assert "poison" in BAIT_DEFECTS
    assert "poison" not in ROTATION


def test_a_bait_may_rotate_or_fix_a_defect_and_nothing_else() -> None:
    assert set(BAIT_CHEATS) == {"bait", *BAIT_DEFECTS}
    assert set(BAIT_DEFECTS) <= set(CHEATS)  # each is a trainer node's --cheat too


def test_cheat_bait_without_a_plan_is_refused(tmp_path: Path) -> None:
    env = {"TRUSTRL_NETWORK": str(tmp_path / "none.json"), "TRUSTRL_KEYSTORE": str(tmp_path / "none.key")}
    result = CliRunner().invoke(app, ["train", "--task", "1", "--cheat", "bait"], env=env)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == bait_cheat_error("bait")
    assert "--bait-secret" in str(result.exception)


@pytest.mark.parametrize("cheat", ["bait", "every-step", "poison"])
def test_a_bait_with_a_defect_cheat_gets_past_the_cheat_rules(tmp_path: Path, cheat: str) -> None:
    from protocol.baits import create_plan

    bait = Account.create()
    create_plan(tmp_path / "plan.json", 0.5, [bait.address])
    args = ["train", "--task", "1", "--bait-secret", str(tmp_path / "plan.json"), "--cheat", cheat]
    env = {"TRUSTRL_NETWORK": str(tmp_path / "none.json"), "TRUSTRL_KEYSTORE": str(tmp_path / "none.key")}
    result = CliRunner().invoke(app, args, env=env)
    assert result.exception is not None
    assert "--network" in str(result.exception), str(result.exception)  # stopped later: no network file
