"""Fixtures of the audit tests: the contract tests' `World` (tests/contracts/chainworld.py) on the session's
anvil, one deployment per module, every test rolled back by an EVM snapshot; and the auditor's read-only
target over that deployment."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "contracts"))

from chainworld import World, make_world

if TYPE_CHECKING:
    from protocol.audit.runner import AuditTarget
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract
    from protocol.ipfs import ArtifactStore
    from protocol.ipfs_daemon import IpfsDaemon


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A fresh deployment with funded, staked participants for the module."""
    return make_world(chain, client_for)


@pytest.fixture(autouse=True)
def _isolated(request: pytest.FixtureRequest) -> None:
    """Tests that use the world start from the module's deployment and are rolled back afterwards."""
    if "world" in request.fixturenames:
        world = request.getfixturevalue("world")  # deployed before the snapshot, so it survives it
        request.getfixturevalue("chain_snapshot")
        world.salts.clear()


@pytest.fixture(scope="session")
def ipfs_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsDaemon]:
    """A js-ipfs daemon over a fresh repo, loopback only, stopped by its pid at the end."""
    from protocol.ipfs_daemon import IpfsDaemon

    with IpfsDaemon(tmp_path_factory.mktemp("audit-ipfs") / "repo") as daemon:
        yield daemon


@pytest.fixture(scope="session")
def artifact_store(ipfs_daemon: IpfsDaemon) -> Iterator[ArtifactStore]:
    """A store over the daemon; a CID it does not hold is "not found" after one second (no peers)."""
    from protocol.ipfs import ArtifactStore

    with ArtifactStore(ipfs_daemon.api_url, retries=2, backoff=0.05, find_timeout=1.0) as store:
        yield store


@pytest.fixture
def target(world: World, chain: ChainClient, compiled: dict[str, CompiledContract]) -> AuditTarget:
    """The auditor's read-only view of the world's deployment."""
    from protocol.audit.runner import open_target

    return open_target(chain.rpc_url, world.deployment.addresses, compiled=compiled)
