"""The protocol on adversarial ERC20s, one deployment per token.

- Fee on transfer: `stake` and `createTask` are refused with `TokenTransferShortfall` and nothing is lost
  (the refused transactions are mined, not just estimated, and every balance and total is unchanged).
- False instead of a revert / no return value: deposits and claims either work exactly or revert cleanly;
  a deposit that did not arrive is never recorded; a burn the token refuses is deferred, not a revert.
- Re-entry from inside a transfer (ReentrantToken + AdversarialActor): re-entering withdraw, claim, stake,
  createTask or settle is blocked by the guards; re-entry into another contract leaves the books consistent.
- Blacklist (AdversarialBlacklistToken): slashing never reverts, even when the burn address is listed; a
  listed account blocks only its own payouts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from chainworld import REWARD, STAKE, UNBONDING, World, h, logs, make_world, reverts

from protocol.contracts import BURN_ADDRESS, ProtocolClient, ValidatorOutcome, Verdict, deploy_protocol
from protocol.errors import ContractRevert

if TYPE_CHECKING:
    from web3.contract import Contract

    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

pytestmark = pytest.mark.chain

A, R, U = Verdict.ACCEPT, Verdict.REJECT, Verdict.UNAVAILABLE
# An explicit gas limit: the transaction is mined (and reverts on chain) instead of failing its estimate.
GAS = 2_000_000
MAX = 2**256 - 1
NO_HOOK = "0x" + "00" * 20
ALLOCATION = STAKE // 2  # what World.setup_task allocates
TRAINER_SLASH = ALLOCATION * 1_000 // 10_000  # World.params: trainerSlashBps 1000
VALIDATOR_SLASH = ALLOCATION * 500 // 10_000  # validatorSlashBps 500

ClientFor = Callable[[int], "ChainClient"]


def token_world(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract], name: str
) -> tuple[Contract, World]:
    """A deployment on a fresh `name` token; accounts 1..8 staked as in every contract test."""
    token = chain.deploy(compiled[name])
    return token, make_world(chain, client_for, token.address)


def mined_revert(error: str, who: ProtocolClient, fn: Any, **values: Any) -> ContractRevert:
    """Send `fn` with a fixed gas limit, so that it is mined and reverts on chain, and check the error."""
    exc = reverts(error, **values)(lambda: who.client.transact(fn, gas=GAS))
    assert exc.tx is not None, "the transaction was not mined"
    return exc


def books(w: World, *accounts: str) -> dict[str, Any]:
    """Every balance and total a refused transaction could have touched."""
    d, call, p = w.deployment, w.chain.call, w.initiator
    holders = [d.stake_manager.address, d.reward_distributor.address, d.task_escrow.address, BURN_ADDRESS]
    return {
        "balances": [p.token_balance(a) for a in [*holders, *accounts]],
        "totals": [
            call(d.stake_manager.functions.totalStake()),
            call(d.stake_manager.functions.unburned()),
            call(d.reward_distributor.functions.totalEscrowed()),
            call(d.reward_distributor.functions.totalCredits()),
            call(d.task_escrow.functions.taskCount()),
        ],
        "accounts": [(p.stake_of(a), p.credit_of(a)) for a in accounts],
    }


def play_round(w: World, task_id: int, *, then: Callable[[], object] | None = None) -> None:
    """Round 0 of a set-up task: trainers accepted, rejected, unavailable; validators 0 and 1 reveal,
    validator 2 never commits; finalised, then `then` (before anyone settles)."""
    v0, v1, _ = w.validators
    w.submit_all(task_id, 0, units=[1_000, 2_000, 3_000])
    w.draw(task_id)
    w.ballot(task_id, 0, {v0: [A, R, U], v1: [A, R, U]}, {v0: h("m1"), v1: h("m1")})
    w.close_ballot(task_id, 0)
    w.initiator.finalize_round(task_id)
    if then is not None:
        then()


def settle_round(w: World, task_id: int) -> list[dict[str, Any]]:
    """Settle round 0's three submissions and three validators; returns the StakeManager's burn events."""
    p, stakes = w.initiator, w.deployment.stake_manager
    receipts = [p.settle_submission(task_id, 0, i) for i in range(3)]
    receipts += [p.settle_validator(task_id, 0, v.address) for v in w.validators]
    return [e for r in receipts for e in logs(stakes, "BurnDeferred", r)]


# ---------------------------------------------------------------------------- fee on transfer


@pytest.mark.parametrize(("fee_bps", "received"), [(100, 9_900), (1, 9_999), (10_000, 0)])
def test_fee_on_transfer_is_refused_and_nothing_is_lost(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract], fee_bps: int, received: int
) -> None:
    token = chain.deploy(compiled["FeeToken"], fee_bps)
    deployment = deploy_protocol(chain, token.address, unbonding_period=UNBONDING, compiled=compiled)
    w = World(chain, deployment, [ProtocolClient(p.client, deployment) for p in world.people])
    initiator, staker = w.people[0], w.people[7]
    for p, spender in ((initiator, deployment.task_escrow), (staker, deployment.stake_manager)):
        chain.transact(token.functions.mint(p.address, 10**6))
        p.approve(spender.address, MAX)
    before = books(w, initiator.address, staker.address)

    stake = deployment.stake_manager.functions.stake(10_000)
    mined_revert("TokenTransferShortfall", staker, stake, expected=10_000, received=received)
    params = world.params(num_rounds=2, reward_per_round=5_000)
    create = deployment.task_escrow.functions.createTask(params.as_tuple())
    mined_revert("TokenTransferShortfall", initiator, create, expected=10_000, received=received)
    assert books(w, initiator.address, staker.address) == before


def test_a_fee_that_rounds_to_zero_is_no_shortfall(
    world: World, chain: ChainClient, compiled: dict[str, CompiledContract]
) -> None:
    """The check is exact equality: 0.01 % of 9 999 is 0, so that stake arrives in full and is accepted,
    and paid back in full."""
    token = chain.deploy(compiled["FeeToken"], 1)
    deployment = deploy_protocol(chain, token.address, unbonding_period=UNBONDING, compiled=compiled)
    staker = ProtocolClient(world.people[7].client, deployment)
    chain.transact(token.functions.mint(staker.address, 10**6))
    staker.approve(deployment.stake_manager.address, MAX)
    staker.stake(9_999)
    assert staker.token_balance(deployment.stake_manager.address) == 9_999
    assert staker.stake_of()[0] == chain.call(deployment.stake_manager.functions.totalStake()) == 9_999
    staker.request_unstake(9_999)
    world.warp_to(staker.stake_of()[3])
    staker.withdraw()
    assert staker.token_balance() == 10**6
    assert staker.token_balance(deployment.stake_manager.address) == 0


# ---------------------------------------------------------------------------- false / no return value


def test_false_returning_token_never_records_a_deposit_that_did_not_arrive(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract]
) -> None:
    token, w = token_world(chain, client_for, compiled, "FalseReturnToken")
    outsider, initiator, staker = w.people[9], w.initiator, w.people[7]
    chain.transact(token.functions.mint(outsider.address, 1_000))
    accounts = (outsider.address, initiator.address, staker.address)
    before = books(w, *accounts)
    stakes, escrow = w.deployment.stake_manager.functions, w.deployment.task_escrow.functions
    failed = {"token": token.address}

    # No allowance, then an allowance but too small a balance: transferFrom returns false.
    mined_revert("SafeERC20FailedOperation", outsider, stakes.stake(1_000), **failed)
    outsider.approve(w.deployment.stake_manager.address, MAX)
    mined_revert("SafeERC20FailedOperation", outsider, stakes.stake(1_001), **failed)
    # Every transfer returns false.
    chain.transact(token.functions.setFailAll(True))
    mined_revert("SafeERC20FailedOperation", staker, stakes.stake(1_000), **failed)
    params = w.params(num_rounds=2, reward_per_round=500)
    mined_revert("SafeERC20FailedOperation", initiator, escrow.createTask(params.as_tuple()), **failed)
    assert books(w, *accounts) == before

    chain.transact(token.functions.setFailAll(False))
    initiator.cancel_task(initiator.create_task(params))
    assert initiator.credit_of() == 1_000
    chain.transact(token.functions.setFailAll(True))
    claim = w.deployment.reward_distributor.functions.claim()
    mined_revert("SafeERC20FailedOperation", initiator, claim, **failed)
    assert initiator.credit_of() == 1_000
    chain.transact(token.functions.setFailAll(False))
    balance = initiator.token_balance()
    assert initiator.claim() == 1_000
    assert initiator.token_balance() == balance + 1_000
    reverts("NothingToClaim", account=initiator.address)(initiator.claim)
    w.assert_solvent()


def test_a_burn_that_returns_false_is_deferred_not_a_revert(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract]
) -> None:
    token, w = token_world(chain, client_for, compiled, "FalseReturnToken")
    task_id = w.setup_task(num_rounds=2)
    play_round(w, task_id, then=lambda: chain.transact(token.functions.setFailAll(True)))
    deferred = settle_round(w, task_id)  # the rewards are credits only: no transfer
    assert [e["amount"] for e in deferred] == [TRAINER_SLASH, TRAINER_SLASH, VALIDATOR_SLASH]
    p = w.initiator
    total = 2 * TRAINER_SLASH + VALIDATOR_SLASH
    assert p.unburned() == total
    w.assert_solvent()
    mined_revert("BurnRefused", p, w.deployment.stake_manager.functions.flushBurn(), amount=total)
    chain.transact(token.functions.setFailAll(False))
    p.flush_burn()
    assert (p.unburned(), p.token_balance(BURN_ADDRESS)) == (0, total)
    w.assert_solvent()


def test_token_without_return_values_runs_a_whole_round(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract]
) -> None:
    token, w = token_world(chain, client_for, compiled, "NoReturnToken")
    p, outsider = w.initiator, w.people[9]
    chain.transact(token.functions.mint(outsider.address, 1_000))
    before = books(w, outsider.address)
    stake = w.deployment.stake_manager.functions.stake(1_000)
    # A failing transferFrom reverts inside the token: SafeERC20 passes its error on.
    mined_revert("InsufficientAllowance", outsider, stake, allowance=0, needed=1_000)
    assert books(w, outsider.address) == before

    task_id = w.setup_task(num_rounds=1)
    play_round(w, task_id)
    assert settle_round(w, task_id) == []  # every burn went through
    assert p.token_balance(BURN_ADDRESS) == 2 * TRAINER_SLASH + VALIDATOR_SLASH
    paid = 0
    for person in w.people[:9]:
        credit = person.credit_of()
        if credit:
            balance = person.token_balance()
            assert person.claim() == credit
            assert person.token_balance() == balance + credit
            paid += credit
    assert paid == REWARD  # the whole deposit of the one-round task
    t0 = w.trainers[0]
    t0.request_unstake(t0.free_stake_of())
    w.warp_to(t0.stake_of()[3])
    balance, owed = t0.token_balance(), t0.stake_of()[2]
    t0.withdraw()
    assert t0.token_balance() == balance + owed
    w.assert_solvent()


# ---------------------------------------------------------------------------- re-entry


class Actor:
    """An AdversarialActor contract holding tokens, and helpers to make it call or arm the token's hook."""

    def __init__(self, w: World, token: Contract, compiled: dict[str, CompiledContract]) -> None:
        self.w, self.token = w, token
        self.contract = w.chain.deploy(compiled["AdversarialActor"])
        self.address = self.contract.address
        self.sender = w.people[9]  # pays the gas of the calls it relays
        w.chain.transact(token.functions.mint(self.address, 10**9))
        d = w.deployment
        for spender in (d.stake_manager, d.task_escrow):
            self.call(token, "approve", spender.address, MAX)

    def execute(self, target: Contract, fn: str, *args: Any) -> Any:
        """The transaction `execute(target, fn(args))` (not sent)."""
        return self.contract.functions.execute(target.address, target.encode_abi(fn, args=list(args)))

    def call(self, target: Contract, fn: str, *args: Any) -> Any:
        return self.sender.client.transact(self.execute(target, fn, *args))

    def arm(self, target: Contract, fn: str, *args: Any) -> None:
        """On the token's next transfer, the actor calls `target.fn(args)` first."""
        data = self.contract.encode_abi(
            "execute", args=[target.address, target.encode_abi(fn, args=list(args))]
        )
        self.w.chain.transact(self.token.functions.arm(self.address, data))

    def disarm(self) -> None:
        self.w.chain.transact(self.token.functions.arm(NO_HOOK, b""))


