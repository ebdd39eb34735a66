"""ArtifactStore against the session's real js-ipfs daemon: round trips, limits, missing and corrupted
content. Every artifact is made of fresh random bytes so tests never see each other's blocks."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from pydantic import BaseModel, ConfigDict

from protocol.errors import ArtifactError, WireFormatError
from protocol.ipfs import CHUNK_SIZE, ArtifactStore, sha256_cid
from protocol.ipfs_daemon import IpfsDaemon
from trainer.checkpoint import canonical_bytes, content_hash
from trainer.errors import CheckpointError

pytestmark = pytest.mark.ipfs


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    steps: int
    weights: dict[str, float]


def _add_raw_http(ipfs: IpfsDaemon, data: bytes, params: dict[str, str]) -> str:
    """Add content the way another client might (other CID version, wrapping); returns its CID."""
    response = httpx.post(
        f"{ipfs.api_url}/api/v0/add",
        params=params,
        files={"file": ("blob", data, "application/octet-stream")},
        timeout=30,
    )
    response.raise_for_status()
    return str(json.loads(response.text.strip().splitlines()[-1])["Hash"])


def test_put_get_small_bytes_matches_offline_cid(store: ArtifactStore) -> None:
    data = os.urandom(1000)
    art = store.put_bytes(data)
    assert art.cid == sha256_cid(data)
    assert art.cid.startswith("bafkrei")
    assert art.sha256 == hashlib.sha256(data).digest()
    assert art.size == len(data)
    assert store.get_bytes(art.cid, max_size=len(data), expected_sha256=art.sha256) == data
    assert store.size(art.cid) == len(data)


def test_exactly_one_chunk_is_one_raw_block(store: ArtifactStore) -> None:
    data = os.urandom(CHUNK_SIZE)
    art = store.put_bytes(data)
    assert art.cid == sha256_cid(data)
    assert store.get_bytes(art.cid, max_size=CHUNK_SIZE) == data


def test_put_get_large_chunked_bytes(recorded: tuple[ArtifactStore, Any]) -> None:
    store, transport = recorded
    data = os.urandom(3 * CHUNK_SIZE + 12_345)
    art = store.put_bytes(data)
    assert art.cid.startswith("bafybei")  # a dag-pb root over raw leaves
    with pytest.raises(ArtifactError, match="one chunk"):
        sha256_cid(data)
    assert store.size(art.cid) == len(data)
    transport.calls.clear()
    assert store.get_bytes(art.cid, max_size=len(data), expected_sha256=art.sha256) == data
    fetched = transport.fetched()
    assert fetched[0] == art.cid
    assert len(fetched) == 1 + 4  # the root, then each leaf once
    assert all(cid.startswith("bafkrei") for cid in fetched[1:])


def test_put_get_empty_bytes(store: ArtifactStore) -> None:
    art = store.put_bytes(b"")
    assert art.cid == sha256_cid(b"") == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    assert store.get_bytes(art.cid, max_size=0) == b""


def test_file_round_trip(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(os.urandom(2 * CHUNK_SIZE + 7))
    art = store.put_file(source)
    assert art.sha256 == hashlib.sha256(source.read_bytes()).digest()
    dest = tmp_path / "sub" / "out.bin"
    got = store.get_file(art.cid, dest, max_size=art.size, expected_sha256=art.sha256)
    assert got == art
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["out.bin"]  # no temporary file left


def test_small_file_cid_matches_put_bytes(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(500)
    path = tmp_path / "small.bin"
    path.write_bytes(data)
    assert store.put_file(path).cid == sha256_cid(data)


def test_safetensors_checkpoint_round_trip(store: ArtifactStore) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 512), torch.nn.ReLU(), torch.nn.Linear(512, 128))
    tensors = {name: p.detach().clone() for name, p in model.state_dict().items()}
    art = store.put_tensors(tensors)
    blob = canonical_bytes(tensors)
    assert art.size == len(blob) > CHUNK_SIZE  # 131k fp32 parameters: a chunked DAG
    assert art.sha256 == content_hash(blob)
    loaded = store.get_tensors(art.cid, max_size=art.size, expected_sha256=art.sha256)
    assert sorted(loaded) == sorted(tensors)
    for name, tensor in tensors.items():
        assert torch.equal(loaded[name], tensor), name
    # The same checkpoint as a file, loaded back with the safetensors library itself.
    from safetensors.torch import load as st_load

    assert torch.equal(st_load(store.get_bytes(art.cid, max_size=art.size))["0.weight"], tensors["0.weight"])


def test_get_tensors_of_non_checkpoint_is_checkpoint_error(store: ArtifactStore) -> None:
    art = store.put_bytes(b"not a safetensors blob " + os.urandom(8))
    with pytest.raises(CheckpointError):
        store.get_tensors(art.cid, max_size=1000)


def test_json_round_trip_and_bad_data(store: ArtifactStore) -> None:
    spec = Spec(name=f"task-{os.urandom(4).hex()}", steps=32, weights={"b": 0.5, "a": 1.0})
    art = store.put_json(spec)
    assert store.get_bytes(art.cid, max_size=1000).startswith(b'{"name":')  # sorted keys, compact
    assert store.get_json(art.cid, Spec, max_size=1000, expected_sha256=art.sha256) == spec
    bad = store.put_bytes(b'{"name": "x", "steps": "many", "weights": {}, "extra": 1}')
    with pytest.raises(WireFormatError, match="not a valid Spec") as err:
        store.get_json(bad.cid, Spec, max_size=1000)
    assert "steps" in str(err.value)
    assert "extra" in str(err.value)
    not_json = store.put_bytes(b"\xff\xfe" + os.urandom(16))
    with pytest.raises(WireFormatError):
        store.get_json(not_json.cid, Spec, max_size=1000)


def test_too_large_raw_is_refused_before_download(recorded: tuple[ArtifactStore, Any]) -> None:
    store, transport = recorded
    art = store.put_bytes(os.urandom(50_000))
    transport.calls.clear()
    with pytest.raises(ArtifactError, match=r"is 50000 bytes, over the limit of 100 bytes") as err:
        store.get_bytes(art.cid, max_size=100)
    assert art.cid in str(err.value)
    assert transport.fetched() == []  # only block/stat was asked, never the content
    assert [endpoint for endpoint, _ in transport.calls] == ["block/stat"]


def test_too_large_chunked_is_refused_before_download(
    recorded: tuple[ArtifactStore, Any], tmp_path: Path
) -> None:
    store, transport = recorded
    art = store.put_bytes(os.urandom(5 * CHUNK_SIZE))
    transport.calls.clear()
    with pytest.raises(ArtifactError, match=rf"is {5 * CHUNK_SIZE} bytes, over the limit of 1000000"):
        store.get_bytes(art.cid, max_size=1_000_000)
    assert transport.fetched() == [art.cid]  # the small root node only, no leaf
    dest = tmp_path / "big.bin"
    with pytest.raises(ArtifactError, match="over the limit"):
        store.get_file(art.cid, dest, max_size=10)
    assert list(tmp_path.iterdir()) == []


def test_nonexistent_cid_fails_fast(store: ArtifactStore, tmp_path: Path) -> None:
    missing = sha256_cid(os.urandom(32))  # never added anywhere
    started = time.monotonic()
    with pytest.raises(ArtifactError, match="not found") as err:
        store.get_bytes(missing, max_size=1000)
    assert time.monotonic() - started < store.find_timeout + 3
    assert missing in str(err.value)
    assert store.exists(missing, timeout=0.3) is False
    with pytest.raises(ArtifactError, match="not found"):
        store.get_file(missing, tmp_path / "x", max_size=1000)
    with pytest.raises(ArtifactError, match="not found"):
        store.pin(missing, timeout=0.3)
    assert not (tmp_path / "x").exists()


def test_exists_and_pin(store: ArtifactStore, running_ipfs: IpfsDaemon) -> None:
    art = store.put_bytes(os.urandom(64))
    assert store.exists(art.cid)
    store.pin(art.cid)
    pins = httpx.post(f"{running_ipfs.api_url}/api/v0/pin/ls", params={"arg": art.cid}, timeout=10).json()
    assert list(pins["Keys"].values()) == [{"Type": "recursive"}]


@pytest.mark.parametrize(
    "bad", ["", "not-a-cid", "bafy", "Qm123", " bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"]
)
def test_bad_cid_string(store: ArtifactStore, bad: str) -> None:
    with pytest.raises(ArtifactError, match="bad CID"):
        store.get_bytes(bad, max_size=10)
    with pytest.raises(ArtifactError, match="bad CID"):
        store.exists(bad)


def test_wrong_expected_sha256(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    art = store.put_bytes(data)
    wrong = hashlib.sha256(data + b"!").digest()
    with pytest.raises(ArtifactError, match="expected " + wrong.hex()) as err:
        store.get_bytes(art.cid, max_size=len(data), expected_sha256=wrong)
    assert art.sha256.hex() in str(err.value)
    with pytest.raises(ArtifactError, match="must be 32 bytes"):
        store.get_bytes(art.cid, max_size=len(data), expected_sha256=b"short")


def test_other_content_under_expected_hash_writes_nothing(store: ArtifactStore, tmp_path: Path) -> None:
    """A trainer points at some CID while the chain holds another artifact's hash."""
    honest = os.urandom(2000)
    other = store.put_bytes(os.urandom(2000))
    dest = tmp_path / "checkpoint.safetensors"
    dest.write_bytes(b"previous round")
    with pytest.raises(ArtifactError, match="has sha256"):
        store.get_file(other.cid, dest, max_size=10_000, expected_sha256=hashlib.sha256(honest).digest())
    assert dest.read_bytes() == b"previous round"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]


