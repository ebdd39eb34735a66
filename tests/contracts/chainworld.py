"""Helpers of the contract tests: a `World` of funded, staked participants on one deployment, with
round helpers, and `reverts` to assert a custom error with its values."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from eth_utils.crypto import keccak
from web3.logs import DISCARD

from protocol.contracts import (
    AppealParams,
    Deployment,
    ProtocolClient,
    Role,
    TaskParams,
    ValidatorOutcome,
    Verdict,
    WorkSubmission,
    deploy_protocol,
    pack_verdicts,
)
from protocol.errors import ContractRevert

if TYPE_CHECKING:
    from protocol.chain import ChainClient

UNBONDING = 3_600
TOKENS = 10**24
STAKE = 10**21
COURT = AppealParams(
    window=1_000,
    draws=48,
    bond=10**18,
    commit_duration=200,
    reveal_duration=200,
    slash_bps=5_000,
    reward_bps=4_000,
    silence_bps=1_000,
)
"""The test deployments' AppealCourt: short phases, 48 draws, a bond of one token."""
REWARD = 10**18
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
SUBMIT, COMMIT, REVEAL, VOTE = 600, 300, 300, 300
TRAINERS = (1, 2, 3)
VALIDATORS = (4, 5, 6)
SPARE = (7, 8)  # staked, never joined by default
OUTSIDER = 9  # no tokens, no stake


def h(*parts: object) -> bytes:
    """A deterministic 32-byte test hash."""
    return keccak(text=":".join(str(p) for p in parts))


def work(tag: object, units: int = 1_000) -> WorkSubmission:
    """A submission whose hashes are derived from `tag`."""
    return WorkSubmission(
        bundle_hash=h("bundle", tag),
        bundle_cid=CID,
        update_hash=h("update", tag),
        update_cid=CID,
        proof_root=h("proofs", tag),
        state_root=h("states", tag),
        work_units=units,
    )


def logs(contract: Any, event: str, receipt: Any) -> list[dict[str, Any]]:
    """The arguments of every `event` of `contract` in `receipt` (other contracts' logs ignored)."""
    return [dict(log["args"]) for log in contract.events[event]().process_receipt(receipt, errors=DISCARD)]


def reverts(error: str, **values: Any) -> Callable[[Callable[[], object]], ContractRevert]:
    """`reverts("Name", a=1)(lambda: tx())` runs `tx`, asserts the custom error and its values, and
    returns the exception (for values that are not known in advance)."""

    def check(action: Callable[[], object]) -> ContractRevert:
        with pytest.raises(ContractRevert) as info:
            action()
        assert info.value.error == error, f"expected {error}, got {info.value}"
        for key, want in values.items():
            assert info.value.values[key] == want, f"{error}.{key}: {info.value.values[key]!r} != {want!r}"
        return info.value

    return check


