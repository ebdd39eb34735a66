"""Building, hashing, signing and fetching the network's artifacts.

* `unixfs_cid(data)`: the CID an IPFS daemon gives `data` when it adds it with CIDv1, raw leaves and
  256 KiB chunks (what `ArtifactStore.put_bytes` does), computed locally without storing anything, so
  a trainer can commit to the CIDs of all its training states and upload only those the seed picks.
* Rollout bundles: conversion from and to `trainer.rollout.Rollout`, the Merkle leaves and roots that
  go on chain, and the trainer's EIP-191 signature.
* `fetch_verified`: THE download of a committed artifact (validators, aggregators, auditors): bounded,
  checked against the committed sha256, its failures classified: `ArtifactUnavailableError` (not
  found, daemon down: maybe later; it names the CID) or `ArtifactInvalidError` (too large, wrong hash,
  malformed: the publisher's fault, for good).
* `ArtifactCache`: verified artifacts kept on local disk by sha256, so restarts do not download again.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils.exceptions import ValidationError as EthValidationError
from multiformats import CID, multihash
from pydantic import BaseModel, ValidationError

from protocol.encoding import completion_hash, prompt_hash, proofs_hash, reward_micros
from protocol.errors import ArtifactError, IpfsError, WireFormatError
from protocol.ipfs import CHUNK_SIZE, ArtifactStore, canonical_json
from protocol.merkle import MerkleTree, rollout_leaf, state_leaf
from protocol.wire import (
    ArtifactRef,
    RolloutBundle,
    RolloutRecord,
    UpdateManifest,
    bytes_to_hex,
    hex_to_bytes,
)

if TYPE_CHECKING:
    from trainer.rollout import Rollout

__all__ = [
    "ArtifactCache",
    "ArtifactInvalidError",
    "ArtifactSource",
    "ArtifactUnavailableError",
    "CommittedWork",
    "artifact_ref",
    "bundle_problems",
    "bundle_signer",
    "fetch_verified",
    "manifest_problems",
    "parse_wire",
    "proof_root",
    "record_from_rollout",
    "rollout_from_record",
    "rollout_leaves",
    "sign_bundle",
    "state_root",
    "unixfs_cid",
    "upload_bytes",
    "upload_json",
]

M = TypeVar("M", bound=BaseModel)

MAX_LINKS = 174
"""Children per UnixFS node in the balanced layout (kubo's and js-ipfs's default)."""


class ArtifactUnavailableError(ArtifactError):
    """An artifact could not be fetched now (not found, or the daemon is down); it may appear later."""

    def __init__(self, message: str, cid: str = "") -> None:
        super().__init__(message)
        self.cid = cid
        """The artifact that is missing."""


class ArtifactInvalidError(ArtifactError):
    """An artifact was fetched or sized and is wrong: too large, not the committed hash, malformed."""


# ------------------------------------------------------------------------------------------ local CIDs


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _file_node(children: Sequence[tuple[CID, int, int]]) -> bytes:
    """A dag-pb UnixFS file node over (cid, tsize, content size) children: links first, then data."""
    out = bytearray()
    for cid, tsize, _ in children:
        link = _field_bytes(1, bytes(cid)) + _field_bytes(2, b"") + _field_varint(3, tsize)
        out += _field_bytes(2, link)
    unixfs = bytearray(_field_varint(1, 2))  # Type = File
    unixfs += _field_varint(3, sum(size for _, _, size in children))
    for _, _, size in children:
        unixfs += _field_varint(4, size)
    out += _field_bytes(1, bytes(unixfs))
    return bytes(out)


def unixfs_cid(data: bytes) -> str:
    """The CIDv1 (base32) of `data` as a daemon stores it with raw leaves, sha2-256, 256 KiB chunks and the
    balanced layout (at most 174 links per node); no daemon needed, nothing stored."""
    if len(data) <= CHUNK_SIZE:
        return str(CID("base32", 1, "raw", multihash.wrap(hashlib.sha256(data).digest(), "sha2-256")))
    level: list[tuple[CID, int, int]] = []
    view = memoryview(data)
    for start in range(0, len(data), CHUNK_SIZE):
        chunk = view[start : start + CHUNK_SIZE]
        digest = hashlib.sha256(chunk).digest()
        level.append((CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")), len(chunk), len(chunk)))
    while len(level) > 1:
        parents: list[tuple[CID, int, int]] = []
        for start in range(0, len(level), MAX_LINKS):
            group = level[start : start + MAX_LINKS]
            block = _file_node(group)
            cid = CID("base32", 1, "dag-pb", multihash.wrap(hashlib.sha256(block).digest(), "sha2-256"))
            parents.append((cid, len(block) + sum(t for _, t, _ in group), sum(s for _, _, s in group)))
        level = parents
    return str(level[0][0])


def artifact_ref(data: bytes) -> ArtifactRef:
    """The reference (CID, sha256, size) of `data`, computed locally."""
    return ArtifactRef(
        cid=unixfs_cid(data), sha256=bytes_to_hex(hashlib.sha256(data).digest()), size=len(data)
    )


# ------------------------------------------------------------------------------------------ rollout bundles


def record_from_rollout(r: Rollout) -> RolloutRecord:
    """The wire form of a rollout."""
    return RolloutRecord(
        step=r.step,
        prompt_idx=r.prompt_idx,
        g=r.g,
        prompt_ids=list(r.prompt_ids),
        completion_ids=list(r.completion_ids),
        reward=float(r.reward),
        finished=r.finished,
        proofs=[bytes_to_hex(p) for p in r.proofs],
    )


def rollout_from_record(record: RolloutRecord) -> Rollout:
    """The trainer-side form of a wire rollout."""
    from trainer.rollout import Rollout  # torch: only the roles that replay rollouts import it

    return Rollout(
        step=record.step,
        prompt_idx=record.prompt_idx,
        g=record.g,
        prompt_ids=tuple(record.prompt_ids),
        completion_ids=tuple(record.completion_ids),
        reward=record.reward,
        proofs=tuple(hex_to_bytes(p) for p in record.proofs),
        finished=record.finished,
    )


def rollout_leaves(records: Sequence[RolloutRecord]) -> list[bytes]:
    """The Merkle leaf of every rollout, in the given order (docs/encodings.md)."""
    return [
        rollout_leaf(
            r.step,
            r.prompt_idx,
            r.g,
            prompt_hash(r.prompt_ids),
            completion_hash(r.completion_ids),
            reward_micros(r.reward),
            proofs_hash([hex_to_bytes(p) for p in r.proofs]),
        )
        for r in records
    ]


def proof_root(records: Sequence[RolloutRecord]) -> bytes:
    """proofRoot: the Merkle root over the rollout leaves in (step, prompt_idx, g) order."""
    return MerkleTree(rollout_leaves(records)).root


def state_root(state_hashes: Sequence[bytes]) -> bytes:
    """stateRoot: the Merkle root over `state_leaf(j, sha256(theta_j))`, j = 0..H."""
    return MerkleTree([state_leaf(j, h) for j, h in enumerate(state_hashes)]).root


def sign_bundle(bundle: RolloutBundle, account: LocalAccount) -> RolloutBundle:
    """The bundle with `account`'s EIP-191 signature of its `signing_hash()`."""
    if account.address != bundle.trainer:
        raise WireFormatError(f"bundle of {bundle.trainer} cannot be signed by {account.address}")
    signed = account.sign_message(encode_defunct(primitive=bundle.signing_hash()))
    return bundle.model_copy(update={"signature": bytes_to_hex(bytes(signed.signature))})


