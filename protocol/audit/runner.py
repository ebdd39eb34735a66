"""An audit from start to end: read the deployment's events, replay them, reconcile with the contracts'
token balances (and views, last), optionally re-verify the work from IPFS, and collect the result.

    target = open_target(rpc_url, addresses)            # no account, no transaction: read only
    result = audit(target, task=1, store=ArtifactStore(api), sample=None)
    result.discrepancies, result.verified, result.timings

The auditor's client has a throw-away account: it never signs anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eth_account import Account

from protocol.audit.discrepancy import Discrepancy
from protocol.audit.events import PROTOCOL_CONTRACTS, ChainEvent, TxCost, fetch_events, fetch_tx_costs
from protocol.audit.ledger import Ledger, reconcile
from protocol.chain import ChainClient
from protocol.contracts import DeploymentAddresses
from protocol.errors import ChainError, ConfigError

if TYPE_CHECKING:
    from web3.contract import Contract

    from protocol.audit.reverify import ArtifactSource, ReverifyResult
    from protocol.compile import CompiledContract

__all__ = ["AuditResult", "AuditTarget", "ChainReader", "audit", "check_events", "open_target"]

_ABI_NAMES = {
    "token": "TestToken",
    "stake_manager": "StakeManager",
    "reward_distributor": "RewardDistributor",
    "attestation_registry": "AttestationRegistry",
    "task_escrow": "TaskEscrow",
    "honeypot_registry": "HoneypotRegistry",
}


@dataclass(frozen=True)
class AuditTarget:
    """A deployment to audit: a read-only client and the contracts (ABIs bound to the addresses, without
    asking the contracts anything)."""

    client: ChainClient
    addresses: DeploymentAddresses
    contracts: Mapping[str, Contract]


def open_target(
    rpc_url: str,
    addresses: DeploymentAddresses,
    *,
    compiled: Mapping[str, CompiledContract] | None = None,
    timeout: float = 60.0,
) -> AuditTarget:
    """A read-only view of the deployment at `addresses` (checked against the node's chain id)."""
    if compiled is None:
        from protocol.compile import compile_contracts

        compiled = compile_contracts()
    client = ChainClient(rpc_url, Account.create(), abis=[c.abi for c in compiled.values()], timeout=timeout)
    if client.chain_id != addresses.chain_id:
        raise ConfigError(
            f"the deployment is on chain {addresses.chain_id}, the node at {rpc_url} on {client.chain_id}"
        )
    contracts = {
        role: client.contract(compiled[name], getattr(addresses, role)) for role, name in _ABI_NAMES.items()
    }
    if addresses.appeal_court is not None:
        contracts["appeal_court"] = client.contract(compiled["AppealCourt"], addresses.appeal_court)
    return AuditTarget(client, addresses, contracts)


class ChainReader:
    """Token balances and contract views at one block (what `reconcile` compares the books with)."""

    def __init__(self, target: AuditTarget, block: int) -> None:
        self.target = target
        self.block = block

    def token_balance(self, holder: str) -> int:
        """The deployment token's balanceOf(holder) at the audited block."""
        token = self.target.contracts["token"]
        return int(self.target.client.call(token.functions.balanceOf(holder), block=self.block))

    def view(self, contract: str, function: str, *args: Any) -> Any:
        """A protocol contract's view at the audited block."""
        fn = getattr(self.target.contracts[contract].functions, function)(*args)
        return self.target.client.call(fn, block=self.block)


def _block_lookups(client: ChainClient) -> tuple[Callable[[int], bytes | None], Callable[[int], int]]:
    """(a block's hash, None when the node has none; its timestamp), from one cache of the node's blocks."""
    cache: dict[int, tuple[bytes | None, int]] = {}

    def block(number: int) -> tuple[bytes | None, int]:
        if number not in cache:
            try:
                got = client.w3.eth.get_block(number)
            except Exception as exc:  # any failure of the node: the seed stays unverified, not "fine"
                raise ChainError(f"cannot read block {number}: {exc}") from None
            digest = bytes(got["hash"]) if got and got.get("hash") else None
            cache[number] = (digest, int(got["timestamp"]) if got else 0)
        return cache[number]

    return (lambda n: block(n)[0]), (lambda n: block(n)[1])


@dataclass
class AuditResult:
    """Everything an audit found and measured."""

    addresses: DeploymentAddresses
    task: int | None
    """The audited task (None: every task of the deployment)."""
    from_block: int
    to_block: int
    ledger: Ledger
    events: list[ChainEvent]
    costs: dict[str, TxCost]
    reverify: ReverifyResult | None = None
    timings: dict[str, float] = field(default_factory=dict)
    token_decimals: int = 18

    @property
    def discrepancies(self) -> list[Discrepancy]:
        """Every discrepancy in scope: the audited task's and the deployment-wide ones (balances)."""
        found = list(self.ledger.discrepancies)
        if self.reverify is not None:
            found += self.reverify.discrepancies
        if self.task is None:
            return found
        return [d for d in found if d.task in (None, self.task)]

    @property
    def verified(self) -> dict[str, int]:
        """What was checked and agreed, by category."""
        out = self.ledger.counts()
        if self.reverify is not None:
            for key, value in self.reverify.verified.items():
                out[key] = out.get(key, 0) + value
        return dict(sorted(out.items()))

    @property
    def ok(self) -> bool:
        """Whether nothing disagrees."""
        return not self.discrepancies

    def task_ids(self) -> list[int]:
        """The tasks in scope."""
        if self.task is not None:
            return [self.task] if self.task in self.ledger.tasks else []
        return sorted(self.ledger.tasks)

    def gas_by_round(self, task_id: int) -> dict[str, int]:
        """Gas used per round of a task (`setup` for creation and joins), from the receipts."""
        out: dict[str, int] = {}
        for tx, (task, round_) in self.ledger.tx_scope.items():
            cost = self.costs.get(tx)
            if task != task_id or cost is None:
                continue
            key = "setup" if round_ is None else str(round_)
            out[key] = out.get(key, 0) + cost.gas_used
        return out


def _decimals(target: AuditTarget, block: int) -> int:
    """The token's `decimals()` (18 when the token does not have it: display only)."""
    try:
        return int(target.client.call(target.contracts["token"].functions.decimals(), block=block))
    except ChainError:
        return 18


def check_events(
    target: AuditTarget,
    events: Iterable[ChainEvent],
    block: int,
    *,
    views: bool = True,
    timings: dict[str, float] | None = None,
) -> Ledger:
    """Replay `events` (every event of the deployment up to `block`, in chain order) and reconcile the books
    with the contracts' balances (and `views`) at `block`."""
    times = timings if timings is not None else {}
    t = time.perf_counter()
    blockhash, blocktime = _block_lookups(target.client)
    court = target.contracts.get("appeal_court")
    params = (
        None if court is None else tuple(int(v) for v in target.client.call(court.functions.parameters()))
    )
    ledger = Ledger.replay(events, blockhash=blockhash, blocktime=blocktime, appeal_params=params)
    times["replay_s"] = time.perf_counter() - t
    t = time.perf_counter()
    reconcile(
        ledger,
        ChainReader(target, block),
        target.addresses.model_dump(),
        evidence=f"block {block}",
        views=views,
    )
    times["reconcile_s"] = time.perf_counter() - t
    return ledger


def audit(
    target: AuditTarget,
    *,
    task: int | None = None,
    to_block: int | None = None,
    page: int = 2000,
    views: bool = True,
    gas: bool = True,
    store: ArtifactSource | None = None,
    sample: int | None = None,
    reverify_seed: int = 0,
    accuracy: bool = True,
    progress: Callable[[str], None] | None = None,
) -> AuditResult:
    """Audit the deployment (or one task of it) up to `to_block` (default: the latest block, fixed at the
    start so that balances and events describe the same moment).

    With `store`, the work is re-verified from IPFS (`protocol.audit.reverify`): every submission, or
    `sample` of them per round chosen with `reverify_seed`, and every round's aggregate."""
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    client = target.client
    latest = client.block_number()
    end = latest if to_block is None else to_block
    if end > latest:
        raise ConfigError(f"--to-block {end} is beyond the latest block {latest}")
    first = target.addresses.block
    say(f"reading events of blocks {first}..{end}")
    roles = (
        (*PROTOCOL_CONTRACTS, "appeal_court") if "appeal_court" in target.contracts else PROTOCOL_CONTRACTS
    )
    protocol_contracts = {role: target.contracts[role] for role in roles}
    t = time.perf_counter()
    events = fetch_events(client, protocol_contracts, first, end, page=page)
    timings["fetch_events_s"] = time.perf_counter() - t

    ledger = check_events(target, events, end, views=views, timings=timings)
    if task is not None and task not in ledger.tasks:
        raise ConfigError(f"task {task} has no TaskCreated event in blocks {first}..{end}")

    costs: dict[str, TxCost] = {}
    if gas:
        t = time.perf_counter()
        costs = fetch_tx_costs(client, (e.tx_hash for e in events))
        timings["receipts_s"] = time.perf_counter() - t
        for tx, (task_id, round_) in ledger.tx_scope.items():
            if task_id is not None and round_ is not None and tx in costs:
                record = ledger.tasks.get(task_id)
                if record is not None and round_ in record.rounds:
                    record.rounds[round_].gas_used += costs[tx].gas_used

    result = AuditResult(
        target.addresses,
        task,
        first,
        end,
        ledger,
        events,
        costs,
        timings=timings,
        token_decimals=_decimals(target, end),
    )
    if store is not None:
        from protocol.audit.reverify import reverify

        t = time.perf_counter()
        result.reverify = reverify(
            ledger,
            store,
            tasks=result.task_ids(),
            sample=sample,
            seed=reverify_seed,
            chain_id=target.addresses.chain_id,
            escrow=target.addresses.task_escrow,
            progress=say,
        )
        timings["reverify_s"] = time.perf_counter() - t
    timings["audit_wall_s"] = time.perf_counter() - start
    return result