@pytest.fixture
def reentrant(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract]
) -> tuple[World, Actor]:
    """A deployment on a ReentrantToken and an actor contract with tokens and approvals."""
    token, w = token_world(chain, client_for, compiled, "ReentrantToken")
    return w, Actor(w, token, compiled)


def test_reentering_withdraw_from_inside_its_payout_is_blocked(reentrant: tuple[World, Actor]) -> None:
    w, actor = reentrant
    sm = w.deployment.stake_manager
    actor.call(sm, "stake", 1_000)
    actor.call(sm, "requestUnstake", 1_000)
    w.warp_to(w.initiator.stake_of(actor.address)[3])
    before = books(w, actor.address)
    actor.arm(sm, "withdraw")
    mined_revert("ReentrancyGuardReentrantCall", actor.sender, actor.execute(sm, "withdraw"))
    assert books(w, actor.address) == before
    actor.disarm()
    actor.call(sm, "withdraw")
    assert w.initiator.token_balance(actor.address) == before["balances"][-1] + 1_000
    reverts("NothingToWithdraw", staker=actor.address)(lambda: actor.call(sm, "withdraw"))
    w.assert_solvent()


def test_reentering_claim_from_inside_its_payout_is_blocked(reentrant: tuple[World, Actor]) -> None:
    w, actor = reentrant
    escrow, distributor = w.deployment.task_escrow, w.deployment.reward_distributor
    params = w.params(num_rounds=2, reward_per_round=700)
    actor.call(escrow, "createTask", params.as_tuple())
    task_id = int(w.chain.call(escrow.functions.taskCount()))
    actor.call(escrow, "cancelTask", task_id)
    assert w.initiator.credit_of(actor.address) == 1_400
    before = books(w, actor.address)
    actor.arm(distributor, "claim")
    mined_revert("ReentrancyGuardReentrantCall", actor.sender, actor.execute(distributor, "claim"))
    assert books(w, actor.address) == before
    actor.disarm()
    actor.call(distributor, "claim")
    assert w.initiator.token_balance(actor.address) == before["balances"][-1] + 1_400
    assert w.initiator.credit_of(actor.address) == 0
    w.assert_solvent()