def test_corrupted_raw_block_on_disk(
    store: ArtifactStore, tamper: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    data = os.urandom(1000)
    art = store.put_bytes(data)
    tamper(art.cid, b"\x00" * len(data))  # the daemon now serves other bytes under this CID
    with pytest.raises(ArtifactError, match="corrupted") as err:
        store.get_bytes(art.cid, max_size=10_000)  # caught even without an expected hash
    assert art.cid in str(err.value)
    dest = tmp_path / "out.bin"
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_file(art.cid, dest, max_size=10_000, expected_sha256=art.sha256)
    assert list(tmp_path.iterdir()) == []


def test_corrupted_leaf_of_chunked_artifact(
    recorded: tuple[ArtifactStore, Any], tamper: Callable[[str, bytes], None], tmp_path: Path
) -> None:
    store, transport = recorded
    data = os.urandom(2 * CHUNK_SIZE + 100)
    art = store.put_bytes(data)
    transport.calls.clear()
    assert store.get_bytes(art.cid, max_size=len(data)) == data
    leaves = transport.fetched()[1:]
    assert len(leaves) == 3
    tamper(leaves[1], os.urandom(CHUNK_SIZE))
    with pytest.raises(ArtifactError, match=f"corrupted.*{leaves[1]}"):
        store.get_bytes(art.cid, max_size=len(data))
    dest = tmp_path / "out.bin"
    with pytest.raises(ArtifactError, match="corrupted"):
        store.get_file(art.cid, dest, max_size=len(data))
    assert list(tmp_path.iterdir()) == []


def test_content_added_by_other_clients(store: ArtifactStore, running_ipfs: IpfsDaemon) -> None:
    """CIDv0 with dag-pb leaves (old clients' default) is verified too; a directory is not a file."""
    data = os.urandom(CHUNK_SIZE + 5000)
    v0 = _add_raw_http(running_ipfs, data, {"cid-version": "0"})
    assert v0.startswith("Qm")
    assert store.get_bytes(v0, max_size=len(data), expected_sha256=hashlib.sha256(data).digest()) == data
    small_v0 = _add_raw_http(running_ipfs, b"tiny " + os.urandom(8), {"cid-version": "0"})
    assert len(store.get_bytes(small_v0, max_size=100)) == 13
    wrapped = {"cid-version": "1", "wrap-with-directory": "true"}
    directory = _add_raw_http(running_ipfs, os.urandom(10), wrapped)
    with pytest.raises(ArtifactError, match="directory, not a file"):
        store.get_bytes(directory, max_size=1000)
