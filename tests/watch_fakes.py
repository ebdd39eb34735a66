"""A small fake of the chain a validator's watch reads (protocol.roles.watch.Watch): one finalised round 0,
this validator's revealed verdicts, the ballot's decisions, each decision's standing at the court, and a
court whose `appeal` can be made to revert. tests/contracts/test_validator_watch_appeals_by_itself.py
drives the watch on the real court."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from protocol.contracts import ZERO_ADDRESS, Appeal, Verdict, pack_verdicts
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.roles.base import Output
from protocol.roles.watch import Watch

WINDOW_END = 1_000


class FakeProto:
    """Round 0 finalised at time 100 with `mine` revealed and `decisions` decided."""

    appeals_enabled = True
    address = "0x" + "66" * 20

    def __init__(self, mine: Sequence[Verdict], decisions: Sequence[Verdict]) -> None:
        self.mine, self.decisions = list(mine), list(decisions)
        self.court = SimpleNamespace(address="0x" + "cc" * 20)
        self.token = SimpleNamespace(functions=SimpleNamespace(allowance=lambda owner, spender: "allowance"))
        self.client = SimpleNamespace(call=lambda fn: 10**30, timestamp=lambda: 100)
        self.appeals: dict[int, Appeal] = {}
        self.filed: list[int] = []
        self.revert: ContractRevert | None = None

    def task_state(self, task_id: int) -> Any:
        return SimpleNamespace(round=1)

    def verdicts_of(self, task_id: int, round_: int) -> tuple[int, bool]:
        return pack_verdicts(self.mine, allow_none=True), True

    def decisions_of(self, task_id: int, round_: int) -> list[Verdict]:
        return self.decisions

    def appeal_window_end(self, task_id: int, round_: int) -> int:
        return WINDOW_END

    def appeal_of(self, task_id: int, round_: int, index: int) -> Appeal:
        return self.appeals.get(index, appeal(ZERO_ADDRESS))

    def appeal_params(self) -> Any:
        return SimpleNamespace(bond=1)

    def token_balance(self) -> int:
        return 10

    def approve(self, spender: str, amount: int) -> None:
        pass

    def appeal(self, task_id: int, round_: int, index: int) -> None:
        self.filed.append(index)
        if self.revert is not None:
            raise self.revert


def appeal(appellant: str, *, decided: bool = False, overturned: bool = False, attempt: int = 0) -> Appeal:
    """An `appealOf` answer."""
    return Appeal(appellant, 10, Verdict.REJECT, decided, overturned, attempt, bytes(32), *([0] * 9))


def watch_of(
    proto: FakeProto, journal: Path, facts: Sequence[dict[str, object]]
) -> tuple[Watch, io.StringIO]:
    """A watch over task 1 whose journal holds round 0's `verdict` facts `facts` (one per submission, as the
    validator node journals them); and what it logs."""
    j = Journal(journal)
    for index, fact in enumerate(facts):
        j.fact("verdict", f"0:{index}", **fact)
    log = io.StringIO()
    return Watch(proto, 1, j, Output("watch", stream=log)), log  # type: ignore[arg-type]