@pytest.mark.parametrize("fn", ["createTask", "stake"])
def test_reentering_a_deposit_from_inside_its_transfer_is_blocked(
    reentrant: tuple[World, Actor], fn: str
) -> None:
    w, actor = reentrant
    d = w.deployment
    target, args = (
        (d.task_escrow, [w.params(num_rounds=1, reward_per_round=300).as_tuple()])
        if fn == "createTask"
        else (d.stake_manager, [300])
    )
    before = books(w, actor.address)
    actor.arm(target, fn, *args)
    mined_revert("ReentrancyGuardReentrantCall", actor.sender, actor.execute(target, fn, *args))
    assert books(w, actor.address) == before
    actor.disarm()
    actor.call(target, fn, *args)  # once, without the hook
    assert w.initiator.token_balance(actor.address) == before["balances"][-1] - 300
    w.assert_solvent()


def test_a_burn_that_reenters_settle_is_deferred_and_the_reentry_has_no_effect(
    reentrant: tuple[World, Actor],
) -> None:
    w, actor = reentrant
    escrow = w.deployment.task_escrow
    task_id = w.setup_task(num_rounds=2)
    play_round(w, task_id)
    p = w.initiator
    # Settling the rejected submission burns its slash; the token then re-enters settle for submission 0.
    actor.arm(escrow, "settleSubmission", task_id, 0, 0)
    receipt = p.settle_submission(task_id, 0, 1)
    (settled,) = logs(escrow, "SubmissionSettled", receipt)
    assert (settled["index"], settled["slashed"]) == (1, TRAINER_SLASH)
    (deferred,) = logs(w.deployment.stake_manager, "BurnDeferred", receipt)
    assert deferred["amount"] == TRAINER_SLASH  # the hook's revert made the burn fail, not the slash
    assert not p.submission_of(task_id, 0, 0)[2]  # the re-entrant settle did nothing
    assert p.credit_of(w.trainers[0].address) == 0
    w.assert_solvent()
    actor.disarm()
    p.settle_submission(task_id, 0, 0)
    assert p.credit_of(w.trainers[0].address) > 0
    p.flush_burn()
    assert (p.unburned(), p.token_balance(BURN_ADDRESS)) == (0, TRAINER_SLASH)
    w.assert_solvent()