@dataclass
class World:
    """A deployment and its participants (account 0 initiates, the others stake), with helpers."""

    chain: ChainClient
    deployment: Deployment
    people: list[ProtocolClient]
    salts: dict[tuple[int, int, str], bytes] = field(default_factory=dict)

    @property
    def initiator(self) -> ProtocolClient:
        return self.people[0]

    @property
    def trainers(self) -> list[ProtocolClient]:
        return [self.people[i] for i in TRAINERS]

    @property
    def validators(self) -> list[ProtocolClient]:
        return [self.people[i] for i in VALIDATORS]

    @property
    def outsider(self) -> ProtocolClient:
        return self.people[OUTSIDER]

    def now(self) -> int:
        return self.chain.timestamp()

    def warp_to(self, timestamp: int) -> None:
        """Mine a block at `timestamp` or later."""
        delta = timestamp - self.now()
        if delta > 0:
            self.chain.increase_time(delta)

    def params(self, **overrides: Any) -> TaskParams:
        values: dict[str, Any] = {
            "spec_hash": h("spec"),
            "spec_cid": CID,
            "initial_model_hash": h("model", 0),
            "initial_model_cid": CID,
            "num_rounds": 3,
            "reward_per_round": REWARD,
            "validator_share_bps": 2_000,
            "min_trainer_stake": STAKE // 10,
            "min_validator_stake": STAKE // 10,
            "quorum": 2,
            "max_trainers": 8,
            "max_validators": 8,
            "submit_duration": SUBMIT,
            "commit_duration": COMMIT,
            "reveal_duration": REVEAL,
            "vote_duration": VOTE,
            "seed_delay": 2,
            "sample_rollouts": 4,
            "sample_steps": 2,
            "trainer_slash_bps": 1_000,
            "validator_slash_bps": 500,
            "max_empty_rounds": 2,
            "start_time": self.now() + 100,
        }
        values.update(overrides)
        return TaskParams(**values)

    def create_task(self, **overrides: Any) -> int:
        return self.initiator.create_task(self.params(**overrides))

    def join(
        self,
        task_id: int,
        trainers: Sequence[ProtocolClient] = (),
        validators: Sequence[ProtocolClient] = (),
        allocation: int = STAKE // 2,
    ) -> None:
        for p, role in [*((t, Role.TRAINER) for t in trainers), *((v, Role.VALIDATOR) for v in validators)]:
            p.allocate(task_id, allocation)
            p.join_task(task_id, role)

    def setup_task(self, **overrides: Any) -> int:
        """A task joined by the three trainers and three validators, started (round 0 open)."""
        task_id = self.create_task(**overrides)
        self.join(task_id, self.trainers, self.validators)
        self.start(task_id)
        return task_id

    def start(self, task_id: int) -> None:
        self.warp_to(self.initiator.task_config(task_id).start_time)

    def submit_all(
        self,
        task_id: int,
        round_: int,
        trainers: Sequence[ProtocolClient] | None = None,
        units: Sequence[int] | None = None,
    ) -> list[int]:
        chosen = self.trainers if trainers is None else list(trainers)
        amounts = units or [1_000 * (i + 1) for i in range(len(chosen))]
        return [
            p.submit_work(task_id, round_, work((task_id, round_, i), u))
            for i, (p, u) in enumerate(zip(chosen, amounts, strict=True))
        ]

    def draw(self, task_id: int) -> bytes:
        """Draw the current round's seed (arming it first if the deadline closed the submit phase)."""
        state = self.initiator.task_state(task_id)
        if state.seed_block == 0:
            assert self.initiator.draw_seed(task_id) is None
            state = self.initiator.task_state(task_id)
        blocks = state.seed_block - self.chain.block_number()
        if blocks >= 0:
            self.chain.mine(blocks + 1)
        seed = self.initiator.draw_seed(task_id)
        assert seed is not None
        return seed

    def commit(self, task_id: int, round_: int, rows: Mapping[ProtocolClient, Sequence[Verdict]]) -> None:
        for p, row in rows.items():
            salt = h("salt", task_id, round_, p.address)
            self.salts[(task_id, round_, p.address)] = salt
            p.commit_verdicts(task_id, round_, pack_verdicts(row, allow_none=True), salt)

    def reveal(self, task_id: int, round_: int, rows: Mapping[ProtocolClient, Sequence[Verdict]]) -> None:
        for p, row in rows.items():
            p.reveal_verdicts(
                task_id, round_, pack_verdicts(row, allow_none=True), self.salts[(task_id, round_, p.address)]
            )

    def commit_votes(
        self, task_id: int, round_: int, votes: Mapping[ProtocolClient, bytes], cid: str = CID
    ) -> None:
        for p, model in votes.items():
            salt = h("vote salt", task_id, round_, p.address)
            self.salts[(task_id, -1 - round_, p.address)] = salt
            p.commit_model_vote(task_id, round_, model, cid, salt)

    def reveal_votes(
        self, task_id: int, round_: int, votes: Mapping[ProtocolClient, bytes], cid: str = CID
    ) -> None:
        for p, model in votes.items():
            p.vote_model(task_id, round_, model, cid, self.salts[(task_id, -1 - round_, p.address)])

    def vote(self, task_id: int, round_: int, votes: Mapping[ProtocolClient, bytes], cid: str = CID) -> None:
        """Commit `votes`, move past the vote commit if someone that revealed did not commit, reveal them."""
        if not votes:
            return
        self.commit_votes(task_id, round_, votes, cid)
        ballot = self.initiator.ballot_of(task_id, round_)
        if ballot.vote_committed < ballot.revealed:
            self.warp_to(ballot.vote_commit_end)
        self.reveal_votes(task_id, round_, votes, cid)

    def ballot(
        self,
        task_id: int,
        round_: int,
        rows: Mapping[ProtocolClient, Sequence[Verdict]],
        votes: Mapping[ProtocolClient, bytes] | None = None,
    ) -> None:
        """Commit and reveal `rows` (every validator in `rows` acts), then vote."""
        self.commit(task_id, round_, rows)
        ballot = self.initiator.ballot_of(task_id, round_)
        if ballot.committed < ballot.expected:
            self.warp_to(ballot.commit_end)
        self.reveal(task_id, round_, rows)
        self.vote(task_id, round_, votes or {})

    def close_ballot(self, task_id: int, round_: int) -> None:
        """Move time past the round's vote deadline."""
        self.warp_to(self.initiator.ballot_of(task_id, round_).vote_end)

    def token_total(self) -> int:
        """Tokens held by the StakeManager and the RewardDistributor."""
        return self.initiator.token_balance(
            self.deployment.stake_manager.address
        ) + self.initiator.token_balance(self.deployment.reward_distributor.address)

    def owed_total(self) -> int:
        """Stakes + slashes not yet burned + escrow + unclaimed credits, from the contracts' own totals."""
        c = self.chain
        d = self.deployment
        return (
            int(c.call(d.stake_manager.functions.totalStake()))
            + int(c.call(d.stake_manager.functions.unburned()))
            + int(c.call(d.reward_distributor.functions.totalEscrowed()))
            + int(c.call(d.reward_distributor.functions.totalCredits()))
        )

    def escrow_total(self) -> int:
        """Sum over all tasks of remaining + reserved."""
        count = int(self.chain.call(self.deployment.task_escrow.functions.taskCount()))
        return sum(sum(self.initiator.funds_of(t)) for t in range(1, count + 1))

    def assert_solvent(self) -> None:
        """The invariant: tokens held == stakes + unburned + escrow + credits; the escrow's books agree
        with the distributor's; and every balance rebuilt from the events alone equals the contracts'
        state."""
        assert self.token_total() == self.owed_total()
        escrowed = int(self.chain.call(self.deployment.reward_distributor.functions.totalEscrowed()))
        assert self.escrow_total() == escrowed
        self.assert_events_rebuild_balances()

    def assert_events_rebuild_balances(self) -> None:
        """Replay every event of the deployment (what an auditor sees) and compare with the views."""
        books = replay(self.chain, self.deployment)
        p = self.initiator
        for staker, (bonded, allocated, unbonding) in books.stakes.items():
            assert p.stake_of(staker)[:3] == (bonded, allocated, unbonding), staker
        for (staker, task_id), amount in books.allocations.items():
            assert p.allocation_of(task_id, staker) == amount
        for task_id, funds in books.tasks.items():
            assert p.funds_of(task_id) == funds, task_id
        for account, amount in books.credits.items():
            assert p.credit_of(account) == amount
        d = self.deployment
        assert books.escrowed == int(self.chain.call(d.reward_distributor.functions.totalEscrowed()))
        assert books.unburned == int(self.chain.call(d.stake_manager.functions.unburned()))
        assert sum(books.credits.values()) == int(
            self.chain.call(d.reward_distributor.functions.totalCredits())
        )
        assert sum(b + u for b, _, u in books.stakes.values()) == int(
            self.chain.call(d.stake_manager.functions.totalStake())
        )


