"""ArtifactStore's client logic without a daemon: CIDs and addresses, retry policy, and defences against
a daemon that lies (oversized, corrupted or inconsistent blocks), served by an in-process fake of the
`/api/v0` endpoints through httpx's MockTransport. The real daemon is in test_ipfs_store.py."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multiformats import CID, multihash

from protocol.errors import ArtifactError, ConfigError, IpfsError
from protocol.ipfs import CHUNK_SIZE, ArtifactStore, api_url_from, parse_cid, sha256_cid
from protocol.ipfs_daemon import free_port

URL = "http://127.0.0.1:5999"


# -- a fake daemon over a dict of blocks ---------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _unixfs_file(children: list[tuple[CID, int]], *, data: bytes = b"", filesize: int | None = None) -> bytes:
    """A dag-pb UnixFS file node as kubo and js-ipfs write it (links first, then the data field)."""
    unixfs = _field(1, 2) + (_field(2, data) if data else b"")
    unixfs += _field(3, filesize if filesize is not None else len(data) + sum(s for _, s in children))
    unixfs += b"".join(_field(4, size) for _, size in children)
    links = b"".join(
        _field(2, _field(1, bytes(cid)) + _field(2, b"") + _field(3, size)) for cid, size in children
    )
    return links + _field(1, unixfs)


def _cid(block: bytes, codec: str) -> CID:
    return CID("base32", 1, codec, multihash.wrap(hashlib.sha256(block).digest(), "sha2-256"))


class FakeDaemon:
    """block/stat, block/get and version over `blocks`; every request is counted."""

    def __init__(self) -> None:
        self.blocks: dict[str, bytes] = {}
        self.sizes: dict[str, int] = {}  # what block/stat claims, when it lies
        self.calls: list[str] = []
        self.served = 0  # body bytes handed to the client by block/get

    def add(self, block: bytes, codec: str = "raw") -> CID:
        cid = _cid(block, codec)
        self.blocks[str(cid)] = block
        return cid

    def _stream(self, data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 65_536):
            self.served += len(data[i : i + 65_536])
            yield data[i : i + 65_536]

    def handle(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.url.path.removeprefix("/api/v0/")
        self.calls.append(endpoint)
        arg = request.url.params.get("arg", "")
        if endpoint == "version":
            return httpx.Response(200, json={"Version": "fake"})
        if arg not in self.blocks:
            return httpx.Response(500, json={"Message": "request timed out", "Code": 0, "Type": "error"})
        if endpoint == "block/stat":
            return httpx.Response(200, json={"Key": arg, "Size": self.sizes.get(arg, len(self.blocks[arg]))})
        if endpoint == "block/get":
            return httpx.Response(200, content=self._stream(self.blocks[arg]))
        return httpx.Response(404, text="404 page not found")

    def store(self, **kwargs: float) -> ArtifactStore:
        return ArtifactStore(URL, transport=httpx.MockTransport(self.handle), **kwargs)


# -- CIDs and addresses --------------------------------------------------------------------------------


def test_sha256_cid_known_vectors() -> None:
    assert sha256_cid(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert sha256_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert sha256_cid(bytes(CHUNK_SIZE)).startswith("bafkrei")
    with pytest.raises(ArtifactError, match="chunked DAG"):
        sha256_cid(bytes(CHUNK_SIZE + 1))


def test_parse_cid_accepts_v0_and_v1_and_refuses_garbage() -> None:
    assert parse_cid("QmRaaUwTNfwgFZpeUy8qrZwrp2dY4kCKmmB5xEqvH3vtD1").version == 0
    v1 = parse_cid("zb2rhZfjRh2FHHB2RkHVEvL2vJnCTcu7kwRqgVsf9gpkLgteo")  # base58 form of hello's CID
    assert str(v1.set(base="base32")) == sha256_cid(b"hello")
    for bad in ["", "hello", "bafkrei", "/ipfs/" + sha256_cid(b"x"), "b" + "a" * 600, 42]:
        with pytest.raises(ArtifactError, match="bad CID"):
            parse_cid(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("/ip4/127.0.0.1/tcp/5001/http", "http://127.0.0.1:5001"),
        ("/ip4/10.0.0.2/tcp/5001", "http://10.0.0.2:5001"),
        ("/ip6/::1/tcp/5001/http", "http://[::1]:5001"),
        ("/dns4/ipfs.example/tcp/443/https", "https://ipfs.example:443"),
        ("http://127.0.0.1:5001/", "http://127.0.0.1:5001"),
        ("http://localhost:5001/api/v0", "http://localhost:5001"),
    ],
)
def test_api_url_from(given: str, url: str) -> None:
    assert api_url_from(given) == url


@pytest.mark.parametrize(
    "bad", ["/ip4/127.0.0.1/udp/5001", "/ip4/127.0.0.1/tcp/port/http", "ftp://x:1", "5001"]
)
def test_api_url_from_refuses(bad: str) -> None:
    with pytest.raises(ConfigError):
        api_url_from(bad)


# -- retries -------------------------------------------------------------------------------------------


def test_nobody_listening_is_ipfs_error_in_bounded_time() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    store = ArtifactStore(url, retries=3, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(IpfsError) as err:
        store.get_bytes(sha256_cid(b"x"), max_size=10)
    assert time.monotonic() - started < 3
    assert str(err.value).startswith(f"IPFS daemon at {url} is not answering: ConnectError")
    assert "4 attempts" in str(err.value)
    assert "start it or pass --ipfs" in str(err.value)


def test_5xx_is_retried_with_backoff_then_succeeds() -> None:
    answers = [503, 502, 200]
    seen: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(time.monotonic())
        status = answers[len(seen) - 1]
        return httpx.Response(status, json={"Version": "0.1"} if status == 200 else {"Message": "busy"})

    store = ArtifactStore(URL, retries=4, backoff=0.05, transport=httpx.MockTransport(handle))
    assert store.version() == "0.1"
    assert len(seen) == 3
    assert seen[1] - seen[0] >= 0.05
    assert seen[2] - seen[1] >= 0.1  # exponential


def test_persistent_5xx_is_ipfs_error_after_all_retries() -> None:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, json={"Message": "datastore closed"})

    store = ArtifactStore(URL, retries=2, backoff=0.01, transport=httpx.MockTransport(handle))
    with pytest.raises(IpfsError, match="keeps failing version: HTTP 500 from version: datastore closed"):
        store.version()
    assert len(calls) == 3


def test_4xx_is_not_retried() -> None:
    calls: list[int] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"Message": "Invalid request query input", "Code": 1})

    store = ArtifactStore(URL, retries=4, backoff=0.01, transport=httpx.MockTransport(handle))
    with pytest.raises(IpfsError, match=r"refused block/stat \(HTTP 400\): Invalid request query input"):
        store.exists(sha256_cid(b"x"))
    assert len(calls) == 1


def test_bad_cid_and_bad_limits_make_no_request() -> None:
    fake = FakeDaemon()
    store = fake.store()
    with pytest.raises(ArtifactError, match="bad CID"):
        store.get_bytes("nonsense", max_size=1)
    with pytest.raises(ArtifactError, match="max_size"):
        store.get_bytes(sha256_cid(b"x"), max_size=-1)
    with pytest.raises(ArtifactError, match="not a file"):
        store.get_bytes(str(_cid(b"{}", "dag-cbor")), max_size=10)
    assert fake.calls == []
    with pytest.raises(ConfigError):
        ArtifactStore(URL, timeout=0)


# -- a daemon that lies --------------------------------------------------------------------------------


def test_missing_block_is_not_found_without_retry() -> None:
    fake = FakeDaemon()
    with pytest.raises(ArtifactError, match="not found"):
        fake.store(retries=4, backoff=1.0).get_bytes(sha256_cid(b"absent"), max_size=10)
    assert fake.calls == ["block/stat"]


def test_raw_block_larger_than_announced_is_cut_at_the_cap() -> None:
    fake = FakeDaemon()
    huge = bytes(50_000_000)
    cid = fake.add(huge)
    fake.sizes[str(cid)] = 10  # block/stat claims 10 bytes
    with pytest.raises(ArtifactError, match="announced 10 bytes and served 11"):
        fake.store().get_bytes(str(cid), max_size=100)
    assert fake.served <= 2 * 65_536  # the reader stopped after max_size + 1 bytes, not 50 MB


def test_corrupted_raw_block() -> None:
    fake = FakeDaemon()
    cid = fake.add(b"honest content")
    fake.blocks[str(cid)] = b"forged content"
    with pytest.raises(ArtifactError, match=f"corrupted.*{cid}"):
        fake.store().get_bytes(str(cid), max_size=100)


def _chunked(fake: FakeDaemon, leaves: list[bytes], **node_kwargs: int) -> tuple[CID, bytes]:
    children = [(fake.add(leaf), len(leaf)) for leaf in leaves]
    return fake.add(_unixfs_file(children, **node_kwargs), "dag-pb"), b"".join(leaves)


def test_fake_chunked_dag_round_trip() -> None:
    fake = FakeDaemon()
    root, content = _chunked(fake, [b"a" * 1000, b"b" * 1000, b"c" * 10])
    assert fake.store().get_bytes(str(root), max_size=2010) == content


def test_root_that_understates_its_size_is_caught_while_reading() -> None:
    fake = FakeDaemon()
    leaves = [b"x" * 100_000, b"y" * 100_000]
    children = [(fake.add(leaf), 10) for leaf in leaves]  # blocksizes and filesize claim 20 bytes
    root = fake.add(_unixfs_file(children, filesize=20), "dag-pb")
    with pytest.raises(ArtifactError, match="holds at least 51 bytes, over the limit of 50 bytes"):
        fake.store().get_bytes(str(root), max_size=50)
    assert fake.served <= 64 * 1024 + 1000  # only the root and the first bytes of one leaf


def test_inconsistent_block_sizes() -> None:
    fake = FakeDaemon()
    a, b = fake.add(b"a" * 50), fake.add(b"b" * 50)
    root = fake.add(_unixfs_file([(a, 50), (b, 40)], filesize=100), "dag-pb")
    with pytest.raises(ArtifactError, match=r"holds 50 bytes, its parent .* says 40"):
        fake.store().get_bytes(str(root), max_size=1000)


def test_missing_leaf_is_not_found() -> None:
    fake = FakeDaemon()
    root, _ = _chunked(fake, [b"a" * 10, b"b" * 10])
    del fake.blocks[str(_cid(b"b" * 10, "raw"))]
    with pytest.raises(ArtifactError, match=r"block .* not found"):
        fake.store(find_timeout=0.1).get_bytes(str(root), max_size=100)


def test_too_many_tiny_blocks_are_refused() -> None:
    fake = FakeDaemon()
    empty = fake.add(b"")
    root = fake.add(_unixfs_file([(empty, 0)] * 200, filesize=0), "dag-pb")
    with pytest.raises(ArtifactError, match="more than 16 blocks"):
        fake.store().get_bytes(str(root), max_size=0)


def test_deep_dag_is_refused() -> None:
    fake = FakeDaemon()
    node = fake.add(b"z")
    for _ in range(40):
        node = fake.add(_unixfs_file([(node, 1)]), "dag-pb")
    with pytest.raises(ArtifactError, match="deeper than"):
        fake.store().get_bytes(str(node), max_size=10_000)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(block=st.binary(max_size=300))
def test_garbage_root_node_is_a_clear_error(block: bytes) -> None:
    fake = FakeDaemon()
    root = fake.add(block, "dag-pb")
    try:
        data = fake.store().get_bytes(str(root), max_size=1000)
    except ArtifactError:
        return
    assert len(data) <= 1000


def test_oversized_raw_block_is_refused_before_download() -> None:
    fake = FakeDaemon()
    cid = fake.add(bytes(3 * 1024 * 1024))
    with pytest.raises(ArtifactError, match="raw block of 3145728 bytes exceeds"):
        fake.store().get_bytes(str(cid), max_size=10 * 1024 * 1024)
    assert fake.calls == ["block/stat"]


def test_put_file_of_a_missing_path(tmp_path: Path) -> None:
    fake = FakeDaemon()
    with pytest.raises(ArtifactError, match="cannot read"):
        fake.store().put_file(tmp_path / "absent.bin")
    assert fake.calls == []