def test_reentering_another_contract_during_a_payout_keeps_the_books(reentrant: tuple[World, Actor]) -> None:
    """The guards are per contract: while the distributor pays a claim, the actor may create a task (the
    escrow is not locked). The claim pays once, the deposit is recorded as it arrived, the books balance."""
    w, actor = reentrant
    escrow, distributor = w.deployment.task_escrow, w.deployment.reward_distributor
    first = w.params(num_rounds=1, reward_per_round=1_000)
    actor.call(escrow, "createTask", first.as_tuple())
    actor.call(escrow, "cancelTask", int(w.chain.call(escrow.functions.taskCount())))
    balance = w.initiator.token_balance(actor.address)
    second = w.params(num_rounds=3, reward_per_round=100, spec_hash=h("second"))
    actor.arm(escrow, "createTask", second.as_tuple())
    actor.call(distributor, "claim")
    task_id = int(w.chain.call(escrow.functions.taskCount()))
    assert w.initiator.task_config(task_id).spec_hash == h("second")
    assert w.initiator.funds_of(task_id) == (300, 0)
    assert w.initiator.token_balance(actor.address) == balance + 1_000 - 300
    assert w.initiator.credit_of(actor.address) == 0
    w.assert_solvent()


@pytest.mark.parametrize(
    ("credit", "deposit"), [(100, 300), (1_000, 300)], ids=["claim<deposit", "claim>deposit"]
)
def test_a_claim_from_inside_a_deposit_is_refused_as_a_shortfall(
    reentrant: tuple[World, Actor], credit: int, deposit: int
) -> None:
    """While createTask pulls the deposit into the distributor, the actor claims from it: the vault's
    balance moves by `deposit - credit`, so the escrow must refuse with its shortfall error (never record a
    deposit that did not arrive, never Panic)."""
    w, actor = reentrant
    escrow, distributor = w.deployment.task_escrow, w.deployment.reward_distributor
    actor.call(escrow, "createTask", w.params(num_rounds=1, reward_per_round=credit).as_tuple())
    actor.call(escrow, "cancelTask", int(w.chain.call(escrow.functions.taskCount())))
    before = books(w, actor.address)
    params = w.params(num_rounds=1, reward_per_round=deposit, spec_hash=h("inner"))
    actor.arm(distributor, "claim")
    create = actor.execute(escrow, "createTask", params.as_tuple())
    exc = mined_revert("TokenTransferShortfall", actor.sender, create, expected=deposit)
    assert exc.values["received"] == max(0, deposit - credit)
    assert books(w, actor.address) == before
    w.assert_solvent()