def bundle_signer(bundle: RolloutBundle) -> str:
    """The address that signed the bundle; `WireFormatError` if the signature is malformed."""
    signature = hex_to_bytes(bundle.signature)
    if len(signature) != 65:
        raise WireFormatError(f"bundle signature is malformed: {len(signature)} bytes, expected 65")
    try:
        message = encode_defunct(primitive=bundle.signing_hash())
        return str(Account.recover_message(message, signature=signature))
    except (ValueError, TypeError, EthValidationError, BadSignature) as exc:
        raise WireFormatError(f"bundle signature is malformed: {exc}") from None


# ------------------------------------------------------------------------------------------ fetching


def parse_wire(data: bytes, model: type[M], what: str) -> M:
    """Parse JSON bytes as a wire model; `ArtifactInvalidError` naming the first failing fields otherwise."""
    try:
        return model.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise ArtifactInvalidError(f"{what} is not a valid {model.__name__}: {problems}") from None


class ArtifactSource(Protocol):
    """Where artifacts are read from: an `ArtifactStore`, or anything with its `get_bytes`."""

    def get_bytes(self, cid: str, *, max_size: int, expected_sha256: bytes | None = None) -> bytes:
        """The content, at most `max_size` bytes, checked against its CID (and `expected_sha256`)."""
        ...


