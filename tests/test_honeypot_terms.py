"""The initiator's honeypot terms (task file `honeypots`, `--honeypot-rate`, `--honeypot-trainer`,
`--honeypot-secret`): off by default, a rate needs the bait's address and the bait plan's file, bad values
are refused with the field named; and the rule that picks the validators `slashLazy` slashes from the
revealed words."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from protocol.contracts import Verdict, pack_verdicts
from protocol.demo import DEMO_TASK
from protocol.errors import ConfigError
from protocol.roles.honeypots import HoneypotTerms, lazy_validators
from protocol.roles.initiator import TaskFile, honeypot_terms

BAIT = "0x" + "ab" * 20
A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE


def test_honeypots_are_off_unless_asked_for() -> None:
    task = TaskFile.model_validate(DEMO_TASK)
    terms = honeypot_terms(task)
    assert (terms.rate, terms.trainer, terms.enabled) == (0.0, None, False)


def test_the_command_line_overrides_the_task_file() -> None:
    terms = {"rate": 0.5, "trainer": BAIT, "secret": "plan.json"}
    task = TaskFile.model_validate({**DEMO_TASK, "honeypots": terms})
    assert honeypot_terms(task).enabled
    terms = honeypot_terms(task, rate=1.0, trainer="0x" + "cd" * 20, secret=Path("other.json"))
    assert (terms.rate, terms.baits, terms.secret) == (
        1.0,
        (to_checksum_address("0x" + "cd" * 20),),
        Path("other.json"),
    )
    assert not honeypot_terms(task, rate=0.0).enabled


def test_a_pool_of_baits_or_one() -> None:
    pool = ["0x" + "01" * 20, "0x" + "02" * 20]
    task = TaskFile.model_validate(
        {**DEMO_TASK, "honeypots": {"rate": 0.5, "trainers": pool, "secret": "plan.json"}}
    )
    assert honeypot_terms(task).baits == tuple(to_checksum_address(a) for a in pool)
    assert honeypot_terms(task, trainer=BAIT).baits == (to_checksum_address(BAIT),)  # the flag replaces it
    with pytest.raises(ValueError, match="named twice"):
        TaskFile.model_validate({**DEMO_TASK, "honeypots": {"rate": 0.5, "trainers": [BAIT, BAIT]}})


@pytest.mark.parametrize(
    ("rate", "trainer", "secret", "message"),
    [
        (0.5, None, Path("plan.json"), "a rate needs the bait's address"),
        (0.5, BAIT, None, "a rate needs the bait plan's file"),
        (1.5, BAIT, Path("plan.json"), "honeypots: rate"),
        (float("nan"), BAIT, Path("plan.json"), "honeypots: rate"),
        (0.5, "0x1234", Path("plan.json"), "honeypots: trainer"),
    ],
)
def test_bad_terms_are_refused(rate: float, trainer: str | None, secret: Path | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        honeypot_terms(TaskFile.model_validate(DEMO_TASK), rate=rate, trainer=trainer, secret=secret)


def test_the_task_file_refuses_unknown_honeypot_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        TaskFile.model_validate({**DEMO_TASK, "honeypots": {"rate": 1, "trainer": BAIT, "salt": "x"}})
    assert HoneypotTerms(rate=1, trainer=BAIT).enabled


def test_lazy_validators_are_the_revealed_accepts_on_the_honeypot() -> None:
    words = {
        "honest": (pack_verdicts([A, R]), True),
        "lazy": (pack_verdicts([A, A]), True),
        "network fault": (pack_verdicts([A, U]), True),
        "silent": (0, False),
        "committed only": (pack_verdicts([A, A]), False),  # a commitment word, not a verdict vector
    }
    assert lazy_validators(words, 1, 2) == ["lazy"]
    assert lazy_validators(words, 0, 2) == ["honest", "lazy", "network fault"]
