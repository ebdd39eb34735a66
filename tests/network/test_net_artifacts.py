"""Artifacts against a real IPFS daemon: local CIDs equal the daemon's, and bounded, verified fetches classify
their failures (missing: unavailable, maybe later; too large or wrong hash: invalid, for good)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from protocol.artifacts import (
    ArtifactCache,
    ArtifactInvalidError,
    ArtifactUnavailableError,
    artifact_ref,
    fetch_verified,
    unixfs_cid,
    upload_bytes,
)
from protocol.errors import IpfsError
from protocol.ipfs import CHUNK_SIZE, ArtifactStore
from protocol.ipfs_daemon import IpfsDaemon

pytestmark = pytest.mark.ipfs


@pytest.fixture
def store(net_ipfs: IpfsDaemon) -> Iterator[ArtifactStore]:
    if not net_ipfs.running:
        net_ipfs.start()
    with ArtifactStore(net_ipfs.api_url, retries=1, backoff=0.05, find_timeout=0.5) as s:
        yield s


@pytest.mark.parametrize("size", [CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17])
def test_local_cid_is_the_daemons_cid(store: ArtifactStore, size: int) -> None:
    data = os.urandom(size)
    expected = artifact_ref(data)
    assert store.put_bytes(data).cid == expected.cid == unixfs_cid(data)
    assert upload_bytes(store, data, expected=expected) == expected


def test_upload_refuses_to_land_elsewhere_than_committed(store: ArtifactStore) -> None:
    with pytest.raises(IpfsError, match="was committed"):
        upload_bytes(store, b"these bytes", expected=artifact_ref(b"other bytes"))


def test_fetch_classifies_failures(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(CHUNK_SIZE + 100)
    ref = upload_bytes(store, data)
    assert fetch_verified(store, ref.cid, ref.digest, ref.size, "state") == data
    with pytest.raises(
        ArtifactInvalidError, match=r"state: .* over the limit of 1000 bytes \(refused before download\)"
    ):
        fetch_verified(store, ref.cid, ref.digest, 1000, "state")
    with pytest.raises(ArtifactInvalidError, match="was committed"):
        fetch_verified(store, ref.cid, hashlib.sha256(b"else").digest(), ref.size, "state")
    missing = artifact_ref(b"nobody uploaded this " + os.urandom(8))
    with pytest.raises(ArtifactUnavailableError, match="not found"):
        fetch_verified(store, missing.cid, missing.digest, 100, "bundle")
    # The cache keeps verified content: a second fetch needs no daemon.
    cache = ArtifactCache(tmp_path)
    assert cache.fetch(store, ref.cid, ref.digest, ref.size, "state") == data
    with ArtifactStore("http://127.0.0.1:9", retries=0) as dead:
        assert cache.fetch(dead, ref.cid, ref.digest, ref.size, "state") == data
        with pytest.raises(ArtifactUnavailableError, match="not answering"):
            cache.fetch(dead, missing.cid, missing.digest, 100, "bundle")
    cache.path(ref.digest).write_bytes(b"damaged")
    assert cache.get(ref.digest) is None  # damaged files are dropped, never returned