# ---------------------------------------------------------------------------- blacklist


@pytest.fixture
def blacklist(
    chain: ChainClient, client_for: ClientFor, compiled: dict[str, CompiledContract]
) -> tuple[Contract, World]:
    return token_world(chain, client_for, compiled, "AdversarialBlacklistToken")


def test_slashing_never_reverts_when_the_burn_address_is_blacklisted(
    blacklist: tuple[Contract, World],
) -> None:
    token, w = blacklist
    chain, p = w.chain, w.initiator
    task_id = w.setup_task(num_rounds=2)
    play_round(w, task_id, then=lambda: chain.transact(token.functions.setBlacklisted(BURN_ADDRESS, True)))
    deferred = settle_round(w, task_id)
    total = 2 * TRAINER_SLASH + VALIDATOR_SLASH
    assert sum(e["amount"] for e in deferred) == p.unburned() == total
    assert p.token_balance(BURN_ADDRESS) == 0
    w.assert_solvent()
    flush = w.deployment.stake_manager.functions.flushBurn()
    mined_revert("BurnRefused", p, flush, amount=total)
    chain.transact(token.functions.setBlacklisted(BURN_ADDRESS, False))
    p.flush_burn()
    assert (p.unburned(), p.token_balance(BURN_ADDRESS)) == (0, total)
    w.assert_solvent()