@dataclass
class Books:
    """Balances rebuilt from events: stakes (bonded, allocated, unbonding), allocations per task, task
    escrow (remaining, reserved), credits, the distributor's escrow total, and the slashed tokens the
    StakeManager holds because the token refused to burn them."""

    stakes: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    allocations: dict[tuple[str, int], int] = field(default_factory=dict)
    tasks: dict[int, tuple[int, int]] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)
    escrowed: int = 0
    unburned: int = 0


_EVENTS = {
    "stake_manager": (
        "Staked", "UnstakeRequested", "Withdrawn", "Allocated", "Deallocated", "Slashed", "BurnDeferred",
        "BurnFlushed",
    ),
    "reward_distributor": ("Deposited", "Credited", "Claimed"),
    "task_escrow": (
        "TaskCreated", "RoundFinalized", "SubmissionSettled", "ValidatorSettled", "TaskCompleted",
        "TaskCancelled", "Refunded", "RewardReleased",
    ),
}  # fmt: skip


def replay(chain: ChainClient, deployment: Deployment) -> Books:
    """Rebuild every balance from the deployment's events, in chain order."""
    contracts = deployment.contracts()
    logs_ = [
        log
        for role, names in _EVENTS.items()
        for name in names
        for log in chain.get_logs(contracts[role], name, deployment.block)
    ]
    logs_.sort(key=lambda log: (log["blockNumber"], log["logIndex"]))
    books = Books()
    ended: set[int] = set()

    def add_stake(staker: str, bonded: int = 0, allocated: int = 0, unbonding: int = 0) -> None:
        b, a, u = books.stakes.get(staker, (0, 0, 0))
        books.stakes[staker] = (b + bonded, a + allocated, u + unbonding)

    def add_funds(task_id: int, remaining: int = 0, reserved: int = 0) -> None:
        r, s = books.tasks.get(task_id, (0, 0))
        books.tasks[task_id] = (r + remaining, s + reserved)

    for log in logs_:
        e, name = log["args"], log["event"]
        if name == "Staked":
            add_stake(e["staker"], bonded=e["amount"])
        elif name == "UnstakeRequested":
            add_stake(e["staker"], bonded=-e["amount"], unbonding=e["amount"])
        elif name == "Withdrawn":
            add_stake(e["staker"], unbonding=-e["amount"])
        elif name in ("Allocated", "Deallocated", "Slashed"):
            sign = 1 if name == "Allocated" else -1
            key = (e["staker"], e["taskId"])
            books.allocations[key] = books.allocations.get(key, 0) + sign * e["amount"]
            add_stake(
                e["staker"], allocated=sign * e["amount"], bonded=-e["amount"] if name == "Slashed" else 0
            )
        elif name == "BurnDeferred":
            books.unburned += e["amount"]
        elif name == "BurnFlushed":
            books.unburned -= e["amount"]
        elif name == "Deposited":
            books.escrowed += e["amount"]
        elif name == "Credited":
            books.escrowed -= e["amount"]
            books.credits[e["account"]] = books.credits.get(e["account"], 0) + e["amount"]
        elif name == "Claimed":
            books.credits[e["account"]] -= e["amount"]
        elif name == "TaskCreated":
            add_funds(e["taskId"], remaining=e["deposit"])
        elif name == "RoundFinalized":
            paid = e["budget"] - e["carry"]
            add_funds(e["taskId"], remaining=-paid, reserved=paid)
        elif name == "SubmissionSettled":
            add_funds(e["taskId"], reserved=-e["reward"])
        elif name == "ValidatorSettled" and e["outcome"] != ValidatorOutcome.SLASHED:
            back = (
                e["amount"] if e["outcome"] == ValidatorOutcome.FORFEITED and e["taskId"] not in ended else 0
            )
            add_funds(e["taskId"], remaining=back, reserved=-e["amount"])
        elif name == "RewardReleased":
            back = e["amount"] if e["taskId"] not in ended else 0
            add_funds(e["taskId"], remaining=back, reserved=-e["amount"])
        elif name in ("TaskCompleted", "TaskCancelled"):
            ended.add(e["taskId"])
        elif name == "Refunded":
            add_funds(e["taskId"], remaining=-e["amount"])
    return books


