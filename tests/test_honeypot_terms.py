"""The initiator's honeypot terms (task file `honeypots`, `--honeypot-rate`, `--honeypot-trainer`): off by
default, a rate needs the bait's address, bad values are refused with the field named; and the rule that
picks the validators `slashLazy` slashes from the revealed words."""

from __future__ import annotations

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
    task = TaskFile.model_validate({**DEMO_TASK, "honeypots": {"rate": 0.5, "trainer": BAIT}})
    assert honeypot_terms(task).enabled
    terms = honeypot_terms(task, rate=1.0, trainer="0x" + "cd" * 20)
    assert (terms.rate, terms.trainer) == (1.0, to_checksum_address("0x" + "cd" * 20))
    assert not honeypot_terms(task, rate=0.0).enabled


@pytest.mark.parametrize(
    ("rate", "trainer", "message"),
    [
        (0.5, None, "a rate needs the bait's address"),
        (1.5, BAIT, "honeypots: rate"),
        (float("nan"), BAIT, "honeypots: rate"),
        (0.5, "0x1234", "honeypots: trainer"),
    ],
)
def test_bad_terms_are_refused(rate: float, trainer: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        honeypot_terms(TaskFile.model_validate(DEMO_TASK), rate=rate, trainer=trainer)


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
