"""The auditor's only source of truth on chain: the deployment's event logs, and the receipts (gas) of the
transactions that emitted them.

`fetch_events` asks the node for the logs of the four protocol contracts with ONE `eth_getLogs` per page
of blocks (all four addresses at once), instead of one query per event kind and contract (about thirty),
and decodes each log by its address and topic with the contract's ABI. A node that refuses a page as too
large gets smaller pages. Events come back as plain Python values (`bytes`, `int`, checksum `str`) in chain
order, (block, logIndex).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.abi import event_abi_to_log_topic
from hexbytes import HexBytes
from web3.exceptions import Web3Exception, Web3RPCError

from protocol.errors import ChainError, ConfigError

if TYPE_CHECKING:
    from web3.contract import Contract

    from protocol.chain import ChainClient

__all__ = ["PROTOCOL_CONTRACTS", "ChainEvent", "TxCost", "fetch_events", "fetch_tx_costs"]

PROTOCOL_CONTRACTS = (
    "stake_manager",
    "reward_distributor",
    "attestation_registry",
    "task_escrow",
    "honeypot_registry",
)
"""The contracts whose events make the history (the token's are not needed)."""

_REFUSED = ("range", "too many", "limit", "exceed", "too large", "response size")


@dataclass(frozen=True)
class ChainEvent:
    """One decoded log: which contract (`task_escrow`, ...), which event, where, and its arguments."""

    contract: str
    name: str
    block: int
    log_index: int
    tx_hash: str
    args: Mapping[str, Any]

    @property
    def position(self) -> tuple[int, int]:
        """(block, logIndex): the chain order."""
        return (self.block, self.log_index)


@dataclass(frozen=True)
class TxCost:
    """What one transaction cost: gas used, and the fee paid in wei."""

    tx_hash: str
    block: int
    sender: str
    gas_used: int
    fee_wei: int
    status: int


def _plain(value: Any) -> Any:
    """web3's decoded values as plain Python: AttributeDict -> dict, HexBytes -> bytes, tuples -> lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _topic_map(contracts: Mapping[str, Contract]) -> dict[tuple[str, bytes], tuple[str, str, Contract]]:
    out: dict[tuple[str, bytes], tuple[str, str, Contract]] = {}
    for role, contract in contracts.items():
        for entry in contract.abi:
            item: dict[str, Any] = dict(entry)
            if item.get("type") == "event" and not item.get("anonymous", False):
                topic = bytes(event_abi_to_log_topic(item))  # type: ignore[arg-type]
                out[(str(contract.address).lower(), topic)] = (role, str(item["name"]), contract)
    return out


def _hex(value: Any) -> str:
    return "0x" + bytes(HexBytes(value)).hex()


def fetch_events(
    client: ChainClient,
    contracts: Mapping[str, Contract],
    from_block: int,
    to_block: int,
    *,
    page: int = 2000,
) -> list[ChainEvent]:
    """Every event of `contracts` (role name -> web3 contract) in blocks [from_block, to_block], decoded,
    in chain order. Logs of those addresses that match no known event are refused (`ChainError`): the
    auditor must not silently skip history it cannot read."""
    if page < 1:
        raise ConfigError(f"page must be >= 1, got {page}")
    if from_block < 0 or to_block < from_block:
        raise ConfigError(f"bad block range [{from_block}, {to_block}]")
    topics = _topic_map(contracts)
    addresses = [c.address for c in contracts.values()]
    out: list[ChainEvent] = []
    start, size = from_block, page
    while start <= to_block:
        stop = min(to_block, start + size - 1)
        try:
            logs = client.w3.eth.get_logs({"address": addresses, "fromBlock": start, "toBlock": stop})
        except Web3RPCError as exc:
            if size > 1 and any(m in str(exc).lower() for m in _REFUSED):
                size = max(1, size // 2)
                continue
            raise ChainError(f"eth_getLogs [{start}, {stop}] failed: {exc}") from None
        except (OSError, Web3Exception) as exc:
            raise ChainError(f"eth_getLogs [{start}, {stop}] at {client.rpc_url} failed: {exc}") from None
        for log in logs:
            if not log["topics"]:
                continue
            key = (str(log["address"]).lower(), bytes(log["topics"][0]))
            known = topics.get(key)
            if known is None:
                raise ChainError(
                    f"log {log['logIndex']} of block {log['blockNumber']} from {log['address']} has an "
                    f"unknown topic {_hex(log['topics'][0])}: the ABIs do not match the deployment"
                )
            role, name, contract = known
            decoded = contract.events[name]().process_log(log)
            out.append(
                ChainEvent(
                    contract=role,
                    name=name,
                    block=int(log["blockNumber"]),
                    log_index=int(log["logIndex"]),
                    tx_hash=_hex(log["transactionHash"]),
                    args=_plain(dict(decoded["args"])),
                )
            )
        start = stop + 1
    out.sort(key=lambda e: e.position)
    return out


def fetch_tx_costs(client: ChainClient, tx_hashes: Iterable[str], *, batch: int = 100) -> dict[str, TxCost]:
    """The receipt of every transaction (batched JSON-RPC requests of `batch` receipts)."""
    unique = list(dict.fromkeys(tx_hashes))
    out: dict[str, TxCost] = {}
    for first in range(0, len(unique), batch):
        chunk: Sequence[str] = unique[first : first + batch]
        try:
            with client.w3.batch_requests() as requests:
                for tx in chunk:
                    requests.add(client.w3.eth.get_transaction_receipt(tx))  # type: ignore[arg-type]
                receipts = requests.execute()
        except (OSError, Web3Exception) as exc:
            raise ChainError(f"fetching {len(chunk)} receipts from {client.rpc_url} failed: {exc}") from None
        for tx, raw in zip(chunk, receipts, strict=True):
            receipt: Mapping[str, Any] = raw
            if not isinstance(receipt, Mapping) or "gasUsed" not in receipt:
                raise ChainError(f"no receipt for transaction {tx}: {receipt!r}"[:300])
            gas = int(receipt["gasUsed"])
            price = int(receipt.get("effectiveGasPrice", 0) or 0)
            out[tx] = TxCost(
                tx_hash=tx,
                block=int(receipt["blockNumber"]),
                sender=str(receipt["from"]),
                gas_used=gas,
                fee_wei=gas * price,
                status=int(receipt["status"]),
            )
    return out
