"""Fixtures for the contract tests: one deployment per test module on the session's anvil, and every
test rolled back by an EVM snapshot."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest
from chainworld import World, make_world

if TYPE_CHECKING:
    from protocol.chain import ChainClient


@pytest.fixture(scope="module")
def world(chain: ChainClient, client_for: Callable[[int], ChainClient]) -> World:
    """A fresh deployment for the module (set up before any test's snapshot, so it survives them)."""
    return make_world(chain, client_for)


@pytest.fixture(autouse=True)
def _isolated(world: World, chain_snapshot: str) -> None:
    """Every test starts from the module's deployment: `chain_snapshot` rolls the chain back afterwards."""
    world.salts.clear()
