"""The task file's `chain.committee_draws` (and `task create --committee-draws`): 0 by default, checked
like the contract's rule (at most 64, at least the quorum, a nonzero minimum validator stake) before
anything is sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ConfigError
from protocol.roles.initiator import load_task_file, with_committee_draws

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "task.yaml"


def test_committee_draws_default_to_none_and_are_checked() -> None:
    task = load_task_file(EXAMPLE)
    assert task.chain.committee_draws == 0
    assert with_committee_draws(task, 4).chain.committee_draws == 4
    assert with_committee_draws(task, 4).chain.quorum == task.chain.quorum
    with pytest.raises(ConfigError, match="quorum"):
        with_committee_draws(task, task.chain.quorum - 1)
    with pytest.raises(ConfigError, match="committee_draws"):
        with_committee_draws(task, 65)


def test_a_task_file_with_committees_needs_a_validator_stake(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("committee_draws: 0", "committee_draws: 3")
    assert "committee_draws: 3" in text
    path = tmp_path / "task.yaml"
    path.write_text(text.replace("min_validator_stake: 50", "min_validator_stake: 0"))
    with pytest.raises(ConfigError, match="min_validator_stake"):
        load_task_file(path)
    path.write_text(text)
    assert load_task_file(path).chain.committee_draws == 3
