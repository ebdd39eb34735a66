"""Fixtures of the network tests: a real anvil with interval mining (seed blocks arrive on their own), a real
js-ipfs daemon, one deployment, and a harness that runs roles in-process step by step.

Both nodes are this package's own (not the session's automine anvil), started on free loopback ports and
stopped by their pids. Each test creates its own task on the shared deployment with its own accounts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from netharness import BLOCK_TIME, NUM_ACCOUNTS, Net

if TYPE_CHECKING:
    from protocol.anvil import Anvil
    from protocol.ipfs_daemon import IpfsDaemon


@pytest.fixture(scope="session")
def net_anvil() -> Iterator[Anvil]:
    """anvil mining a block every BLOCK_TIME seconds."""
    from protocol.anvil import Anvil

    with Anvil(block_time=BLOCK_TIME, accounts=NUM_ACCOUNTS) as node:
        yield node


@pytest.fixture(scope="session")
def net_ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsDaemon]:
    """A js-ipfs daemon for the network tests (tests may stop and restart it)."""
    from protocol.ipfs_daemon import IpfsDaemon

    with IpfsDaemon(tmp_path_factory.mktemp("net-ipfs") / "repo") as daemon:
        yield daemon


@pytest.fixture(scope="session")
def net_world(net_anvil: Anvil, net_ipfs: IpfsDaemon, tmp_path_factory: pytest.TempPathFactory) -> Net:
    """The deployment every network test uses."""
    return Net.deploy(net_anvil, net_ipfs, tmp_path_factory.mktemp("net-files"))


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """In-process roles train and verify with one thread, as each of them would in its own process (two
    threads per role on a 2-core machine only contend)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def net(net_world: Net, net_ipfs: IpfsDaemon, tmp_path: Path) -> Net:
    """The deployment, with a per-test home directory; the IPFS daemon is running at the start."""
    if not net_ipfs.running:
        net_ipfs.start()
    return net_world.for_test(tmp_path)
