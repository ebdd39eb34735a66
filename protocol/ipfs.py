"""Content-addressed artifact store over an IPFS daemon's `/api/v0` RPC (kubo or js-ipfs).

Writes add content as CIDv1 with raw leaves (sha2-256, 256 KiB chunks) and pin it. Reads trust the
daemon for nothing: every block is fetched with `block/get` and checked against the hash in its CID
before its bytes are used, so the content returned is exactly what the CID names, whatever its size.
The on-chain sha256 (`expected_sha256`) is checked on top whenever it is given. Sizes are bounded
before the content is downloaded (a raw block's size from `block/stat`, a file DAG's from its
verified root node) and again while reading, so a lying daemon cannot make a reader hold more than
`max_size` bytes of content plus one block (at most 2 MiB).

Errors: `IpfsError` when the daemon cannot be reached after retries or refuses a request;
`ArtifactError` for a malformed, missing, too large or corrupted artifact; `WireFormatError` for JSON
that does not validate. Each request has short timeouts; connection errors, timeouts, answers cut off in
the middle and 5xx answers are retried on a new connection under the one retry policy of
`protocol.retry` (exponential jittered waits, bounded tries and time); 4xx answers and bad artifacts are
not.

Why httpx and not `ipfshttpclient`: that client is unmaintained, rejects every current daemon in
`connect()`, reads whole responses into memory and retries nothing; the few endpoints used here
(add, block/stat, block/get, pin/add, id) are simple POSTs.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

import httpx
from multiformats import CID, multihash
from pydantic import BaseModel, ValidationError

from protocol.errors import ArtifactError, ConfigError, IpfsError, WireFormatError
from protocol.retry import DEFAULT_POLICY, RetryPolicy

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHUNK_SIZE",
    "MAX_BLOCK_SIZE",
    "Artifact",
    "ArtifactStore",
    "api_url_from",
    "canonical_json",
    "parse_cid",
    "sha256_cid",
]

CHUNK_SIZE = 262_144
"""Bytes per leaf when adding (`size-262144`); content up to this size is one raw block."""

MAX_BLOCK_SIZE = 2 * 1024 * 1024
"""Largest block accepted from a daemon (kubo refuses to exchange larger ones)."""

_MAX_DEPTH = 32
_MIN_BYTES_PER_BLOCK = 256  # a DAG needing more blocks than size/256 is refused as abusive
_ERROR_BODY_CAP = 64 * 1024
_JSON_BODY_CAP = 1024 * 1024
_NOT_FOUND_HINTS = ("timed out", "timeout", "deadline exceeded", "not found", "could not find")
_UNIXFS_TYPES = {0: "raw", 1: "directory", 2: "file", 3: "metadata", 4: "symlink", 5: "HAMT shard"}

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored artifact: its CIDv1 (base32, where to fetch it), sha256 of its bytes (what goes on chain)
    and its size in bytes."""

    cid: str
    sha256: bytes
    size: int


def sha256_cid(data: bytes) -> str:
    """The CIDv1 (raw codec, sha2-256, base32 `bafk...`) of `data`, computed offline.

    It equals the CID a daemon returns for `put_bytes(data)` when `len(data) <= CHUNK_SIZE` (one raw
    leaf). Larger content is a chunked DAG whose root CID cannot be computed from the bytes alone
    without rebuilding the DAG; that raises `ArtifactError` (verify such content by its sha256).
    """
    if len(data) > CHUNK_SIZE:
        raise ArtifactError(
            f"{len(data)} bytes is more than one chunk ({CHUNK_SIZE}): the daemon stores it as a chunked "
            "DAG, whose CID is not the raw CID of the bytes; compare sha256 instead"
        )
    digest = hashlib.sha256(data).digest()
    return str(CID("base32", 1, "raw", multihash.wrap(digest, "sha2-256")))


def parse_cid(cid: str) -> CID:
    """Parse a CID string (v0 `Qm...` or v1 in any multibase); a malformed one raises `ArtifactError`."""
    if not isinstance(cid, str) or not cid or len(cid) > 512 or cid != cid.strip():
        raise ArtifactError(f"bad CID {cid!r}: expected a CID string such as bafkrei...")
    try:
        return CID.decode(cid)
    except (ValueError, KeyError, TypeError) as exc:  # multiformats' errors derive from these
        raise ArtifactError(f"bad CID {cid!r}: {exc}") from None


