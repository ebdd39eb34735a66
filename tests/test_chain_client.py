"""ChainClient and Anvil against a real anvil node (contracts/test/RevertProbe.sol)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from protocol.anvil import Anvil, dev_accounts
from protocol.chain import ChainClient, RevertDecoder, load_keystore_account, save_keystore_account
from protocol.compile import CompiledContract
from protocol.errors import ChainError, ConfigError, ContractRevert

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def probe(chain: ChainClient, compiled: dict[str, CompiledContract]) -> Any:
    return chain.deploy(compiled["RevertProbe"])


def _revert(fn: Callable[[], object]) -> ContractRevert:
    with pytest.raises(ContractRevert) as info:
        fn()
    return info.value


def test_deploy_transact_and_call(chain: ChainClient, probe: Any, chain_snapshot: str) -> None:
    receipt = chain.transact(probe.functions.poke(3))
    assert receipt["status"] == 1
    assert receipt["to"] == probe.address
    assert chain.call(probe.functions.counter()) == 3


def test_custom_errors_decoded_with_values(chain: ChainClient, probe: Any) -> None:
    err = _revert(lambda: chain.transact(probe.functions.failCustom(5)))
    assert (err.error, err.values) == ("TooSmall", {"given": 5, "minimum": 6})
    assert err.tx is None  # caught at gas estimation: nothing was sent

    reason = bytes(range(32))
    err = _revert(lambda: chain.transact(probe.functions.failAddress(reason)))
    assert err.error == "NotAllowed"
    assert err.values == {"caller": chain.address, "reason": reason}
    assert "0x000102" in str(err)  # bytes print as hex

    err = _revert(lambda: chain.call(probe.functions.failBare()))
    assert (err.error, err.values) == ("Bare", {})


def test_error_string_and_panic(chain: ChainClient, probe: Any) -> None:
    err = _revert(lambda: chain.transact(probe.functions.failString("boom")))
    assert (err.error, err.values) == ("Error", {"message": "boom"})
    err = _revert(lambda: chain.call(probe.functions.failPanic(0)))
    assert err.error == "Panic"
    assert err.values["code"] == 0x12
    assert "division" in str(err.values["reason"])


def test_unknown_and_empty_revert_data(chain: ChainClient, probe: Any) -> None:
    err = _revert(lambda: chain.transact(probe.functions.failRaw(bytes.fromhex("1234567899"))))
    assert (err.error, err.values) == ("UnknownError", {"data": "0x1234567899"})
    err = _revert(lambda: chain.call(probe.functions.failRaw(b"")))
    assert (err.error, err.values) == ("UnknownError", {"data": "0x"})
    # A known selector with a body that does not decode is reported raw, not as a crash.
    bad = bytes.fromhex("08c379a0") + b"\x01\x02"
    err = _revert(lambda: chain.call(probe.functions.failRaw(bad)))
    assert (err.error, err.raw) == ("UnknownError", bad)


def test_errors_only_decode_when_the_abi_is_known(
    chain: ChainClient, probe: Any, accounts: list[tuple[str, str]]
) -> None:
    bare = ChainClient(chain.rpc_url, accounts[1][1], timeout=10)
    err = _revert(lambda: bare.call(probe.functions.failCustom(1)))
    assert err.error == "UnknownError"
    bare.register_abi(probe.abi)
    assert _revert(lambda: bare.call(probe.functions.failCustom(1))).values == {"given": 1, "minimum": 2}


def test_mined_revert_is_replayed_and_decoded(chain: ChainClient, probe: Any, chain_snapshot: str) -> None:
    # With an explicit gas limit nothing is estimated: the transaction is mined with status 0.
    before = chain.block_number()
    err = _revert(lambda: chain.transact(probe.functions.failCustom(7), gas=100_000))
    assert (err.error, err.values) == ("TooSmall", {"given": 7, "minimum": 8})
    assert err.tx is not None
    assert err.tx.startswith("0x")
    assert chain.block_number() == before + 1
    receipt = chain.wait(err.tx, check=False)
    assert receipt["status"] == 0
    # The account's nonce advanced: the next transaction goes through.
    assert chain.transact(probe.functions.poke(1))["status"] == 1


@pytest.fixture(scope="module")
def gate(chain: ChainClient, compiled: dict[str, CompiledContract]) -> Any:
    return chain.deploy(compiled["TimeGate"])


def test_mined_revert_that_depends_on_its_block_is_traced(
    chain: ChainClient, gate: Any, chain_snapshot: str
) -> None:
    # A deadline check: the transaction is mined in a block 100 s later than its parent, past the
    # deadline; replayed on the parent block it would go through (and decode as nothing).
    now = chain.timestamp()
    chain.set_next_block_timestamp(now + 100)
    err = _revert(lambda: chain.transact(gate.functions.beforeTime(now + 50), gas=100_000))
    assert (err.error, err.values) == ("Expired", {"deadline": now + 50, "timestamp": now + 100})
    assert err.tx is not None
    receipt = chain.wait(err.tx, check=False)
    assert receipt["status"] == 0
    parent = receipt["blockNumber"] - 1
    assert chain.call(gate.functions.beforeTime(now + 50), block=parent) == []  # the parent lets it pass

    # The same with block.number: mined one block after the last allowed one.
    last = chain.block_number()
    err = _revert(lambda: chain.transact(gate.functions.beforeBlock(last), gas=100_000))
    assert (err.error, err.values) == ("TooLate", {"lastBlock": last, "blockNumber": last + 1})
    assert chain.call(gate.functions.beforeBlock(last), block=last) == []
    assert chain.call(gate.functions.hits()) == 0


def test_mined_out_of_gas_is_not_a_revert(chain: ChainClient, probe: Any, chain_snapshot: str) -> None:
    with pytest.raises(ChainError, match="ran out of gas") as info:
        chain.transact(probe.functions.pokeMany(100), gas=30_000)
    assert not isinstance(info.value, ContractRevert)


class _NoDebugRpc:
    """A JSON-RPC proxy in front of anvil that answers like a public RPC without debug APIs
    (`debug_*`: method not found), and optionally like an older node that takes no block overrides in
    eth_call. It records the methods it was asked for."""

    def __init__(self, upstream: str, *, overrides: bool) -> None:
        import json
        import urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.methods: list[str] = []
        methods = self.methods
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = json.loads(body)
                method, params = request["method"], request.get("params") or []
                methods.append(method)
                refusal = None
                if method.startswith("debug_"):
                    refusal = {
                        "code": -32601,
                        "message": f"the method {method} does not exist/is not available",
                    }
                elif method == "eth_call" and len(params) > 2 and not overrides:
                    refusal = {"code": -32602, "message": "too many arguments, want at most 2"}
                if refusal is not None:
                    answer = json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": refusal}).encode()
                else:
                    forwarded = urllib.request.Request(
                        upstream, data=body, headers={"Content-Type": "application/json"}
                    )
                    with opener.open(forwarded, timeout=30) as response:
                        answer = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.mark.parametrize("overrides", [True, False], ids=["block-overrides", "plain-eth_call"])
def test_mined_revert_without_debug_apis_is_replayed(
    chain: ChainClient,
    gate: Any,
    probe: Any,
    accounts: list[tuple[str, str]],
    chain_snapshot: str,
    overrides: bool,
) -> None:
    proxy = _NoDebugRpc(chain.rpc_url, overrides=overrides)
    try:
        client = ChainClient(proxy.url, accounts[11][1], decoder=chain.decoder, timeout=10)
        # A revert that does not depend on its block decodes either way.
        err = _revert(lambda: client.transact(probe.functions.failCustom(7), gas=100_000))
        assert (err.error, err.values) == ("TooSmall", {"given": 7, "minimum": 8})
        assert "debug_traceTransaction" in proxy.methods  # asked first, refused, then replayed

        now = client.timestamp()
        chain.set_next_block_timestamp(now + 100)
        err = _revert(lambda: client.transact(gate.functions.beforeTime(now + 50), gas=100_000))
        if overrides:  # replayed on the parent block with the mined block's number and time
            assert (err.error, err.values) == ("Expired", {"deadline": now + 50, "timestamp": now + 100})
        else:  # the documented limit of a plain replay: the parent block lets the call pass
            assert (err.error, err.values) == ("UnknownError", {"data": "0x"})
        assert err.tx is not None
        assert client.wait(err.tx, check=False)["status"] == 0

        # Out of gas is told apart from a revert without a trace too (the replay fails without data).
        with pytest.raises(ChainError, match="ran out of gas") as info:
            client.transact(probe.functions.pokeMany(100), gas=30_000)
        assert not isinstance(info.value, ContractRevert)
    finally:
        proxy.close()


def test_many_quick_transactions_keep_nonces(
    chain: ChainClient, probe: Any, accounts: list[tuple[str, str]], chain_snapshot: str
) -> None:
    client = chain.with_account(accounts[2][1])
    twin = chain.with_account(accounts[2][1])  # same account, second client: shares the nonce book
    nonce_before = client.w3.eth.get_transaction_count(client.address)
    hashes = [client.send(probe.functions.poke(1), gas=80_000) for _ in range(15)]
    receipts = [client.wait(h) for h in hashes]
    assert [r["status"] for r in receipts] == [1] * 15

    errors: list[BaseException] = []

    def worker(c: ChainClient) -> None:
        try:
            for _ in range(5):
                c.transact(probe.functions.poke(1))
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(c,)) for c in (client, twin, client, twin)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert chain.call(probe.functions.counter()) == 15 + 20
    assert client.w3.eth.get_transaction_count(client.address) == nonce_before + 35


def test_nonce_resyncs_after_outside_use(
    chain: ChainClient, probe: Any, accounts: list[tuple[str, str]], chain_snapshot: str
) -> None:
    key = accounts[3][1]
    client = chain.with_account(key)
    client.transact(probe.functions.poke(1))  # the client now holds a local nonce
    # Another program uses the same key: the node's nonce moves past the client's.
    w3 = client.w3
    tx = probe.functions.poke(1).build_transaction(
        {"from": client.address, "nonce": w3.eth.get_transaction_count(client.address), "gas": 80_000}
    )
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(Account.from_key(key).sign_transaction(tx).raw_transaction)
    )
    assert client.transact(probe.functions.poke(1))["status"] == 1
    assert chain.call(probe.functions.counter()) == 3


def test_lost_send_response_is_not_sent_twice(
    chain: ChainClient,
    probe: Any,
    accounts: list[tuple[str, str]],
    chain_snapshot: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    client = chain.with_account(accounts[6][1])
    real_send = client.w3.eth.send_raw_transaction
    lost: list[bytes] = []

    def flaky(raw: Any) -> Any:
        result = real_send(raw)  # the node gets (and automines) it...
        if not lost:
            lost.append(bytes(result))
            raise requests.exceptions.ConnectionError("connection reset")  # ...the reply is lost
        return result

    monkeypatch.setattr(client.w3.eth, "send_raw_transaction", flaky)
    receipt = client.transact(probe.functions.poke(5))
    assert bytes(receipt["transactionHash"]) == lost[0]
    assert chain.call(probe.functions.counter()) == 5  # executed once
    assert client.transact(probe.functions.poke(1))["status"] == 1


def test_transfer_and_balance(
    chain: ChainClient, accounts: list[tuple[str, str]], chain_snapshot: str
) -> None:
    sender = chain.with_account(accounts[7][1])
    to = accounts[8][0]
    before = sender.balance(to)
    receipt = sender.transfer(to, 12345)
    assert receipt["status"] == 1
    assert sender.balance(to) == before + 12345
    with pytest.raises(ConfigError, match="not an address"):
        sender.transfer("0x12", 1)


def test_dead_rpc_gives_chain_error_within_the_retry_budget(accounts: list[tuple[str, str]]) -> None:
    from protocol.retry import DEFAULT_POLICY

    port = _closed_port()
    client = ChainClient(f"http://127.0.0.1:{port}", accounts[0][1])
    start = time.monotonic()
    with pytest.raises(ChainError, match=rf"RPC at http://127.0.0.1:{port} unreachable") as info:
        client.block_number()
    # Refused connections fail at once: every try is made, with waits of 0.25, 0.5, 1, 2 s (+ jitter).
    assert f"failed {DEFAULT_POLICY.attempts} times" in str(info.value)
    assert time.monotonic() - start < DEFAULT_POLICY.budget


def test_get_logs_pages_in_order_with_filters(
    chain: ChainClient, probe: Any, accounts: list[tuple[str, str]], chain_snapshot: str
) -> None:
    start = chain.block_number() + 1
    other = chain.with_account(accounts[4][1])
    chain.transact(probe.functions.pokeMany(7))  # 7 events in one block
    for i in range(9):  # 9 more blocks, alternating senders
        (chain if i % 2 else other).transact(probe.functions.poke(1))
    events = chain.get_logs(probe, "Poked", start, page=2)
    assert len(events) == 16
    assert [e["args"]["seq"] for e in events] == list(range(1, 17))
    assert [e["args"]["value"] for e in events[:7]] == list(range(7))
    assert chain.get_logs(probe, "Poked", start, page=1000) == events
    mine = chain.get_logs(probe, "Poked", start, page=3, caller=other.address)
    assert [e["args"]["seq"] for e in mine] == [8, 10, 12, 14, 16]
    assert chain.get_logs(probe, "Poked", start, start + 1, page=1, seq=3)[0]["args"]["value"] == 2
    with pytest.raises(ConfigError, match="no event"):
        chain.get_logs(probe, "Nope", start)


def test_time_travel_mining_and_snapshots(chain: ChainClient, probe: Any, chain_snapshot: str) -> None:
    t0, b0 = chain.timestamp(), chain.block_number()
    chain.increase_time(3600)
    assert chain.timestamp() >= t0 + 3600
    chain.mine(5)
    assert chain.block_number() == b0 + 6
    snap = chain.snapshot()
    chain.transact(probe.functions.poke(2))
    assert chain.call(probe.functions.counter()) == 2
    chain.revert(snap)
    assert chain.call(probe.functions.counter()) == 0
    assert chain.block_number() == b0 + 6
    chain.transact(probe.functions.poke(1))  # nonce re-read after the revert
    with pytest.raises(ChainError, match="unknown snapshot"):
        chain.revert("0x999999")


def test_keystore_round_trip(tmp_path: Path, accounts: list[tuple[str, str]]) -> None:
    address, key = accounts[5]
    path = tmp_path / "keys" / "validator.json"
    assert save_keystore_account(key, path, "s3cret", iterations=2) == address
    assert os.stat(path).st_mode & 0o777 == 0o600
    loaded = load_keystore_account(path, "s3cret")
    assert loaded.address == address
    assert "0x" + bytes(loaded.key).hex() == key
    with pytest.raises(ConfigError, match="wrong password"):
        load_keystore_account(path, "guess")
    with pytest.raises(ConfigError, match="cannot read"):
        load_keystore_account(tmp_path / "missing.json", "x")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_keystore_account(tmp_path / "junk.json", "x")
    (tmp_path / "other.json").write_text('{"address": "00"}')
    with pytest.raises(ConfigError, match="V3 keystore"):
        load_keystore_account(tmp_path / "other.json", "x")


def test_bad_inputs_are_clear_errors(chain: ChainClient) -> None:
    with pytest.raises(ConfigError, match="private key"):
        ChainClient(chain.rpc_url, "0x1234")
    with pytest.raises(ConfigError, match="not an address"):
        chain.contract([], "0xnope")
    with pytest.raises(ChainError, match="no bytecode"):
        chain.deploy(CompiledContract("IThing", [], "0x", "contracts/IThing.sol"))


def test_decoder_handles_tuples_and_arrays() -> None:
    from eth_abi.abi import encode
    from eth_utils.abi import function_signature_to_4byte_selector
    from eth_utils.address import to_checksum_address

    decoder = RevertDecoder()
    decoder.register(
        [
            {
                "type": "error",
                "name": "Bad",
                "inputs": [
                    {"name": "who", "type": "address[]"},
                    {
                        "name": "pair",
                        "type": "tuple",
                        "components": [{"name": "a", "type": "uint8"}, {"name": "b", "type": "bool"}],
                    },
                ],
            }
        ]
    )
    assert decoder.known() == ["Bad(address[],(uint8,bool))"]
    selector = function_signature_to_4byte_selector("Bad(address[],(uint8,bool))")
    who = "0x" + "ab" * 20
    err = decoder.decode(selector + encode(["address[]", "(uint8,bool)"], [[who], (7, True)]))
    assert err.error == "Bad"
    assert err.values == {"who": (to_checksum_address(who),), "pair": (7, True)}


def test_anvil_lifecycle_block_time_and_cleanup() -> None:
    with Anvil(block_time=0.2, accounts=2, chain_id=1337) as node:
        workdir = node._workdir
        assert workdir is not None
        assert os.path.isdir(workdir)
        client = ChainClient(node.rpc_url, node.accounts[1][1], timeout=5)
        assert client.chain_id == 1337
        assert node.accounts == list(dev_accounts(2))
        assert client.balance() == 10_000 * 10**18
        first = client.block_number()
        time.sleep(0.7)
        assert client.block_number() >= first + 2  # interval mining runs on its own
        pid = node.pid
    assert not node.running
    assert not os.path.exists(workdir)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_anvil_dev_accounts_match_the_node(anvil: Anvil, chain: ChainClient) -> None:
    assert [a for a, _ in anvil.accounts] == list(chain.w3.eth.accounts)
    assert anvil.accounts[0][0] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
