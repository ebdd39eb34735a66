"""Shared fixtures: one anvil node and one compiled set of contracts per test session.

Chain imports happen inside the fixtures, so tests that never ask for them (the ML tests) pay
nothing for web3 or solc.

    def test_x(chain, compiled, chain_snapshot): ...   # state changes are rolled back after the test
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from protocol.anvil import Anvil
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

NUM_ACCOUNTS = 20


@pytest.fixture(scope="session")
def anvil() -> Iterator[Anvil]:
    """One anvil node for the session (automine, 20 funded accounts), stopped by its pid."""
    from protocol.anvil import Anvil

    node = Anvil(accounts=NUM_ACCOUNTS)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def compiled() -> dict[str, CompiledContract]:
    """Every contract under contracts/ (cached in build/ between sessions)."""
    from protocol.compile import compile_contracts

    return compile_contracts()


@pytest.fixture(scope="session")
def accounts(anvil: Anvil) -> list[tuple[str, str]]:
    """The node's funded accounts as (address, private key)."""
    return anvil.accounts


@pytest.fixture(scope="session")
def chain(anvil: Anvil, compiled: dict[str, CompiledContract]) -> ChainClient:
    """A client for account 0 that decodes the custom errors of every compiled contract."""
    from protocol.chain import ChainClient

    abis = [c.abi for c in compiled.values()]
    return ChainClient(anvil.rpc_url, anvil.accounts[0][1], abis=abis, timeout=30)


@pytest.fixture(scope="session")
def client_for(chain: ChainClient, accounts: list[tuple[str, str]]) -> Callable[[int], ChainClient]:
    """`client_for(i)`: a client for account i sharing `chain`'s known ABIs."""
    cache: dict[int, ChainClient] = {}

    def make(index: int) -> ChainClient:
        if index not in cache:
            cache[index] = chain.with_account(accounts[index][1])
        return cache[index]

    return make


@pytest.fixture
def chain_snapshot(chain: ChainClient) -> Iterator[str]:
    """Roll the node back to its state before the test (evm_snapshot / evm_revert)."""
    snapshot_id = chain.snapshot()
    yield snapshot_id
    chain.revert(snapshot_id)
