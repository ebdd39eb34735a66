"""Shared fixtures: one anvil node and one compiled set of contracts per test session.

Chain imports happen inside the fixtures, so tests that never ask for them (the ML tests) pay
nothing for web3 or solc.

    def test_x(chain, compiled, chain_snapshot): ...   # state changes are rolled back after the test
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
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


@pytest.fixture(scope="session")
def offline_hf_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny Llama and a tiny Qwen2 in the real Hugging Face format, made offline (no download): a
    byte-level BPE tokenizer trained on 1-digit addition problems, random weights (hidden 64, 2 layers),
    saved with `save_pretrained` (`trainer.pretrained.make_offline_model`)."""
    from trainer.envs import get_env
    from trainer.pretrained import make_offline_model

    env = get_env("addition", {"digits": 1})
    root = tmp_path_factory.mktemp("hf-models")
    return {arch: make_offline_model(root / arch, env, arch=arch, seed=3) for arch in ("llama", "qwen2")}