def _cid_text(cid: CID) -> str:
    """The canonical text form: base32 for CIDv1, base58btc (its only form) for CIDv0."""
    return str(cid.set(base="base32")) if cid.version == 1 else str(cid)


def api_url_from(api: str) -> str:
    """Normalise a daemon address: `http://host:port` or a multiaddr `/ip4/127.0.0.1/tcp/5001/http`."""
    text = api.strip()
    if text.startswith("/"):
        parts = text.strip("/").split("/")
        if len(parts) in (4, 5) and parts[0] in ("ip4", "ip6", "dns", "dns4", "dns6") and parts[2] == "tcp":
            scheme = parts[4] if len(parts) == 5 else "http"
            host = f"[{parts[1]}]" if parts[0] == "ip6" else parts[1]
            if scheme in ("http", "https") and parts[3].isdigit():
                return f"{scheme}://{host}:{parts[3]}"
        raise ConfigError(f"unsupported IPFS API multiaddr {api!r}: expected /ip4/HOST/tcp/PORT[/http]")
    url = httpx.URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"bad IPFS API address {api!r}: expected http://HOST:PORT or /ip4/HOST/tcp/PORT")
    base = str(url.copy_with(query=None, fragment=None)).rstrip("/")
    return base.removesuffix("/api/v0")


def canonical_json(model: BaseModel) -> bytes:
    """The canonical bytes of a wire model: JSON by alias, keys sorted, no whitespace, UTF-8, no NaN."""
    try:
        data = model.model_dump(mode="json", by_alias=True)
        return json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except ValueError as exc:
        raise WireFormatError(f"{type(model).__name__} cannot be written as canonical JSON: {exc}") from None


# -- protobuf (dag-pb and UnixFS) ----------------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    for i in range(pos, min(pos + 10, len(buf))):
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i + 1
        shift += 7
    raise ValueError("truncated or overlong varint")


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message; varints as int, length-delimited as bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("length-delimited field runs past the end")
            yield number, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(buf):
                raise ValueError("fixed-size field runs past the end")
        else:
            raise ValueError(f"unsupported wire type {wire}")


@dataclass(frozen=True, slots=True)
class _FileNode:
    """A UnixFS file node: inline bytes first, then its children's content in link order."""

    data: bytes
    links: list[CID]
    blocksizes: list[int]
    filesize: int | None


def _decode_file_node(block: bytes, where: str) -> _FileNode:
    try:
        links: list[CID] = []
        unixfs: bytes | None = None
        for number, value in _fields(block):
            if number == 2 and isinstance(value, bytes):
                link_hash = next((v for n, v in _fields(value) if n == 1 and isinstance(v, bytes)), None)
                if link_hash is None:
                    raise ValueError("a link without a hash")
                links.append(CID.decode(link_hash))
            elif number == 1 and isinstance(value, bytes):
                unixfs = value
        if unixfs is None:
            raise ValueError("no UnixFS data")
        kind: int | None = None
        data = b""
        filesize: int | None = None
        blocksizes: list[int] = []
        for number, value in _fields(unixfs):
            if number == 1 and isinstance(value, int):
                kind = value
            elif number == 2 and isinstance(value, bytes):
                data = value
            elif number == 3 and isinstance(value, int):
                filesize = value
            elif number == 4:
                if isinstance(value, int):
                    blocksizes.append(value)
                else:  # packed encoding
                    pos = 0
                    while pos < len(value):
                        size, pos = _varint(value, pos)
                        blocksizes.append(size)
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{where}: not a valid dag-pb/UnixFS node: {exc}") from None
    if kind not in (0, 2):
        name = _UNIXFS_TYPES.get(kind, f"type {kind}") if kind is not None else "untyped node"
        raise ArtifactError(f"{where}: a UnixFS {name}, not a file")
    if blocksizes and len(blocksizes) != len(links):
        raise ArtifactError(f"{where}: {len(blocksizes)} block sizes for {len(links)} links")
    return _FileNode(data=data, links=links, blocksizes=blocksizes, filesize=filesize)


