"""A juror slashed below the task's minimum allocation tops it up from free stake before revealing its
appeal verdict, as the ballot's reveal does: the court refuses a reveal below the minimum (`StakeTooLow`),
and the next ballot reveal would top it up anyway, so that the round's first settlement batch would find it
above the minimum and slash it for the appeal it could not reveal. Without free stake to cover the gap it
does not send a reveal the court refuses. The chain is a small fake here (the real `top_up` runs on it)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from protocol.contracts import Verdict
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.roles.validator import ValidatorNode, appeal_key

MINIMUM = 50
SALT = "0x" + "cd" * 32


class FakeProto:
    """An allocation, free stake, and a court that refuses a reveal below the minimum."""

    address = "0x" + "22" * 20

    def __init__(self, allocated: int, free: int) -> None:
        self.allocated, self.free = allocated, free
        self.reveals: list[tuple[int, int, Verdict]] = []
        self.stakes = SimpleNamespace(functions=SimpleNamespace(freeStakeOf=lambda address: "freeStakeOf"))
        self.client = SimpleNamespace(call=lambda fn: self.free)

    def allocation_of(self, task_id: int) -> int:
        return self.allocated

    def allocate(self, task_id: int, amount: int) -> None:
        assert amount <= self.free
        self.allocated, self.free = self.allocated + amount, self.free - amount

    def reveal_appeal(self, task_id: int, round_: int, index: int, verdict: Verdict, salt: bytes) -> None:
        if self.allocated < MINIMUM:
            raise ContractRevert("StakeTooLow", {"allocated": self.allocated, "required": MINIMUM})
        self.reveals.append((round_, index, verdict))


def _node(tmp_path: Path, proto: FakeProto) -> tuple[ValidatorNode, list[str]]:
    node = ValidatorNode.__new__(ValidatorNode)
    node.task_id = 1
    node.journal = Journal(tmp_path / "journal.jsonl")
    said: list[str] = []
    node.view = SimpleNamespace(  # type: ignore[assignment]
        proto=proto,
        task_id=1,
        config=SimpleNamespace(min_validator_stake=MINIMUM),
        session=SimpleNamespace(tokens=str),
    )
    node.out = SimpleNamespace(log=said.append, status=said.append)  # type: ignore[assignment]
    key = appeal_key(0, 2, 0)
    node.journal.intent("appeal-commit", key, verdict=int(Verdict.REJECT), salt=SALT)
    node.journal.done("appeal-commit", key)
    return node, said


def test_a_juror_below_the_minimum_tops_up_and_reveals(tmp_path: Path) -> None:
    proto = FakeProto(allocated=25, free=100)
    node, _ = _node(tmp_path, proto)
    assert node.reveal_appeal(0, 2, appeal_key(0, 2, 0))
    assert proto.reveals == [(0, 2, Verdict.REJECT)]
    assert (proto.allocated, proto.free) == (MINIMUM, 75)
    assert node.journal.is_done("appeal-reveal", appeal_key(0, 2, 0))


def test_without_free_stake_it_says_so_and_sends_nothing(tmp_path: Path) -> None:
    proto = FakeProto(allocated=25, free=10)
    node, said = _node(tmp_path, proto)
    assert not node.reveal_appeal(0, 2, appeal_key(0, 2, 0))
    assert proto.reveals == []
    assert proto.allocated == 25
    assert any("below the task's minimum" in line for line in said)


def test_a_juror_at_the_minimum_reveals_without_allocating(tmp_path: Path) -> None:
    proto = FakeProto(allocated=MINIMUM, free=100)
    node, _ = _node(tmp_path, proto)
    assert node.reveal_appeal(0, 2, appeal_key(0, 2, 0))
    assert (proto.allocated, proto.free) == (MINIMUM, 100)
    assert proto.reveals == [(0, 2, Verdict.REJECT)]