def test_a_blacklisted_account_blocks_only_its_own_payouts(blacklist: tuple[Contract, World]) -> None:
    token, w = blacklist
    chain, p = w.chain, w.initiator
    t0, t1, _ = w.trainers
    v0, _, v2 = w.validators
    staker = w.people[7]
    task_id = w.setup_task(num_rounds=1, reward_per_round=10**18 + 1)  # rounding dust: a refund
    staker.request_unstake(1_000)
    listed = (p, t0, t1, v0, v2, staker)  # the initiator, an accepted and a rejected trainer, a rewarded and
    # a slashed validator, a staker with an unbonding amount

    def blacklist_all() -> None:
        for person in listed:
            chain.transact(token.functions.setBlacklisted(person.address, True))

    play_round(w, task_id, then=blacklist_all)
    assert settle_round(w, task_id) == []  # slashes of listed stakers go to the burn address, not to them
    assert p.token_balance(BURN_ADDRESS) == 2 * TRAINER_SLASH + VALIDATOR_SLASH
    assert min(p.credit_of(t0.address), p.credit_of(v0.address), p.credit_of()) > 0  # p: the dust refund

    claim = w.deployment.reward_distributor.functions.claim()
    for person in (p, t0, v0):
        credit = person.credit_of()
        mined_revert("AccountBlacklisted", person, claim, account=person.address)
        assert person.credit_of() == credit
    w.warp_to(staker.stake_of()[3])
    withdraw = w.deployment.stake_manager.functions.withdraw()
    mined_revert("AccountBlacklisted", staker, withdraw, account=staker.address)
    assert staker.stake_of()[2] == 1_000
    v1 = w.validators[1]  # not listed: paid as usual
    credit = v1.credit_of()
    assert credit > 0
    assert v1.claim() == credit
    w.assert_solvent()

    chain.transact(token.functions.setBlacklisted(t0.address, False))
    credit, balance = t0.credit_of(), t0.token_balance()
    assert t0.claim() == credit
    assert t0.token_balance() == balance + credit
    w.assert_solvent()


def test_validator_outcomes_are_unaffected_by_the_blacklist(blacklist: tuple[Contract, World]) -> None:
    """Settlements move no tokens except slashes to the burn address, so a blacklist changes no outcome."""
    token, w = blacklist
    task_id = w.setup_task(num_rounds=1)
    play_round(w, task_id)
    for person in w.people[:9]:
        w.chain.transact(token.functions.setBlacklisted(person.address, True))
    escrow = w.deployment.task_escrow
    outcomes = [
        logs(escrow, "ValidatorSettled", w.initiator.settle_validator(task_id, 0, v.address))[0]["outcome"]
        for v in w.validators
    ]
    assert outcomes == [ValidatorOutcome.REWARDED, ValidatorOutcome.REWARDED, ValidatorOutcome.SLASHED]
    w.assert_solvent()