def _check_block(cid: CID, block: bytes, where: str) -> None:
    """Raise `ArtifactError` unless `block` hashes to the multihash in `cid`."""
    name = cid.hashfun.name
    try:
        if name == "sha2-256":
            ok = hashlib.sha256(block).digest() == cid.raw_digest
        else:
            ok = multihash.digest(block, name, size=len(cid.raw_digest)) == cid.digest
    except (ValueError, KeyError, NotImplementedError) as exc:
        raise ArtifactError(f"{where}: cannot verify block {_cid_text(cid)}: hash {name}: {exc}") from None
    if not ok:
        raise ArtifactError(
            f"{where}: corrupted: the {len(block)} bytes served for block {_cid_text(cid)} do not match "
            f"its {name} hash"
        )


@dataclass(slots=True)
class _Budget:
    """What one read may still consume: content bytes and block fetches."""

    cid: str
    max_size: int
    max_blocks: int
    produced: int = 0
    blocks: int = 0
    digest: Any = field(default_factory=hashlib.sha256)

    def take(self, chunk: bytes) -> None:
        self.produced += len(chunk)
        if self.produced > self.max_size:
            raise ArtifactError(
                f"artifact {self.cid} holds more than its limit of {self.max_size} bytes "
                f"(read {self.produced} so far)"
            )
        self.digest.update(chunk)


@dataclass(frozen=True, slots=True)
class _Root:
    cid: CID
    text: str
    size: int  # content bytes, from the raw block's size or the verified root node's filesize
    block: bytes
    node: _FileNode | None  # None for a raw block


class _NotFoundError(Exception):
    """Internal: the daemon could not find a CID within the time it was given."""


