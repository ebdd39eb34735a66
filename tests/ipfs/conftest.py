"""Fixtures for the IPFS tests: one real js-ipfs daemon per session on free loopback ports.

    def test_x(ipfs, store): ...   # `ipfs` is the IpfsDaemon, `store` an ArtifactStore over it

The daemon is stopped by its pid when the session ends. Tests that stop, crash or restart it
(test_ipfs_daemon.py) take `running_ipfs`, which starts it again first if a test before left it down;
every other fixture here depends on it too, so the order of tests does not matter.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from protocol.ipfs import ArtifactStore, parse_cid
from protocol.ipfs_daemon import IpfsDaemon

FIND_TIMEOUT = 1.0  # no peers: a CID the daemon does not hold is never found


@pytest.fixture(scope="session")
def ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IpfsDaemon]:
    """A js-ipfs daemon over a fresh repo, loopback only, for the whole session."""
    with IpfsDaemon(tmp_path_factory.mktemp("ipfs") / "repo") as daemon:
        yield daemon


@pytest.fixture
def running_ipfs(ipfs: IpfsDaemon) -> IpfsDaemon:
    """The session daemon, started again (same repo, same ports) if a previous test stopped it."""
    return ipfs.start()


@pytest.fixture
def store(running_ipfs: IpfsDaemon) -> Iterator[ArtifactStore]:
    """A store over the session daemon with short retries and a short find timeout."""
    with ArtifactStore(running_ipfs.api_url, retries=2, backoff=0.05, find_timeout=FIND_TIMEOUT) as s:
        yield s


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that records each RPC call as (endpoint, arg)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str | None]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.removeprefix("/api/v0/")
        self.calls.append((endpoint, request.url.params.get("arg")))
        return super().handle_request(request)

    def fetched(self) -> list[str]:
        """The CIDs fetched with block/get, in order."""
        return [arg for endpoint, arg in self.calls if endpoint == "block/get" and arg is not None]


def _block_file(repo: Path, cid: str) -> Path:
    """The file in which js-ipfs's flatfs datastore keeps the block of `cid`: the multihash in
    upper-case base32 without padding, under a two-character shard directory."""
    key = base64.b32encode(parse_cid(cid).digest).decode().rstrip("=")
    matches = list((repo / "blocks").glob(f"*/{key}.data"))
    assert len(matches) == 1, f"block {cid} ({key}) not found in {repo}"
    return matches[0]


@pytest.fixture
def recorded(running_ipfs: IpfsDaemon) -> Iterator[tuple[ArtifactStore, RecordingTransport]]:
    """A store like `store` whose RPC calls are recorded."""
    transport = RecordingTransport()
    with ArtifactStore(
        running_ipfs.api_url, retries=2, backoff=0.05, find_timeout=FIND_TIMEOUT, transport=transport
    ) as s:
        yield s, transport


@pytest.fixture
def tamper(running_ipfs: IpfsDaemon) -> Iterator[Callable[[str, bytes], None]]:
    """`tamper(cid, data)`: overwrite a block on the daemon's disk (restored after the test)."""
    saved: list[tuple[Path, bytes]] = []

    def overwrite(cid: str, data: bytes) -> None:
        path = _block_file(running_ipfs.repo_dir, cid)
        saved.append((path, path.read_bytes()))
        path.write_bytes(data)

    yield overwrite
    for path, original in reversed(saved):
        path.write_bytes(original)
