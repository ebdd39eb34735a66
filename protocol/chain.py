"""Chain access for every role: deploy, call and transact with clear errors.

`ChainClient` wraps a web3.py HTTP connection and one local signing account:

* transactions are built, signed locally (eth-account) and sent raw; the nonce is kept locally per
  (RPC URL, address) for the whole process, so several clients and threads of one process can use
  the same account, and it is re-read from the node after a nonce error or an `evm_revert`;
* every request has short timeouts and is retried on a new connection under the one retry policy of
  `protocol.retry` (connection refused or reset, timeouts, HTTP 429/5xx, rate limits); an operator's
  fallback endpoints are tried in turn after a failure; when the policy gives up the error is
  `ChainError("RPC at URL unreachable ...")`, within seconds on a dead endpoint;
* reverts (at gas estimation, in `call`, or in a mined transaction with status 0) become
  `ContractRevert(name, {arg: value})`, decoded with the custom errors of every ABI the client knows
  plus `Error(string)` and `Panic(uint256)`. The revert data of a mined transaction comes from
  `debug_traceTransaction` (call tracer: the data it really reverted with, in its own block after the
  transactions before it); a node without debug APIs gets an eth_call replay on the parent block with
  the mined block's number and timestamp as block overrides, and one without those a plain replay
  (which can miss a revert that depends on the block or on earlier transactions of the same block).

It also carries the test helpers of a dev node (anvil): time travel, mining, snapshots.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union, cast
from urllib.parse import urlparse

import requests
from eth_abi.abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import URI, ChecksumAddress
from eth_utils.abi import abi_to_signature, function_signature_to_4byte_selector, get_abi_input_types
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import (
    ContractLogicError,
    TimeExhausted,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)
from web3.types import BlockIdentifier, EventData, TxParams, TxReceipt

from protocol.errors import ChainError, ConfigError, ContractRevert
from protocol.retry import DEFAULT_POLICY, RetryPolicy, current_deadline

if TYPE_CHECKING:
    from protocol.compile import CompiledContract

__all__ = [
    "ChainClient",
    "RevertDecoder",
    "keystore_exists_message",
    "load_keystore_account",
    "save_keystore_account",
]

T = TypeVar("T")
Transactable = ContractFunction | ContractConstructor
AbiLike = Union["CompiledContract", Sequence[dict[str, Any]]]

ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)
PANIC_REASONS = {
    0x00: "generic compiler panic",
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "invalid storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialized function",
}
_NONCE_ERRORS = (
    "nonce too low",
    "nonce too high",
    "invalid nonce",
    "replacement transaction underpriced",
    "already known",
    "known transaction",
)
_TRANSIENT_MESSAGES = ("rate limit", "too many requests", "timeout", "temporarily unavailable")


def _abi_of(source: AbiLike) -> list[dict[str, Any]]:
    abi = getattr(source, "abi", source)
    if not isinstance(abi, list | tuple):
        raise ConfigError(
            f"expected an ABI (a list of entries) or a CompiledContract, got {type(source).__name__}"
        )
    return list(abi)


def _normalize(value: Any, abi_type: str) -> Any:
    """Addresses as checksum strings, bytes as HexBytes, arrays element-wise; the rest as decoded."""
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return HexBytes(value)  # a bytes subclass that prints as 0x-hex
    if abi_type.endswith("]") and isinstance(value, list | tuple):
        inner = abi_type[: abi_type.rfind("[")]
        return tuple(_normalize(v, inner) for v in value)
    return value


@dataclass(frozen=True)
class _ErrorAbi:
    name: str
    signature: str
    types: tuple[str, ...]
    names: tuple[str, ...]


class RevertDecoder:
    """Maps revert data to `ContractRevert` using the custom errors of every registered ABI."""

    def __init__(self) -> None:
        self._errors: dict[bytes, _ErrorAbi] = {}
        self._lock = threading.Lock()

    def register(self, abi: Sequence[dict[str, Any]]) -> None:
        """Learn the custom errors declared in `abi` (duplicates across ABIs are fine)."""
        with self._lock:
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                signature = abi_to_signature(entry)  # type: ignore[arg-type]
                selector = function_signature_to_4byte_selector(signature)
                types = tuple(get_abi_input_types(entry))  # type: ignore[arg-type]
                names = tuple(
                    str(inp.get("name") or f"arg{i}") for i, inp in enumerate(entry.get("inputs", []))
                )
                self._errors.setdefault(selector, _ErrorAbi(str(entry["name"]), signature, types, names))

    def known(self) -> list[str]:
        """Signatures of the custom errors the decoder knows, sorted."""
        return sorted(e.signature for e in self._errors.values())

    def decode(self, data: bytes, tx: str | None = None) -> ContractRevert:
        """Turn raw revert data into a `ContractRevert` (never raises)."""
        data = bytes(data)
        selector, body = data[:4], data[4:]
        try:
            if selector == ERROR_SELECTOR:
                (message,) = abi_decode(["string"], body)
                return ContractRevert("Error", {"message": message}, tx=tx, raw=data)
            if selector == PANIC_SELECTOR:
                (code,) = abi_decode(["uint256"], body)
                reason = PANIC_REASONS.get(code, "unknown panic code")
                return ContractRevert("Panic", {"code": code, "reason": reason}, tx=tx, raw=data)
            known = self._errors.get(selector) if len(data) >= 4 else None
            if known is not None:
                values = abi_decode(list(known.types), body)
                args = {n: _normalize(v, t) for n, t, v in zip(known.names, known.types, values, strict=True)}
                return ContractRevert(known.name, args, tx=tx, raw=data)
        except (DecodingError, ValueError, TypeError, OverflowError):
            pass  # malformed revert data: report it raw below
        return ContractRevert("UnknownError", {"data": "0x" + data.hex()}, tx=tx, raw=data)


def _revert_data(exc: BaseException) -> bytes | None:
    """The revert data carried by a web3 exception, or None when it is not a revert."""
    if isinstance(exc, ContractLogicError):
        data = exc.data
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(data, str):
            try:
                return bytes(HexBytes(data))
            except ValueError:
                return b""
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        return b""
    if isinstance(exc, Web3RPCError):
        error = cast(dict[str, Any], (exc.rpc_response or {}).get("error") or {})
        message = str(error.get("message", "")).lower()
        if "revert" in message:
            raw = error.get("data")
            if isinstance(raw, dict):
                raw = raw.get("data")
            try:
                return bytes(HexBytes(raw)) if isinstance(raw, str) else b""
            except ValueError:
                return b""
    return None


def _rpc_error_revert_data(error: Any) -> bytes | None:
    """The revert data in a JSON-RPC error object (`{"code", "message", "data"}`), or None when the
    error is not a revert (invalid parameters, an unknown method, ...)."""
    if not isinstance(error, dict):
        return None
    raw = error.get("data")
    if isinstance(raw, dict):
        raw = raw.get("data")
    if isinstance(raw, str) and raw.lower().startswith("reverted "):  # Nethermind: "Reverted 0x..."
        raw = raw[len("reverted ") :]
    message = str(error.get("message", "")).lower()
    carries_data = isinstance(raw, str) and raw.startswith("0x") and len(raw) > 2
    if "revert" not in message and error.get("code") != 3 and not carries_data:
        return None
    try:
        return bytes(HexBytes(raw)) if isinstance(raw, str) else b""
    except ValueError:
        return b""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(
        exc,
        requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | requests.exceptions.ChunkedEncodingError  # the connection dropped in the middle of the answer
        | json.JSONDecodeError  # an answer cut short (in its headers, the body is empty) or garbled
        | TimeoutError,
    ):
        return True
    if isinstance(exc, requests.exceptions.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    if isinstance(exc, Web3RPCError):
        return any(m in str(exc).lower() for m in _TRANSIENT_MESSAGES)
    return False


def _is_nonce_error(exc: BaseException) -> bool:
    return isinstance(exc, Web3RPCError | ValueError) and any(m in str(exc).lower() for m in _NONCE_ERRORS)


class _NonceBook:
    """Next nonce per (RPC URL, address), shared by every client of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._next: dict[tuple[str, str], int] = {}

    def lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def take(self, key: tuple[str, str], fetch: Callable[[], int]) -> int:
        """Reserve the next nonce (caller holds `lock(key)`); reads the node when unknown."""
        nonce = self._next.get(key)
        if nonce is None:
            nonce = fetch()
        self._next[key] = nonce + 1
        return nonce

    def forget(self, key: tuple[str, str]) -> None:
        self._next.pop(key, None)

    def forget_url(self, url: str) -> None:
        for key in [k for k in self._next if k[0] == url]:
            self._next.pop(key, None)