def fetch_verified(store: ArtifactSource, cid: str, sha256: bytes, limit: int, what: str) -> bytes:
    """Download `cid` (at most `limit` bytes, refused before download when larger) and check that its
    sha256 is `sha256`. Raises `ArtifactUnavailableError` or `ArtifactInvalidError` naming `what`."""
    try:
        data = store.get_bytes(cid, max_size=limit)
    except IpfsError as exc:
        raise ArtifactUnavailableError(f"{what} {cid}: {exc}", cid) from None
    except ArtifactError as exc:
        # The store reports a CID nobody serves as "not found"; everything else it refuses (too large,
        # malformed, blocks that do not match their CID) is wrong content.
        if "not found" in str(exc):
            raise ArtifactUnavailableError(f"{what}: {exc}", cid) from None
        raise ArtifactInvalidError(f"{what}: {exc}") from None
    digest = hashlib.sha256(data).digest()
    if digest != sha256:
        raise ArtifactInvalidError(
            f"{what} {cid} has sha256 {digest.hex()}, but {sha256.hex()} was committed"
        )
    return data


class ArtifactCache:
    """Verified artifacts on local disk, named by their sha256."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, sha256: bytes) -> Path:
        """Where the content with this sha256 is kept."""
        return self.directory / sha256.hex()

    def get(self, sha256: bytes) -> bytes | None:
        """The cached content, or None (a damaged file is removed)."""
        path = self.path(sha256)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).digest() != sha256:
            path.unlink(missing_ok=True)
            return None
        return data

    def put(self, data: bytes) -> bytes:
        """Keep `data`; returns its sha256."""
        digest = hashlib.sha256(data).digest()
        path = self.path(digest)
        if path.exists():
            return digest
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return digest

    def fetch(self, store: ArtifactSource, cid: str, sha256: bytes, limit: int, what: str) -> bytes:
        """The cached content, or `fetch_verified` it and keep it."""
        cached = self.get(sha256)
        if cached is not None:
            if len(cached) > limit:
                raise ArtifactInvalidError(
                    f"{what} {cid} is {len(cached)} bytes, over the limit of {limit} bytes"
                )
            return cached
        data = fetch_verified(store, cid, sha256, limit, what)
        self.put(data)
        return data


def upload_json(store: ArtifactStore, model: BaseModel) -> ArtifactRef:
    """Add a wire model as canonical JSON; returns its reference."""
    data = canonical_json(model)
    artifact = store.put_bytes(data)
    return ArtifactRef(cid=artifact.cid, sha256=bytes_to_hex(artifact.sha256), size=artifact.size)


def upload_bytes(store: ArtifactStore, data: bytes, *, expected: ArtifactRef | None = None) -> ArtifactRef:
    """Add bytes; with `expected`, check that the daemon stored them under the committed CID."""
    artifact = store.put_bytes(data)
    ref = ArtifactRef(cid=artifact.cid, sha256=bytes_to_hex(artifact.sha256), size=artifact.size)
    if expected is not None and (ref.cid != expected.cid or ref.sha256 != expected.sha256):
        raise IpfsError(
            f"IPFS stored {len(data)} bytes as {ref.cid}, but {expected.cid} was committed "
            "(the daemon does not use CIDv1, raw leaves and 256 KiB chunks)"
        )
    return ref


class CommittedWork(Protocol):
    """What a WorkSubmitted event committed (`protocol.network.Submission` and the auditor's
    `SubmissionRecord` both fit)."""

    @property
    def round(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def update_hash(self) -> bytes: ...
    @property
    def update_cid(self) -> str: ...
    @property
    def trainer(self) -> str: ...
    @property
    def bundle_hash(self) -> bytes: ...
    @property
    def bundle_cid(self) -> str: ...
    @property
    def proof_root(self) -> bytes: ...
    @property
    def state_root(self) -> bytes: ...
    @property
    def work_units(self) -> int: ...


def manifest_problems(
    manifest: UpdateManifest,
    sub: CommittedWork,
    *,
    chain_id: int,
    escrow: str,
    task_id: int,
    base_hash: bytes,
    steps: int,
    update_limit: int,
) -> list[str]:
    """Every way an update manifest disagrees with its on-chain commitment and the task (empty: none).

    Part of `protocol.verification`, the one pipeline of validators and auditors.
    """
    expected = {
        "chain_id": chain_id,
        "escrow": escrow,
        "task_id": task_id,
        "round": sub.round,
        "trainer": sub.trainer,
        "base_hash": bytes_to_hex(base_hash),
        "proof_root": bytes_to_hex(sub.proof_root),
        "state_root": bytes_to_hex(sub.state_root),
        "work_units": sub.work_units,
    }
    problems = [
        f"manifest {name} is {getattr(manifest, name)!r}, the chain says {want!r}"
        for name, want in expected.items()
        if getattr(manifest, name) != want
    ]
    if manifest.bundle.cid != sub.bundle_cid or manifest.bundle.digest != sub.bundle_hash:
        problems.append("the manifest names another rollout bundle than the one committed on chain")
    if len(manifest.states) != steps + 1:
        problems.append(f"the manifest lists {len(manifest.states)} states, expected {steps + 1}")
    elif state_root([s.digest for s in manifest.states]) != sub.state_root:
        problems.append("the manifest's state hashes do not give the committed stateRoot")
    if manifest.update.size > update_limit:
        problems.append(f"update of {manifest.update.size} bytes exceeds the limit {update_limit}")
    return problems


def bundle_problems(bundle: RolloutBundle, manifest: UpdateManifest, sub: CommittedWork) -> list[str]:
    """Every way a rollout bundle disagrees with its manifest, its signer or the committed proofRoot."""
    problems = [
        f"bundle {name} is {getattr(bundle, name)!r}, the manifest says {getattr(manifest, name)!r}"
        for name in ("chain_id", "escrow", "task_id", "round", "trainer", "base_hash")
        if getattr(bundle, name) != getattr(manifest, name)
    ]
    try:
        signer = bundle_signer(bundle)
    except WireFormatError as exc:
        problems.append(str(exc))
    else:
        if signer != sub.trainer:
            problems.append(f"the bundle is signed by {signer}, not by the trainer {sub.trainer}")
    keys = [(r.step, r.prompt_idx, r.g) for r in bundle.rollouts]
    if keys != sorted(keys):
        problems.append("bundle rollouts are not in (step, prompt_idx, g) order")
    if not bundle.rollouts:
        problems.append("the bundle holds no rollouts")
    else:
        try:
            if proof_root(bundle.rollouts) != sub.proof_root:
                problems.append("the bundle's rollout leaves do not give the committed proofRoot")
        except WireFormatError as exc:
            problems.append(f"bundle rollouts cannot be hashed: {exc}")
    return problems
