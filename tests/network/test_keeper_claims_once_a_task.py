"""The keepers' claims once a task has ended (`Keeper.claims`): the first of the "claim" rotation pays every
account with credit in one `claimFor`; the others wait `CLAIM_WAIT` slots and claim their own only if it is
still there; a batch the chain refuses is not retried, and its sender then claims its own. Small fakes of
the task's view and the chain (the network test `test_keeper_turns` runs the real thing on anvil)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from protocol.contracts import Role
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output
from protocol.roles.settle import Keeper, rotation

INITIATOR = "0x" + "1" * 40
TRAINERS = ["0x" + "2" * 40, "0x" + "3" * 40]
VALIDATORS = ["0x" + "4" * 40]
EVERYONE = [INITIATOR, *TRAINERS, *VALIDATORS]
TASK, END = 7, 2


@dataclass
class Chain:
    """Every account's credit; `claimFor` and `claim` as the RewardDistributor pays them."""

    credits: dict[str, int]
    refuse_batches: bool = False
    batches: list[list[str]] = field(default_factory=list)
    claims: list[str] = field(default_factory=list)


class FakeFunctions:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def claimFor(self, accounts: list[str]) -> list[str]:  # noqa: N802 (the contract's name)
        return accounts


class FakeClient:
    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def transact(self, accounts: list[str]) -> dict[str, Any]:
        if self.chain.refuse_batches:
            raise ContractRevert("SafeERC20FailedOperation", {"token": "0x" + "9" * 40})
        self.chain.batches.append(list(accounts))
        paid = {a: self.chain.credits[a] for a in accounts if self.chain.credits[a]}
        for a in paid:
            self.chain.credits[a] = 0
        return {"paid": paid}


class FakeEvents:
    class Claimed:
        def process_receipt(self, receipt: dict[str, Any], errors: object = None) -> list[dict[str, Any]]:
            return [{"args": {"account": a, "amount": v}} for a, v in receipt["paid"].items()]


class FakeDistributor:
    def __init__(self, chain: Chain) -> None:
        self.functions = FakeFunctions(chain)
        self.events = FakeEvents()


class FakeProto:
    appeals_enabled = False  # a deployment without an AppealCourt: nothing owed by a court

    def __init__(self, chain: Chain, me: str) -> None:
        self.chain, self.address = chain, me
        self.client = FakeClient(chain)
        self.distributor = FakeDistributor(chain)

    def credit_of(self, account: str | None = None) -> int:
        return self.chain.credits[account or self.address]

    def claim(self) -> int:
        amount = self.chain.credits[self.address]
        self.chain.credits[self.address] = 0
        self.chain.claims.append(self.address)
        return amount

    def appeal_credit_of(self, account: str | None = None) -> int:
        return 0

    def claim_appeal_credit(self) -> int:
        raise AssertionError("no AppealCourt in this deployment")

    def token_balance(self) -> int:
        return 0


class FakeSession:
    poll_interval = 0.0

    def __init__(self, proto: FakeProto) -> None:
        self.proto = proto

    def tokens(self, amount: int) -> str:
        return str(amount)


class FakeView:
    """A task whose rounds are all settled (no events: `_pending` finds nothing to settle)."""

    task_id = TASK

    def __init__(self, proto: FakeProto) -> None:
        self.created = {"initiator": INITIATOR}
        self.proto = proto
        self.session = FakeSession(proto)

    def participants(self, role: Role) -> list[tuple[str, int]]:
        return [(a, 0) for a in (TRAINERS if role == Role.TRAINER else VALIDATORS)]

    def submissions(self, round_: int) -> list[object]:
        return []

    def events(self, contract: str, event: str) -> list[dict[str, Any]]:
        return []


def keeper(chain: Chain, me: str, tmp_path: Path, slot: float) -> Keeper:
    proto = FakeProto(chain, me)
    proto.round_result_of = lambda task, round_: (0, 0, False)  # type: ignore[attr-defined]
    k = Keeper(cast(TaskView, FakeView(proto)), Journal(tmp_path / f"{me}.jsonl"), Output("keeper"))
    k._slot = slot
    return k


ORDER = rotation(TASK, END, "claim", EVERYONE)
DESIGNATED, OTHER = ORDER[0], ORDER[1]


def test_the_designated_keeper_pays_everyone_with_credit_in_one_batch(tmp_path: Path) -> None:
    chain = Chain(credits={a: 10 for a in EVERYONE} | {OTHER: 0})
    assert keeper(chain, DESIGNATED, tmp_path, slot=60.0).claims(END)
    assert chain.batches == [[a for a in ORDER if a != OTHER]]
    assert set(chain.credits.values()) == {0}
    assert chain.claims == []


def test_the_others_wait_and_claim_only_what_is_still_owed(tmp_path: Path) -> None:
    chain = Chain(credits={a: 10 for a in EVERYONE})
    patient = keeper(chain, OTHER, tmp_path, slot=60.0)
    assert not patient.claims(END)  # its CLAIM_WAIT slots have not passed: the designated keeper's turn
    assert patient.waiting
    assert chain.claims == []
    late = keeper(chain, OTHER, tmp_path, slot=0.0)  # the slots have passed: the designated one is gone
    assert late.claims(END)
    assert chain.claims == [OTHER]
    chain.credits = {a: 0 for a in EVERYONE}
    assert not keeper(chain, OTHER, tmp_path, slot=0.0).claims(END)  # paid already: nothing to send


def test_a_refused_batch_is_not_retried_and_its_sender_claims_its_own(tmp_path: Path) -> None:
    chain = Chain(credits={a: 10 for a in EVERYONE}, refuse_batches=True)
    designated = keeper(chain, DESIGNATED, tmp_path, slot=0.0)
    assert designated.claims(END)  # the batch refused at the estimate (nothing sent), then its own `claim`
    assert chain.batches == []
    assert chain.claims == [DESIGNATED]
    chain.refuse_batches = False
    assert not designated.claims(END)  # the others are still owed, but the batch is not tried again
    assert chain.batches == []
    assert [a for a, v in chain.credits.items() if v] == [a for a in EVERYONE if a != DESIGNATED]