class _ServerError(Exception):
    """Internal: a 5xx answer (retried)."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _ServerError)


# -- the store -----------------------------------------------------------------------------------------


class ArtifactStore:
    """Put and get verified artifacts through an IPFS daemon's RPC API.

    `policy`: timeouts and retries of each request (`protocol.retry.DEFAULT_POLICY` by default); `timeout`
    (its read timeout), `retries` (tries after the first), `backoff` (first wait), `max_backoff` and
    `budget` override parts of it. `find_timeout` is how long the daemon may look for a CID before it
    counts as not found. `transport` replaces the HTTP transport (tests).
    """

    def __init__(
        self,
        api_url: str,
        *,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        find_timeout: float = 10.0,
        max_backoff: float | None = None,
        budget: float | None = None,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if (
            (timeout is not None and timeout <= 0)
            or find_timeout <= 0
            or (backoff is not None and backoff < 0)
            or (retries is not None and retries < 0)
        ):
            raise ConfigError("timeout and find_timeout must be > 0, backoff and retries >= 0")
        self.api_url = api_url_from(api_url)
        base = policy or DEFAULT_POLICY
        first = backoff if backoff is not None else base.first_wait
        try:
            self.policy = base.with_(
                read_timeout=timeout,
                attempts=None if retries is None else retries + 1,
                first_wait=first,
                max_wait=max(first, max_backoff if max_backoff is not None else base.max_wait),
                budget=budget,
            )
        except ValueError as exc:
            raise ConfigError(f"IPFS retry policy: {exc}") from None
        self.find_timeout = find_timeout
        # trust_env=False: a proxy set for package registries must not intercept a loopback daemon.
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            trust_env=False,
            transport=transport,
        )

    @property
    def timeout(self) -> float:
        """Seconds to wait for an answer to one request (the policy's read timeout)."""
        return self.policy.read_timeout

    @property
    def retries(self) -> int:
        """Tries after the first."""
        return self.policy.attempts - 1

    def __enter__(self) -> ArtifactStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    # -- writes ------------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Artifact:
        """Add and pin `data` (CIDv1, raw leaves); the CID of single-chunk content is checked offline."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise ArtifactError(f"put_bytes takes bytes, not {type(data).__name__}")
        payload = bytes(data)
        cid = self._add(lambda: payload, len(payload))
        if len(payload) <= CHUNK_SIZE and cid != sha256_cid(payload):
            raise IpfsError(
                f"IPFS daemon at {self.api_url} stored {len(payload)} bytes as {cid}, expected "
                f"{sha256_cid(payload)}: it ignores cid-version=1/raw-leaves"
            )
        return Artifact(cid=cid, sha256=hashlib.sha256(payload).digest(), size=len(payload))

    def put_file(self, path: str | Path) -> Artifact:
        """Add and pin a file, streamed from disk (it must not change while this runs)."""
        path = Path(path)
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    if size < CHUNK_SIZE + 1:
                        head += chunk[: CHUNK_SIZE + 1 - size]
                    digest.update(chunk)
                    size += len(chunk)
        except OSError as exc:
            raise ArtifactError(f"cannot read {path}: {exc}") from None

        def opener() -> BinaryIO:
            try:
                return path.open("rb")
            except OSError as exc:
                raise ArtifactError(f"cannot read {path}: {exc}") from None

        cid = self._add(opener, size)
        if size <= CHUNK_SIZE and cid != sha256_cid(head):
            raise IpfsError(
                f"IPFS daemon at {self.api_url} stored {path} ({size} bytes) as {cid}, expected "
                f"{sha256_cid(head)}: the file changed, or the daemon ignores raw-leaves"
            )
        return Artifact(cid=cid, sha256=digest.digest(), size=size)

    def put_json(self, model: BaseModel) -> Artifact:
        """Add a pydantic wire model as canonical JSON (`canonical_json`)."""
        return self.put_bytes(canonical_json(model))

    def put_tensors(self, tensors: Mapping[str, torch.Tensor]) -> Artifact:
        """Add tensors as a canonical safetensors checkpoint (`trainer.checkpoint.canonical_bytes`)."""
        from trainer.checkpoint import canonical_bytes

        return self.put_bytes(canonical_bytes(tensors))

    def pin(self, cid: str, *, timeout: float | None = None) -> None:
        """Pin a CID and the DAG under it, so that the daemon keeps and serves it.

        The daemon may spend `timeout` s (default: the store's `timeout`) fetching what it lacks;
        content it cannot find in that time raises `ArtifactError`.
        """
        text = _cid_text(parse_cid(cid))
        limit = timeout if timeout is not None else self.timeout
        try:
            self._call("pin/add", {"arg": text, "recursive": "true"}, find=True, find_timeout=limit)
        except _NotFoundError:
            raise self._not_found(text, limit) from None

    # -- reads -------------------------------------------------------------------------------------

    def exists(self, cid: str, *, timeout: float | None = None) -> bool:
        """Whether the daemon can find the CID's root block within `timeout` s (default `find_timeout`)."""
        text = _cid_text(parse_cid(cid))
        try:
            self._call("block/stat", {"arg": text}, find=True, find_timeout=timeout)
        except _NotFoundError:
            return False
        return True

    def size(self, cid: str) -> int:
        """The artifact's content size in bytes, without fetching the content: a raw block's size from
        `block/stat`, a file DAG's from its root node (fetched and verified)."""
        return self._resolve(cid, max_size=None).size

    def get_bytes(self, cid: str, *, max_size: int, expected_sha256: bytes | None = None) -> bytes:
        """Fetch the content of `cid`, verified block by block, at most `max_size` bytes.

        Raises `ArtifactError` if the CID is malformed or not found, the content is larger than
        `max_size` (detected before downloading it), a block does not match its CID, or the content's
        sha256 is not `expected_sha256`.
        """
        expected = _expected(expected_sha256)
        root = self._resolve(cid, max_size)
        out = bytearray()
        budget = self._budget(root, max_size)
        for chunk in self._content(root, budget):
            out += chunk
        self._check_sha256(root, budget, expected)
        return bytes(out)

    def get_file(
        self, cid: str, path: str | Path, *, max_size: int, expected_sha256: bytes | None = None
    ) -> Artifact:
        """Fetch `cid` into `path` with the checks of `get_bytes`, streaming to disk.

        The content goes to a temporary file beside `path`, renamed onto it only once every check has
        passed: on any error `path` is left as it was.
        """
        expected = _expected(expected_sha256)
        root = self._resolve(cid, max_size)
        path = Path(path)
        budget = self._budget(root, max_size)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as exc:
            raise ArtifactError(f"cannot write {path}: {exc}") from None
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in self._content(root, budget):
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            self._check_sha256(root, budget, expected)
            os.replace(tmp, path)
        except OSError as exc:
            raise ArtifactError(f"cannot write {path}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)
        return Artifact(cid=root.text, sha256=budget.digest.digest(), size=budget.produced)

    def get_json(
        self, cid: str, model_type: type[M], *, max_size: int, expected_sha256: bytes | None = None
    ) -> M:
        """Fetch a JSON artifact and parse it as `model_type`; data that does not validate raises
        `WireFormatError`."""
        data = self.get_bytes(cid, max_size=max_size, expected_sha256=expected_sha256)
        try:
            return model_type.model_validate_json(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            raise WireFormatError(
                f"artifact {cid} is not a valid {model_type.__name__} "
                f"({exc.error_count()} errors): {problems}"
            ) from None

    def get_tensors(
        self,
        cid: str,
        *,
        max_size: int,
        expected_sha256: bytes | None = None,
        require_canonical: bool = True,
    ) -> dict[str, torch.Tensor]:
        """Fetch a safetensors checkpoint and parse it strictly (`trainer.checkpoint.load_tensors`;
        a defect raises `CheckpointError`). Never unpickles."""
        from trainer.checkpoint import load_tensors

        data = self.get_bytes(cid, max_size=max_size, expected_sha256=expected_sha256)
        return load_tensors(data, max_bytes=max_size, require_canonical=require_canonical)

    def version(self) -> str:
        """The daemon's version string; raises `IpfsError` when it does not answer."""
        body = self._call("version", {}, cap=_JSON_BODY_CAP)
        try:
            return str(json.loads(body)["Version"])
        except (ValueError, KeyError, TypeError):
            raise IpfsError(f"IPFS daemon at {self.api_url} answered `version` with {body[:200]!r}") from None

    # -- internals: reading ------------------------------------------------------------------------

    def _resolve(self, cid: str, max_size: int | None) -> _Root:
        """Parse, find and size the root; raise before any content is fetched if it is too large."""
        if max_size is not None and (not isinstance(max_size, int) or max_size < 0):
            raise ArtifactError(f"max_size must be a non-negative int, got {max_size!r}")
        parsed = parse_cid(cid)
        text = _cid_text(parsed)
        if parsed.codec.name not in ("raw", "dag-pb"):
            raise ArtifactError(
                f"artifact {text}: codec {parsed.codec.name} is not a file (want raw or dag-pb)"
            )
        try:
            stat = self._call("block/stat", {"arg": text}, find=True)
        except _NotFoundError:
            raise self._not_found(text) from None
        try:
            block_size = int(json.loads(stat)["Size"])
        except (ValueError, KeyError, TypeError):
            raise IpfsError(
                f"IPFS daemon at {self.api_url} answered block/stat with {stat[:200]!r}"
            ) from None
        if parsed.codec.name == "raw":
            if max_size is not None and block_size > max_size:
                raise self._too_large(text, block_size, max_size)
            if max_size is None:  # size() only
                return _Root(parsed, text, block_size, b"", None)
            if block_size > MAX_BLOCK_SIZE:  # `add` never makes one; refusing it bounds memory
                raise ArtifactError(
                    f"artifact {text}: raw block of {block_size} bytes exceeds {MAX_BLOCK_SIZE}"
                )
            block = self._block(parsed, text, cap=block_size)
            if len(block) != block_size:
                raise ArtifactError(
                    f"artifact {text}: the daemon announced {block_size} bytes and served {len(block)}"
                )
            return _Root(parsed, text, block_size, block, None)
        if block_size > MAX_BLOCK_SIZE:
            raise ArtifactError(f"artifact {text}: root block of {block_size} bytes exceeds {MAX_BLOCK_SIZE}")
        block = self._block(parsed, text, cap=MAX_BLOCK_SIZE)
        node = _decode_file_node(block, f"artifact {text}")
        size = node.filesize if node.filesize is not None else len(node.data) + sum(node.blocksizes)
        if max_size is not None and size > max_size:
            raise self._too_large(text, size, max_size)
        return _Root(parsed, text, size, block, node)

    def _budget(self, root: _Root, max_size: int) -> _Budget:
        return _Budget(root.text, max_size, max_blocks=16 + max_size // _MIN_BYTES_PER_BLOCK)

    def _content(self, root: _Root, budget: _Budget) -> Iterator[bytes]:
        """The verified content under `root`, in order, as it is fetched."""
        if root.node is None:
            budget.take(root.block)
            yield root.block
            return
        yield from self._walk(root.node, root.text, budget, depth=0)
        if budget.produced != root.size:
            raise ArtifactError(
                f"artifact {root.text}: the root announces {root.size} bytes, "
                f"its blocks hold {budget.produced}"
            )

    def _walk(self, node: _FileNode, where: str, budget: _Budget, depth: int) -> Iterator[bytes]:
        if depth > _MAX_DEPTH:
            raise ArtifactError(f"artifact {budget.cid}: DAG deeper than {_MAX_DEPTH} levels")
        start = budget.produced
        if node.data:
            budget.take(node.data)
            yield node.data
        for i, child in enumerate(node.links):
            budget.blocks += 1
            if budget.blocks > budget.max_blocks:
                raise ArtifactError(
                    f"artifact {budget.cid}: more than {budget.max_blocks} blocks "
                    f"for at most {budget.max_size} bytes"
                )
            child_text = _cid_text(child)
            before = budget.produced
            if child.codec.name == "raw":
                cap = min(MAX_BLOCK_SIZE, budget.max_size - budget.produced)
                block = self._block(child, budget.cid, cap=cap)
                if len(block) > cap:
                    raise self._too_large(
                        budget.cid, budget.produced + len(block), budget.max_size, while_reading=True
                    )
                budget.take(block)
                yield block
            elif child.codec.name == "dag-pb":
                block = self._block(child, budget.cid, cap=MAX_BLOCK_SIZE)
                if len(block) > MAX_BLOCK_SIZE:
                    raise ArtifactError(
                        f"artifact {budget.cid}: block {child_text} exceeds {MAX_BLOCK_SIZE} bytes"
                    )
                sub = _decode_file_node(block, f"artifact {budget.cid}, block {child_text}")
                yield from self._walk(sub, child_text, budget, depth + 1)
            else:
                raise ArtifactError(f"artifact {budget.cid}: link to a {child.codec.name} block {child_text}")
            if node.blocksizes and budget.produced - before != node.blocksizes[i]:
                raise ArtifactError(
                    f"artifact {budget.cid}: block {child_text} holds {budget.produced - before} bytes, "
                    f"its parent {where} says {node.blocksizes[i]}"
                )
        if node.filesize is not None and budget.produced - start != node.filesize:
            raise ArtifactError(
                f"artifact {budget.cid}: node {where} announces {node.filesize} bytes, "
                f"holds {budget.produced - start}"
            )

    def _block(self, cid: CID, artifact: str, *, cap: int) -> bytes:
        """One block, at most `cap` + 1 bytes read, verified against its CID when it is not over `cap`."""
        text = _cid_text(cid)
        try:
            block = self._call("block/get", {"arg": text}, cap=cap, find=True)
        except _NotFoundError:
            if text == artifact:
                raise self._not_found(text) from None
            raise ArtifactError(
                f"artifact {artifact}: block {text} not found within {self.find_timeout:g} s"
            ) from None
        if len(block) <= cap:
            _check_block(cid, block, f"artifact {artifact}")
        return block

    def _check_sha256(self, root: _Root, budget: _Budget, expected: bytes | None) -> None:
        if expected is not None and budget.digest.digest() != expected:
            raise ArtifactError(
                f"artifact {root.text} ({budget.produced} bytes) has sha256 {budget.digest.hexdigest()}, "
                f"expected {expected.hex()}"
            )

    def _not_found(self, text: str, seconds: float | None = None) -> ArtifactError:
        limit = seconds if seconds is not None else self.find_timeout
        return ArtifactError(
            f"artifact {text} not found: the IPFS daemon at {self.api_url} could not find it "
            f"within {limit:g} s"
        )

    @staticmethod
    def _too_large(text: str, size: int, max_size: int, *, while_reading: bool = False) -> ArtifactError:
        if while_reading:
            return ArtifactError(
                f"artifact {text} holds at least {size} bytes, over the limit of {max_size} bytes "
                "(found while reading; its root announced less)"
            )
        return ArtifactError(
            f"artifact {text} is {size} bytes, over the limit of {max_size} bytes (refused before download)"
        )

    # -- internals: HTTP ---------------------------------------------------------------------------

    def _add(self, body: Callable[[], bytes | BinaryIO], size: int) -> str:
        params = {
            "cid-version": "1",
            "raw-leaves": "true",
            "hash": "sha2-256",
            "chunker": f"size-{CHUNK_SIZE}",
            "pin": "true",
            "cid-base": "base32",
        }
        answer = self._call("add", params, cap=_JSON_BODY_CAP, upload=body)
        cid_text: str | None = None
        try:
            for line in answer.decode().splitlines():
                if line.strip():
                    item = json.loads(line)
                    if isinstance(item, dict) and "Hash" in item:
                        cid_text = str(item["Hash"])
        except (UnicodeDecodeError, ValueError):
            cid_text = None
        if cid_text is None:
            raise IpfsError(
                f"IPFS daemon at {self.api_url} answered `add` of {size} bytes with {answer[:200]!r}"
            )
        try:
            return _cid_text(parse_cid(cid_text))
        except ArtifactError:
            raise IpfsError(
                f"IPFS daemon at {self.api_url} returned a bad CID {cid_text!r} for `add`"
            ) from None

    def _call(
        self,
        endpoint: str,
        params: dict[str, str],
        *,
        cap: int = _JSON_BODY_CAP,
        find: bool = False,
        find_timeout: float | None = None,
        upload: Callable[[], bytes | BinaryIO] | None = None,
    ) -> bytes:
        """POST `/api/v0/<endpoint>`, retrying connection errors and 5xx; returns at most cap+1 bytes.

        With `find`, the daemon gets a time limit to look for the CID and a failure within it raises
        `_NotFoundError` instead of being retried.
        """
        url = f"{self.api_url}/api/v0/{endpoint}"
        query = dict(params)
        timeout: httpx.Timeout | None = None
        if find:
            limit = find_timeout if find_timeout is not None else self.find_timeout
            query["timeout"] = f"{max(1, round(limit * 1000))}ms"
            timeout = httpx.Timeout(
                max(self.policy.read_timeout, limit + 5.0), connect=self.policy.connect_timeout
            )
        tries = 0

        def attempt() -> bytes:
            nonlocal tries
            tries += 1
            opened = upload() if upload is not None else None
            try:
                files = None if opened is None else {"file": ("data", opened, "application/octet-stream")}
                with self._client.stream(
                    "POST", url, params=query, files=files, timeout=timeout or httpx.USE_CLIENT_DEFAULT
                ) as response:
                    if response.status_code < 400:
                        return _read_capped(response, cap)
                    message = _error_message(_read_capped(response, _ERROR_BODY_CAP))
                    if response.status_code < 500:
                        raise IpfsError(
                            f"IPFS daemon at {self.api_url} refused {endpoint} "
                            f"(HTTP {response.status_code}): {message}"
                        )
                    if find and any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
                        raise _NotFoundError(message)
                    raise _ServerError(f"HTTP {response.status_code} from {endpoint}: {message}")
            finally:
                if opened is not None and not isinstance(opened, bytes):
                    opened.close()

        started = time.monotonic()
        try:
            return self.policy.call(attempt, transient=_is_transient)
        except _ServerError as exc:
            tried = f"{tries} attempts in {time.monotonic() - started:.1f} s"
            raise IpfsError(
                f"IPFS daemon at {self.api_url} keeps failing {endpoint}: {exc} ({tried})"
            ) from None
        except httpx.TransportError as exc:
            tried = f"{tries} attempts in {time.monotonic() - started:.1f} s"
            raise IpfsError(
                f"IPFS daemon at {self.api_url} is not answering: {type(exc).__name__}: "
                f"{str(exc) or 'no detail'} ({tried}); start it or pass --ipfs"
            ) from None


def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """At most `cap` + 1 bytes of the body: one byte over is enough to know it is too large."""
    out = bytearray()
    for chunk in response.iter_bytes():
        out += chunk[: cap + 1 - len(out)]
        if len(out) > cap:
            break
    return bytes(out)


def _error_message(body: bytes) -> str:
    try:
        message = json.loads(body).get("Message")
        if isinstance(message, str) and message:
            return message
    except (ValueError, AttributeError):
        pass
    return body[:500].decode(errors="replace").strip() or "(empty answer)"


def _expected(expected_sha256: bytes | None) -> bytes | None:
    if expected_sha256 is None:
        return None
    if not isinstance(expected_sha256, bytes) or len(expected_sha256) != 32:
        raise ArtifactError(f"expected_sha256 must be 32 bytes, got {expected_sha256!r}")
    return expected_sha256