def make_world(
    chain: ChainClient,
    client_for: Callable[[int], ChainClient],
    token: str | None = None,
    appeals: AppealParams | None = None,
    approve_court: bool = False,
) -> World:
    """Deploy (with `token`, or a fresh TestToken; with an AppealCourt of `appeals`) and fund, approve and
    stake accounts 1..8 (and, with `approve_court`, let the court pull their bonds)."""
    deployment = deploy_protocol(chain, token, unbonding_period=UNBONDING, appeals=appeals)
    people = [ProtocolClient(client_for(i), deployment) for i in range(OUTSIDER + 1)]
    world = World(chain, deployment, people)
    mint = deployment.token.functions.mint
    for p in people[:OUTSIDER]:
        chain.transact(mint(p.address, TOKENS))
    world.initiator.approve(deployment.task_escrow.address, 2**256 - 1)
    for p in people[1:OUTSIDER]:
        p.approve(deployment.stake_manager.address, 2**256 - 1)
        p.stake(STAKE)
        if approve_court:
            assert deployment.appeal_court is not None
            p.approve(deployment.appeal_court.address, 2**256 - 1)
    return world


def judge_appeal(world: World, task_id: int, index: int, verdicts: Mapping[ProtocolClient, Verdict]) -> None:
    """Round 0's appeal of `index`: the jurors commit and reveal their `verdicts` (past the commit deadline
    when someone stays silent)."""
    for v, verdict in verdicts.items():
        v.commit_appeal(task_id, 0, index, verdict, h("appeal salt", v.address))
    a = world.initiator.appeal_of(task_id, 0, index)
    if a.committed_weight < COURT.draws:
        world.warp_to(a.commit_end)
    for v, verdict in verdicts.items():
        v.reveal_appeal(task_id, 0, index, verdict, h("appeal salt", v.address))
