"""A honeypot's bait (`trustrl train --bait-secret`): it must cheat with `poison`, the one cheat the exact
update check rejects every time (another is refused before anything is sent), whose fallback direction is
seeded per submission; and it consents to the reveal of each of its honeypots by a signature written beside
the plan file, which the initiator reads (`protocol.baits.write_consent` / `read_consent`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch
from eth_account import Account
from eth_account.messages import encode_defunct
from typer.testing import CliRunner

from protocol.baits import BaitPlan, RoundScope, create_plan, honeypot_salt, read_consent, write_consent
from protocol.cli import app
from protocol.contracts import honeypot_consent_digest
from protocol.errors import ConfigError
from protocol.roles.trainer import BAIT_CHEATS, CHEATS, bait_cheat_error
from trainer.cheats import poisoned_update

REGISTRY = "0x" + "12" * 20
SCOPE = RoundScope(31337, "0x" + "34" * 20, 7)


def test_the_bait_signs_a_consent_the_initiator_reads(tmp_path: Path) -> None:
    bait = Account.create()
    plan = create_plan(tmp_path / "plan.json", 0.5, [bait.address])
    signature = write_consent(plan, SCOPE, REGISTRY, 3, bait)
    assert read_consent(plan, SCOPE, 3) == signature
    salt = honeypot_salt(plan, SCOPE, 3)
    digest = honeypot_consent_digest(SCOPE.chain_id, REGISTRY, SCOPE.task_id, 3, salt)
    assert Account.recover_message(encode_defunct(primitive=digest), signature=signature) == bait.address
    (written,) = (tmp_path / "plan.json.consents").iterdir()
    assert stat.S_IMODE(os.stat(written).st_mode) == 0o600  # beside a secret: private too
    assert read_consent(plan, SCOPE, 4) is None  # not a honeypot it submitted (yet)
    written.write_text("not hex\n")
    assert read_consent(plan, SCOPE, 3) is None  # malformed: as if absent (the registry would refuse it)
    with pytest.raises(ConfigError, match="no file"):
        write_consent(BaitPlan(plan.key, plan.rate, plan.baits), SCOPE, REGISTRY, 3, bait)


@pytest.mark.parametrize("cheat", [None, *(c for c in CHEATS if c not in BAIT_CHEATS)])
def test_a_bait_must_cheat_with_poison(tmp_path: Path, cheat: str | None) -> None:
    bait = Account.create()
    create_plan(tmp_path / "plan.json", 0.5, [bait.address])
    args = ["train", "--task", "1", "--bait-secret", str(tmp_path / "plan.json")]
    env = {"TRUSTRL_NETWORK": str(tmp_path / "none.json"), "TRUSTRL_KEYSTORE": str(tmp_path / "none.key")}
    result = CliRunner().invoke(app, args + ([] if cheat is None else ["--cheat", cheat]), env=env)
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == bait_cheat_error(cheat)
    assert "--cheat poison" in str(result.exception)


def test_zero_updates_are_poisoned_in_a_direction_of_their_own() -> None:
    zero = {"w": torch.zeros(4, 3), "b": torch.zeros(3)}
    first, again, other = (poisoned_update(zero, -4.0, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(first[k], again[k]) for k in zero)  # reproducible from its seed
    assert not all(torch.equal(first[k], other[k]) for k in zero)  # another submission, other bytes
    assert any(bool(v.any()) for v in other.values())