_NONCES = _NonceBook()


class _FailoverProvider(HTTPProvider):
    """An HTTP provider over several endpoints of one chain: requests go to the current one; `switch()`
    moves to the next (after a transient failure)."""

    def __init__(self, urls: Sequence[str], request_kwargs: dict[str, Any]) -> None:
        super().__init__(urls[0], request_kwargs=request_kwargs, exception_retry_configuration=None)
        self.urls = list(urls)
        self.current = 0

    def switch(self) -> None:
        """Send the next requests to the next endpoint (round robin)."""
        if len(self.urls) > 1:
            self.current = (self.current + 1) % len(self.urls)
            self.endpoint_uri = URI(self.urls[self.current])


class ChainClient:
    """One account on one chain; see the module docstring.

    `account`: a `LocalAccount` or a 0x private key. `abis`: ABIs whose custom errors to decode
    (more via `register_abi`). `fallbacks`: more RPC URLs of the same chain, used in turn when a request
    to the current one fails. `policy`: timeouts and retries of each request (`protocol.retry`; `retries`
    overrides its attempts). `timeout`: seconds to wait for a receipt (the innermost
    `protocol.retry.deadline` cuts it shorter).
    """

    estimate_block: BlockIdentifier = "pending"
    """The block gas estimates run on (see `estimate_gas`)."""

    def __init__(
        self,
        rpc_url: str,
        account: LocalAccount | str,
        *,
        abis: Iterable[Sequence[dict[str, Any]]] = (),
        timeout: float = 60,
        retries: int | None = None,
        gas_margin: float = 1.2,
        decoder: RevertDecoder | None = None,
        fallbacks: Sequence[str] = (),
        policy: RetryPolicy | None = None,
    ) -> None:
        self.rpc_url = rpc_url
        self.fallbacks = tuple(u for u in fallbacks if u != rpc_url)
        self.account: LocalAccount = _as_account(account)
        self.timeout = float(timeout)
        self.policy = (policy or DEFAULT_POLICY).with_(attempts=retries)
        self.gas_margin = gas_margin
        self.decoder = decoder or RevertDecoder()
        # The policy retries (bounded, so a dead URL fails fast); the provider must not.
        request_kwargs: dict[str, Any] = {"timeout": (self.policy.connect_timeout, self.policy.read_timeout)}
        urls = (rpc_url, *self.fallbacks)
        if all(urlparse(u).hostname in ("127.0.0.1", "localhost", "::1") for u in urls):
            request_kwargs["proxies"] = {"http": None, "https": None}  # never via an HTTP(S)_PROXY
        self._provider = _FailoverProvider(urls, request_kwargs)
        self.w3 = Web3(self._provider)
        self._chain_id: int | None = None
        self._fees: tuple[float, dict[str, int]] | None = None
        for abi in abis:
            self.register_abi(abi)

    @property
    def retries(self) -> int:
        """Tries per request (the policy's attempts)."""
        return self.policy.attempts

    @property
    def endpoint(self) -> str:
        """The RPC URL requests go to now (the primary or a fallback)."""
        return str(self._provider.endpoint_uri)

    # ------------------------------------------------------------------ basics
    @property
    def address(self) -> ChecksumAddress:
        """The checksum address of the client's account."""
        return self.account.address

    @property
    def chain_id(self) -> int:
        """The chain id (read once)."""
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id))
        return self._chain_id

    def with_account(self, account: LocalAccount | str) -> ChainClient:
        """A client for another account on the same node sharing this one's known ABIs."""
        return ChainClient(
            self.rpc_url,
            account,
            timeout=self.timeout,
            gas_margin=self.gas_margin,
            decoder=self.decoder,
            fallbacks=self.fallbacks,
            policy=self.policy,
        )

    def register_abi(self, abi: AbiLike) -> None:
        """Make the custom errors of `abi` (or a CompiledContract) decodable in reverts."""
        self.decoder.register(_abi_of(abi))

    def _rpc(self, fn: Callable[[], T], what: str = "request") -> T:
        """Run one RPC interaction under the retry policy (switching endpoints after a failure)."""
        tries = 0

        def attempt() -> T:
            nonlocal tries
            tries += 1
            return fn()

        try:
            return self.policy.call(
                attempt, transient=_is_transient, on_retry=lambda e, n: self._provider.switch()
            )
        except Exception as exc:
            if not _is_transient(exc):
                raise
            self._provider.switch()  # the next request starts on another endpoint
            where = ", ".join((self.rpc_url, *self.fallbacks))
            raise ChainError(
                f"RPC at {where} unreachable ({what} failed {tries} times; last error: "
                f"{type(exc).__name__}: {exc})"
            ) from None

    def _make_request(self, method: str, params: list[Any]) -> Any:
        response = self._rpc(lambda: self.w3.provider.make_request(method, params), method)  # type: ignore[arg-type]
        if "error" in response:
            raise ChainError(f"{method} failed at {self.rpc_url}: {response['error']}")
        return response.get("result")

    # ------------------------------------------------------------------ contracts
    def contract(self, compiled_or_abi: AbiLike, address: str) -> Contract:
        """A contract object at `address`; its ABI's errors become decodable."""
        abi = _abi_of(compiled_or_abi)
        self.decoder.register(abi)
        try:
            checksum = to_checksum_address(address)
        except (ValueError, TypeError):
            raise ConfigError(f"not an address: {address!r}") from None
        return self.w3.eth.contract(address=checksum, abi=abi)

    def deploy(
        self, compiled: CompiledContract, *args: Any, value: int = 0, gas: int | None = None
    ) -> Contract:
        """Deploy `compiled` with constructor `args` and return the contract object."""
        if not compiled.deployable:
            raise ChainError(f"{compiled.name} has no bytecode (an interface or abstract contract)")
        if compiled.unlinked:
            raise ChainError(f"{compiled.name} links to a library: deploy it and use `compiled.linked(...)`")
        self.decoder.register(compiled.abi)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        receipt = self.transact(factory.constructor(*args), value=value, gas=gas)
        address = receipt.get("contractAddress")
        if not address:
            tx_id = receipt["transactionHash"].to_0x_hex()
            raise ChainError(f"deploying {compiled.name} gave no contract address (tx {tx_id})")
        return self.w3.eth.contract(address=address, abi=compiled.abi)

    # ------------------------------------------------------------------ calls and transactions
    def call(self, fn: ContractFunction, *, value: int = 0, block: int | str = "latest") -> Any:
        """eth_call `fn` from this account; reverts raise `ContractRevert`."""
        params: TxParams = {"from": self.account.address, "value": value}  # type: ignore[typeddict-item]
        try:
            return self._rpc(lambda: fn.call(params, block_identifier=block), f"eth_call {fn.fn_name}")  # type: ignore[arg-type]
        except Web3Exception as exc:
            data = _revert_data(exc)
            if data is None:
                raise ChainError(f"eth_call {fn.fn_name} failed: {exc}") from None
            raise self.decoder.decode(data) from None

    def estimate_gas(self, fn: Transactable, *, value: int = 0) -> int:
        """Gas `fn` needs from this account; reverts raise `ContractRevert`.

        The estimate runs on the pending state (the node's mempool applied to the latest block), so a
        transaction that someone else's pending one already makes pointless (a seed drawn, a submission
        settled) reverts here and is never sent; a node without a pending state is asked on the latest."""
        params: TxParams = {"from": self.account.address, "value": value}  # type: ignore[typeddict-item]
        what = f"eth_estimateGas {_fn_name(fn)}"
        try:
            try:
                return int(
                    self._rpc(lambda: fn.estimate_gas(params, block_identifier=self.estimate_block), what)
                )
            except Web3Exception as exc:
                if _revert_data(exc) is not None:
                    raise
                return int(self._rpc(lambda: fn.estimate_gas(params), what))
        except Web3Exception as exc:
            data = _revert_data(exc)
            if data is None:
                raise ChainError(f"estimating gas for {_fn_name(fn)} failed: {exc}") from None
            raise self.decoder.decode(data) from None

    def _fee_params(self) -> dict[str, int]:
        # Fees change slowly; re-reading them for every transaction would double the RPC traffic.
        now = time.monotonic()
        if self._fees is not None and now - self._fees[0] < 2.0:
            return self._fees[1]
        block = self._rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base = block.get("baseFeePerGas")
        if base is None:
            fees = {"gasPrice": int(self._rpc(lambda: self.w3.eth.gas_price, "eth_gasPrice"))}
        else:
            tip = int(self._rpc(lambda: self.w3.eth.max_priority_fee, "eth_maxPriorityFeePerGas"))
            fees = {"maxFeePerGas": 2 * int(base) + tip, "maxPriorityFeePerGas": tip}
        self._fees = (now, fees)
        return fees

    def send(self, fn: Transactable, *, value: int = 0, gas: int | None = None) -> HexBytes:
        """Sign and send `fn` without waiting; returns the transaction hash.

        Without `gas`, the gas is estimated first, so a revert raises `ContractRevert` before
        anything is sent. With `gas`, the transaction is sent as is (and may be mined reverted).
        """
        if gas is None:
            gas = int(self.estimate_gas(fn, value=value) * self.gas_margin) + 10_000
        fixed: dict[str, Any] = {"from": self.account.address, "value": value, "gas": gas}

        def build(nonce: int, fees: dict[str, int]) -> dict[str, Any]:
            params = cast(TxParams, {**fixed, **fees, "chainId": self.chain_id, "nonce": nonce})
            return dict(fn.build_transaction(params))

        return self._sign_and_send(build, _fn_name(fn))

    def _sign_and_send(self, build: Callable[[int, dict[str, int]], dict[str, Any]], what: str) -> HexBytes:
        """Reserve a nonce, build with it, sign and send; one rebuild after a nonce error."""
        key = (self.rpc_url, self.address)
        _ = self.chain_id  # read (and cache) before taking the nonce lock
        for attempt in range(2):
            fees = self._fee_params()
            with _NONCES.lock(key):
                nonce = _NONCES.take(key, self._pending_nonce)
                try:
                    signed = self.account.sign_transaction(cast(Any, build(nonce, fees)))
                    return self._send_raw(bytes(signed.raw_transaction), HexBytes(signed.hash))
                except Exception as exc:
                    # The nonce may or may not be used now: read it from the node next time.
                    _NONCES.forget(key)
                    if _is_nonce_error(exc) and attempt == 0:
                        continue
                    if isinstance(exc, ChainError):
                        raise
                    raise ChainError(f"sending {what} from {self.address} failed: {exc}") from None
        raise AssertionError("unreachable")

    def _pending_nonce(self) -> int:
        count = self._rpc(
            lambda: self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "eth_getTransactionCount",
        )
        return int(count)

    def _send_raw(self, raw: bytes, tx_hash: HexBytes) -> HexBytes:
        try:
            sent = self._rpc(lambda: self.w3.eth.send_raw_transaction(raw), "eth_sendRawTransaction")
            return HexBytes(sent)
        except Web3RPCError as exc:
            # A retried send whose first attempt did reach the node: the transaction is there
            # (pending: "already known"; mined: "nonce too low"). Sending it again would not help.
            message = str(exc).lower()
            if "already known" in message or "known transaction" in message:
                return tx_hash
            if "nonce too low" in message and self._known(tx_hash):
                return tx_hash
            raise

    def _known(self, tx_hash: HexBytes) -> bool:
        try:
            self._rpc(lambda: self.w3.eth.get_transaction(tx_hash), "eth_getTransactionByHash")
        except TransactionNotFound:
            return False
        return True

    def wait(self, tx_hash: HexBytes | str, *, check: bool = True) -> TxReceipt:
        """Wait for the receipt of `tx_hash`; with `check`, a reverted transaction raises
        `ContractRevert` (its revert data traced, or replayed where the node cannot trace: see
        `explain_failure`).

        It waits `timeout` seconds, or until the innermost `protocol.retry.deadline` if that is sooner,
        polling through RPC outages (the transaction was sent: sending it again would only revert)."""
        tx_hash = HexBytes(tx_hash)
        limit = time.monotonic() + self.timeout
        outer = current_deadline()
        if outer is not None:
            limit = min(limit, outer)
        poll = 0.005
        while True:
            try:
                receipt = self._rpc(
                    lambda: self.w3.eth.get_transaction_receipt(tx_hash), "eth_getTransactionReceipt"
                )
                break
            except (TransactionNotFound, TimeExhausted, ChainError) as exc:
                if time.monotonic() > limit:
                    if isinstance(exc, ChainError):
                        raise
                    raise ChainError(
                        f"transaction {tx_hash.to_0x_hex()} not mined within {self.timeout:.0f} s "
                        f"at {self.endpoint}"
                    ) from None
                time.sleep(poll)
                poll = min(poll * 2, 0.5)
        if check and receipt["status"] != 1:
            raise self.explain_failure(tx_hash, receipt)
        return receipt

    def transact(self, fn: Transactable, *, value: int = 0, gas: int | None = None) -> TxReceipt:
        """Send `fn` from this account and wait for it; reverts raise `ContractRevert`."""
        return self.wait(self.send(fn, value=value, gas=gas))

    def transfer(self, to: str, value: int) -> TxReceipt:
        """Send `value` wei to `to` and wait for it."""
        try:
            recipient = to_checksum_address(to)
        except (ValueError, TypeError):
            raise ConfigError(f"not an address: {to!r}") from None

        def build(nonce: int, fees: dict[str, int]) -> dict[str, Any]:
            return {
                "to": recipient,
                "value": value,
                "gas": 21_000,
                "nonce": nonce,
                "chainId": self.chain_id,
                **fees,
            }

        return self.wait(self._sign_and_send(build, "a transfer"))

    def balance(self, address: str | None = None) -> int:
        """Ether balance in wei of `address` (default: this account)."""
        who = to_checksum_address(address or self.address)
        return int(self._rpc(lambda: self.w3.eth.get_balance(who), "eth_getBalance"))

    def explain_failure(self, tx_hash: HexBytes | str, receipt: TxReceipt | None = None) -> ChainError:
        """Why the mined transaction `tx_hash` failed: a decoded `ContractRevert` (with `tx` set), or a
        `ChainError` when it ran out of gas.

        The revert data is the one the transaction really reverted with, from `debug_traceTransaction`
        (call tracer, top call only). Where the node has no debug APIs (most public RPCs), the
        transaction is replayed with eth_call on the parent block, with the mined block's number and
        timestamp as block overrides (plain where the node refuses those): a replay sees neither the
        transactions mined before it in the same block nor, without overrides, its block's time."""
        tx_hash = HexBytes(tx_hash)
        tx_id = tx_hash.to_0x_hex()
        if receipt is None:
            receipt = self.wait(tx_hash, check=False)
        tx = self._rpc(lambda: self.w3.eth.get_transaction(tx_hash), "eth_getTransactionByHash")
        out_of_gas = ChainError(f"transaction {tx_id} ran out of gas ({tx['gas']} gas)")
        traced = self._trace_top_call(tx_id)
        if traced is not None:
            error, output = traced
            if output or "revert" in error.lower():
                return self.decoder.decode(output, tx=tx_id)
            if "out of gas" in error.lower():
                return out_of_gas
            if error:  # an invalid opcode, a stack error, ...: no revert data to decode
                return ContractRevert("UnknownError", {"data": "0x", "error": error}, tx=tx_id)
        data = self._replay_revert_data(tx, receipt)
        if data is not None:
            return self.decoder.decode(data, tx=tx_id)
        if receipt["gasUsed"] >= tx["gas"]:
            return out_of_gas
        return ContractRevert("UnknownError", {"data": "0x"}, tx=tx_id)

    def _trace_top_call(self, tx_id: str) -> tuple[str, bytes] | None:
        """(error, output) of the transaction's top call from the node's call tracer, or None when the
        node cannot trace it (no debug namespace, no call tracer, pruned state) or the trace shows no
        failure."""
        config = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}
        try:
            response = self._rpc(
                lambda: self.w3.provider.make_request(
                    "debug_traceTransaction",  # type: ignore[arg-type]
                    [tx_id, config],
                ),
                "debug_traceTransaction",
            )
        except (ChainError, Web3Exception, requests.exceptions.RequestException, ValueError):
            return None  # e.g. HTTP 403/405 from a provider that blocks debug_*: replay instead
        result = response.get("result") if isinstance(response, dict) else None
        if not isinstance(result, dict):
            return None
        error = str(result.get("error") or "")
        raw = result.get("output")
        try:
            output = bytes(HexBytes(raw)) if isinstance(raw, str) and raw not in ("", "0x") else b""
        except ValueError:
            output = b""
        if not error:  # the top call did not fail: its output is a return value, not revert data
            return None
        return error, output

    def _replay_revert_data(self, tx: Any, receipt: TxReceipt) -> bytes | None:
        """The revert data of `tx` replayed with eth_call on its parent block (first with the mined
        block's number and timestamp as block overrides, then without them if the node refuses them);
        None when the replay does not revert or fails without revert data (e.g. out of gas)."""
        call: dict[str, Any] = {
            "from": tx["from"],
            "data": HexBytes(tx["input"]).to_0x_hex(),
            "value": hex(tx["value"]),
            "gas": hex(tx["gas"]),
        }
        if tx.get("to"):
            call["to"] = tx["to"]
        mined = receipt["blockNumber"]
        parent = hex(max(0, mined - 1))
        try:
            block = self._rpc(lambda: self.w3.eth.get_block(mined), "eth_getBlockByNumber")
            overrides: dict[str, str] | None = {"number": hex(mined), "time": hex(int(block["timestamp"]))}
        except (Web3Exception, KeyError):
            overrides = None
        attempts: list[list[Any]] = [[call, parent, None, overrides]] if overrides else []
        attempts.append([call, parent])
        for params in attempts:
            response = self._rpc(
                lambda p=params: self.w3.provider.make_request("eth_call", p),  # type: ignore[misc,arg-type]
                "eth_call",
            )
            error = response.get("error")
            if not error:
                return None  # the replay went through: the revert depended on what it cannot see
            data = _rpc_error_revert_data(error)
            if data is not None:
                return data
            # Not a revert: the node refused the block overrides (or the call), or the replay ran out of
            # gas too; try without them.
        return None  # no revert data: the caller tells an out-of-gas from an unknown failure

    # ------------------------------------------------------------------ events
    def get_logs(
        self,
        contract: Contract,
        event_name: str,
        from_block: int,
        to_block: int | None = None,
        page: int = 2000,
        **filters: Any,
    ) -> list[EventData]:
        """Decoded `event_name` events of `contract` in blocks [from_block, to_block] (default:
        the latest block), in chain order, fetched in pages of `page` blocks. Keyword filters match
        event arguments. A node that refuses a page as too large gets smaller pages."""
        try:
            event = contract.events[event_name]
        except (KeyError, AttributeError, Web3Exception):
            raise ConfigError(f"contract has no event {event_name!r}") from None
        if page < 1:
            raise ConfigError(f"page must be >= 1, got {page}")
        end = self.block_number() if to_block is None else to_block
        out: list[EventData] = []
        start, size = from_block, page
        while start <= end:
            stop = min(end, start + size - 1)
            try:
                logs = self._rpc(
                    lambda a=start, b=stop: list(  # type: ignore[misc]
                        event.get_logs(argument_filters=filters or None, from_block=a, to_block=b)
                    ),
                    "eth_getLogs",
                )
            except Web3RPCError as exc:
                if size > 1 and any(m in str(exc).lower() for m in ("range", "too many", "limit", "exceed")):
                    size = max(1, size // 2)
                    continue
                raise ChainError(f"eth_getLogs {event_name} [{start}, {stop}] failed: {exc}") from None
            out.extend(sorted(logs, key=lambda e: (e["blockNumber"], e["logIndex"])))
            start = stop + 1
        return out

    # ------------------------------------------------------------------ node state and dev helpers
    def block_number(self) -> int:
        """The latest block number."""
        return int(self._rpc(lambda: self.w3.eth.block_number, "eth_blockNumber"))

    def timestamp(self) -> int:
        """The latest block's timestamp."""
        return int(self._rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")["timestamp"])

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        return int(self._rpc(lambda: self.w3.eth.get_block(number), "eth_getBlockByNumber")["timestamp"])

    def increase_time(self, seconds: int) -> None:
        """Move the dev node's clock forward by `seconds` and mine a block with the new time."""
        self._make_request("evm_increaseTime", [int(seconds)])
        self.mine(1)

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Give the dev node's next block this timestamp (nothing is mined now)."""
        self._make_request("evm_setNextBlockTimestamp", [int(timestamp)])

    def mine(self, blocks: int = 1) -> None:
        """Mine `blocks` blocks on the dev node."""
        self._make_request("anvil_mine", [hex(int(blocks))])

    def snapshot(self) -> str:
        """Snapshot the dev node's state; returns the id for `revert`."""
        return str(self._make_request("evm_snapshot", []))

    def revert(self, snapshot_id: str) -> None:
        """Restore a snapshot (anvil deletes it: take a new one to revert again).

        Nonces of every client of this process on this node are re-read afterwards.
        """
        ok = self._make_request("evm_revert", [snapshot_id])
        _NONCES.forget_url(self.rpc_url)
        self._fees = None
        if not ok:
            raise ChainError(f"evm_revert({snapshot_id}) failed: unknown snapshot id")


def _as_account(account: LocalAccount | str) -> LocalAccount:
    if not isinstance(account, str):
        return account
    try:
        return Account.from_key(account)
    except (ValueError, TypeError):
        raise ConfigError("invalid private key (expected 32 bytes as 0x-hex)") from None


def _fn_name(fn: Transactable) -> str:
    return str(getattr(fn, "fn_name", None) or "constructor")


def load_keystore_account(path: str | Path, password: str) -> LocalAccount:
    """Decrypt an Ethereum JSON keystore (V3) file into a signing account."""
    path = Path(path)
    try:
        keystore = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read keystore {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise ConfigError(f"keystore {path} is not JSON") from None
    if not isinstance(keystore, dict) or ("crypto" not in keystore and "Crypto" not in keystore):
        raise ConfigError(f"keystore {path} is not an Ethereum V3 keystore (no 'crypto' section)")
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "mac mismatch" in str(exc).lower():
            raise ConfigError(f"wrong password for keystore {path}") from None
        raise ConfigError(f"keystore {path} cannot be decrypted: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"keystore {path} is malformed (missing {exc})") from None
    return Account.from_key(key)


def save_keystore_account(
    account: LocalAccount | str,
    path: str | Path,
    password: str,
    *,
    iterations: int | None = None,
    overwrite: bool = False,
) -> str:
    """Encrypt `account` into a V3 keystore at `path`, readable by its owner only (mode 0600); returns the
    address.

    An existing file is never replaced unless `overwrite` (`ConfigError` naming the address it holds): the
    keystore is written and fsync'd under a temporary name, then hard-linked to `path`, which fails if
    `path` exists (no window in which two writers both succeed), or renamed over it with `overwrite`.
    `iterations` lowers the scrypt cost (n) for tests; leave it None for real keys.
    """
    local = _as_account(account)
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(keystore_exists_message(path))
    keystore = Account.encrypt(local.key, password, iterations=iterations)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(keystore))
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ConfigError(keystore_exists_message(path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    return str(local.address)


def keystore_exists_message(path: Path) -> str:
    """Why a keystore is not written over `path` (naming the address the file holds, if a keystore)."""
    try:
        held = json.loads(path.read_text()).get("address")
    except (OSError, ValueError, AttributeError):
        held = None
    holds = f" (it holds 0x{held})" if isinstance(held, str) else ""
    return (
        f"keystore {path} exists{holds}: not overwritten. Choose another file, or pass --force to replace "
        "it (its key is lost unless it is kept elsewhere)"
    )
