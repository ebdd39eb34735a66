"""Where a role runs: the network (RPC, deployment, IPFS), its account, and what it knows of a task.

    config = load_network("http://127.0.0.1:8545", deployment=Path("deployment.json"))
    session = connect(config, load_account(Path("trainer.json"), password))
    task = TaskView(session, task_id)          # chain config + the verified task spec + event caches

A network is named by `--network`: a network file (JSON or YAML with `rpc_url`, `deployment`,
`ipfs_api`, as `trustrl deploy` writes it; optionally `rpc_fallbacks`, more endpoints of the same chain,
and `rpc_timeout`), an RPC URL (then `--deployment FILE` says where the contracts are), or `local`
(anvil's default `http://127.0.0.1:8545`). Accounts come only from encrypted keystores; the password
comes from an environment variable or a prompt, never a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.chain import ChainClient, load_keystore_account
from protocol.contracts import (
    DeploymentAddresses,
    ProtocolClient,
    Role,
    TaskConfig,
    TaskState,
    attach_protocol,
)
from protocol.display import amount, to_units
from protocol.errors import ConfigError, ContractRevert
from protocol.ipfs import ArtifactStore
from protocol.retry import DEFAULT_POLICY, RetryPolicy

if TYPE_CHECKING:
    from protocol.artifacts import ArtifactCache
    from protocol.wire import TaskSpec

__all__ = [
    "DEFAULT_IPFS",
    "LOCAL_RPC",
    "NetworkConfig",
    "Session",
    "Submission",
    "TaskView",
    "check_spec",
    "checksum",
    "connect",
    "load_account",
    "load_deployment",
    "load_network",
    "password_from_env",
    "policy_of",
    "yaml_error",
]

LOCAL_RPC = "http://127.0.0.1:8545"
DEFAULT_IPFS = "http://127.0.0.1:5001"
DEV_CHAIN_IDS = (31337, 1337)


class NetworkConfig(BaseModel):
    """A network file: where the chain, the contracts and the IPFS node are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpc_url: str = Field(min_length=1)
    """JSON-RPC endpoint of the chain."""
    rpc_fallbacks: tuple[str, ...] = ()
    """More JSON-RPC endpoints of the same chain, tried in turn when a request to the current one fails."""
    rpc_timeout: float | None = Field(default=None, gt=0, le=300)
    """Seconds to wait for the answer to one RPC or IPFS request (default: `protocol.retry.DEFAULT_POLICY`,
    6 s); raise it for a slow endpoint, at the cost of noticing a dead one later."""
    deployment: DeploymentAddresses
    """The contracts (as `trustrl deploy` writes them)."""
    ipfs_api: str = DEFAULT_IPFS
    """The IPFS node's RPC API (kubo or js-ipfs)."""
    poll_interval: float | None = Field(default=None, gt=0, le=60)
    """Seconds between polls of the chain (default: 0.3 on a dev chain, 3 elsewhere)."""


def _read_structured(path: Path, what: str) -> Any:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {yaml_error(exc)}") from None


def yaml_error(exc: yaml.YAMLError) -> str:
    """A YAML parse error as one line that keeps where it is: `line 3, column 7: found ... (while ...)`."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" + (f" ({context})" if context else "")


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "<root>"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def load_deployment(path: Path) -> DeploymentAddresses:
    """A deployment file (JSON of `DeploymentAddresses`, or a network file holding one)."""
    data = _read_structured(path, "deployment file")
    if isinstance(data, dict) and "deployment" in data:
        data = data["deployment"]
    try:
        return DeploymentAddresses.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"deployment file {path}: {_validation_message(exc)}") from None


def load_network(
    network: str, *, deployment: Path | None = None, ipfs_api: str | None = None
) -> NetworkConfig:
    """Resolve `--network` (a network file, an RPC URL, or `local`) into a `NetworkConfig`."""
    if network == "local":
        network = LOCAL_RPC
    if network.startswith(("http://", "https://")):
        if deployment is None:
            raise ConfigError(
                f"--network {network} is an RPC URL: also give --deployment FILE (from `trustrl deploy`)"
            )
        config = NetworkConfig(
            rpc_url=network, deployment=load_deployment(deployment), ipfs_api=ipfs_api or DEFAULT_IPFS
        )
        return config
    path = Path(network)
    if not path.is_file():
        raise ConfigError(
            f"--network {network!r} is neither an RPC URL (http://...), `local`, nor a network file"
        )
    data = _read_structured(path, "network file")
    if not isinstance(data, dict):
        raise ConfigError(f"network file {path} must hold a mapping (rpc_url, deployment, ipfs_api)")
    if deployment is not None:
        data = {**data, "deployment": load_deployment(deployment).model_dump()}
    if ipfs_api is not None:
        data = {**data, "ipfs_api": ipfs_api}
    try:
        return NetworkConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"network file {path}: {_validation_message(exc)}") from None


def password_from_env(name: str) -> str | None:
    """The keystore password from environment variable `name`, if set."""
    value = os.environ.get(name)
    return value if value else None


def load_account(keystore: Path, password: str) -> LocalAccount:
    """Decrypt a V3 keystore file (`ConfigError` on a wrong password or a bad file)."""
    return load_keystore_account(keystore, password)


class Session:
    """One account on one network: chain client, typed contracts, IPFS store and a home directory."""

    def __init__(
        self,
        config: NetworkConfig,
        client: ChainClient,
        proto: ProtocolClient,
        home: Path,
        *,
        ipfs_retries: int | None = None,
        find_timeout: float | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.proto = proto
        self.home = home
        self._ipfs_retries = ipfs_retries
        # Without peers (a local daemon) a missing CID is only "not found" after the whole timeout.
        dev = config.deployment.chain_id in DEV_CHAIN_IDS
        self._find_timeout = find_timeout if find_timeout is not None else (1.0 if dev else 10.0)
        self._store: ArtifactStore | None = None
        self._decimals: int | None = None

    @property
    def address(self) -> str:
        """The account's checksum address."""
        return str(self.client.address)

    @property
    def chain_id(self) -> int:
        """The chain id."""
        return self.config.deployment.chain_id

    @property
    def store(self) -> ArtifactStore:
        """The IPFS artifact store (opened on first use)."""
        if self._store is None:
            self._store = ArtifactStore(
                self.config.ipfs_api,
                policy=self.client.policy,
                retries=self._ipfs_retries,
                find_timeout=self._find_timeout,
            )
        return self._store

    @property
    def decimals(self) -> int:
        """The token's `decimals()` (read once): amounts are typed and shown in tokens of that many
        decimals."""
        if self._decimals is None:
            token = self.proto.token
            try:
                value = int(self.client.call(token.functions.decimals()))
            except ContractRevert:
                raise ConfigError(
                    f"the token {token.address} has no decimals(): amounts in tokens cannot be converted"
                ) from None
            if not 0 <= value <= 36:
                raise ConfigError(f"the token {token.address} reports {value} decimals (expected 0..36)")
            self._decimals = value
        return self._decimals

    def tokens(self, units: int) -> str:
        """Base units as tokens, for people (`protocol.display.amount`)."""
        return amount(units, self.decimals)

    def units(self, tokens: object) -> int:
        """Tokens typed by a person as base units (`ConfigError` when malformed or too precise)."""
        return to_units(str(tokens), self.decimals)

    @property
    def poll_interval(self) -> float:
        """Seconds between chain polls."""
        if self.config.poll_interval is not None:
            return self.config.poll_interval
        return 0.3 if self.chain_id in DEV_CHAIN_IDS else 3.0

    def chain_dir(self) -> Path:
        """This deployment's directory under the home directory."""
        escrow = self.config.deployment.task_escrow.lower()[:10]
        return self.home / f"chain-{self.chain_id}-{escrow}"

    def task_dir(self, task_id: int, role: str) -> Path:
        """This account's working directory for one task and role (journal, states, caches)."""
        return self.chain_dir() / f"task-{task_id}" / f"{role}-{self.address}"

    def close(self) -> None:
        """Close the IPFS connections."""
        if self._store is not None:
            self._store.close()
            self._store = None


def policy_of(config: NetworkConfig) -> RetryPolicy:
    """The retry policy of a network's requests: the default, with the network file's timeout."""
    return DEFAULT_POLICY.with_(read_timeout=config.rpc_timeout)


def connect(
    config: NetworkConfig,
    account: LocalAccount | str,
    home: Path,
    *,
    timeout: float = 60.0,
    ipfs_retries: int | None = None,
    find_timeout: float | None = None,
) -> Session:
    """Open a session: the chain client (checked against the deployment) and the contracts.

    `timeout`: seconds to wait for a receipt. Every request has the short timeouts and bounded retries of
    `policy_of(config)` (`ipfs_retries` overrides the tries of IPFS requests)."""
    from protocol.compile import compile_contracts

    compiled = compile_contracts()
    client = ChainClient(
        config.rpc_url,
        account,
        abis=[c.abi for c in compiled.values()],
        timeout=timeout,
        fallbacks=config.rpc_fallbacks,
        policy=policy_of(config),
    )
    deployment = attach_protocol(client, config.deployment, compiled=compiled)
    return Session(
        config,
        client,
        ProtocolClient(client, deployment),
        home,
        ipfs_retries=ipfs_retries,
        find_timeout=find_timeout,
    )


# ------------------------------------------------------------------------------------------ a task's view


@dataclass(frozen=True)
class Submission:
    """One WorkSubmitted event."""

    round: int
    index: int
    trainer: str
    bundle_hash: bytes
    bundle_cid: str
    update_hash: bytes
    update_cid: str
    proof_root: bytes
    state_root: bytes
    work_units: int
    block: int


class _EventLog:
    """Every event of one kind of a task, scanned incrementally from the task's creation block."""

    def __init__(self, view: TaskView, contract_name: str, event: str) -> None:
        self.view = view
        self.contract_name = contract_name
        self.event = event
        self.scanned = -1
        self.items: list[dict[str, Any]] = []

    def all(self) -> list[dict[str, Any]]:
        client = self.view.session.client
        contract = getattr(self.view.session.proto.deployment, self.contract_name)
        latest = client.block_number()
        start = max(self.view.first_block, self.scanned + 1)
        if start <= latest:
            for log in client.get_logs(contract, self.event, start, latest, taskId=self.view.task_id):
                args = dict(log["args"])
                args["_block"] = int(log["blockNumber"])
                self.items.append(args)
            self.scanned = latest
        return self.items


class TaskView:
    """What a participant knows of a task: its on-chain configuration, its verified spec, and its events.

    `spec` is downloaded (bounded), checked against the on-chain sha256 and against the on-chain
    parameters it repeats; a disagreement raises `ConfigError` (the task is refused).
    """

    def __init__(self, session: Session, task_id: int) -> None:
        self.session = session
        self.task_id = task_id
        self.first_block = session.config.deployment.block
        self._config: TaskConfig | None = None
        self._created: dict[str, Any] | None = None
        self._spec: TaskSpec | None = None
        self._ml: tuple[Any, Any, Any] | None = None
        self._logs: dict[str, _EventLog] = {}
        self._cache: ArtifactCache | None = None

    @property
    def proto(self) -> ProtocolClient:
        """The account's contracts."""
        return self.session.proto

    def exists(self) -> bool:
        """Whether the task has been created."""
        return 1 <= self.task_id <= int(self.session.client.call(self.proto.escrow.functions.taskCount()))

    @property
    def config(self) -> TaskConfig:
        """The task's immutable on-chain configuration."""
        if self._config is None:
            if not self.exists():
                raise ConfigError(f"task {self.task_id} does not exist on this deployment")
            self._config = self.proto.task_config(self.task_id)
        return self._config

    def state(self) -> TaskState:
        """The task's live state."""
        return self.proto.task_state(self.task_id)

    @property
    def created(self) -> dict[str, Any]:
        """The TaskCreated event's parameters (specCid, initialModelCid, ...) and `_block`."""
        if self._created is None:
            _ = self.config
            events = self.session.client.get_logs(
                self.proto.escrow, "TaskCreated", self.first_block, taskId=self.task_id
            )
            if not events:
                raise ConfigError(f"task {self.task_id}: no TaskCreated event since block {self.first_block}")
            event = events[0]
            params = event["args"]["params"]
            self._created = {
                **dict(params),
                "_block": int(event["blockNumber"]),
                "initiator": str(event["args"]["initiator"]),
            }
            self.first_block = int(event["blockNumber"])
        return self._created

    @property
    def cache(self) -> ArtifactCache:
        """Verified artifacts on local disk (shared by the roles of this home directory)."""
        if self._cache is None:
            from protocol.artifacts import ArtifactCache

            self._cache = ArtifactCache(self.session.home / "cache")
        return self._cache

    @property
    def spec(self) -> TaskSpec:
        """The task spec, downloaded once, checked against the chain."""
        if self._spec is None:
            # The spec pulls in the ML side (torch); commands that never read it stay light.
            from protocol.artifacts import ArtifactInvalidError, parse_wire
            from protocol.wire import MAX_SPEC_BYTES, TaskSpec

            created = self.created
            spec_hash = bytes(created["specHash"])
            cid = str(created["specCid"])
            data = self.cache.fetch(
                self.session.store, cid, spec_hash, MAX_SPEC_BYTES, f"task {self.task_id} spec"
            )
            try:
                spec = parse_wire(data, TaskSpec, f"its spec {cid}")
            except ArtifactInvalidError as exc:
                raise ConfigError(f"refusing task {self.task_id}: {exc}") from None
            check_spec(spec, created)
            self._spec = spec
        return self._spec

    def ml(self) -> tuple[Any, Any, Any]:
        """(environment, tokenizer, Hugging Face config) of the task's policy."""
        if self._ml is None:
            from functools import partial

            from protocol.verification import policy_of

            self._ml = policy_of(self.spec, partial(self.cache.fetch, self.session.store))
        return self._ml

    # ---------------------------------------------------------------------- events
    def events(self, contract_name: str, event: str) -> list[dict[str, Any]]:
        """Every `event` of this task emitted by `contract_name` ('task_escrow', 'attestation_registry',
        'reward_distributor'), in chain order; new blocks are scanned on each call."""
        _ = self.created
        key = f"{contract_name}.{event}"
        if key not in self._logs:
            self._logs[key] = _EventLog(self, contract_name, event)
        return self._logs[key].all()

    def submissions(self, round_: int) -> list[Submission]:
        """The round's submissions, by index."""
        out = []
        for e in self.events("task_escrow", "WorkSubmitted"):
            if int(e["round"]) != round_:
                continue
            out.append(
                Submission(
                    round=round_,
                    index=int(e["index"]),
                    trainer=str(e["trainer"]),
                    bundle_hash=bytes(e["bundleHash"]),
                    bundle_cid=str(e["bundleCid"]),
                    update_hash=bytes(e["updateHash"]),
                    update_cid=str(e["updateCid"]),
                    proof_root=bytes(e["proofRoot"]),
                    state_root=bytes(e["stateRoot"]),
                    work_units=int(e["workUnits"]),
                    block=int(e["_block"]),
                )
            )
        return sorted(out, key=lambda s: s.index)

    def participants(self, role: Role) -> list[tuple[str, int]]:
        """(address, first round) of everyone who joined as `role`, in join order."""
        return [
            (str(e["account"]), int(e["fromRound"]))
            for e in self.events("task_escrow", "Joined")
            if int(e["role"]) == int(role)
        ]

    def base_cid(self, model_hash: bytes) -> str:
        """The CID of a base checkpoint with sha256 `model_hash` (initial, or agreed in a round)."""
        return self.base_cids(model_hash)[0]

    def base_cids(self, model_hash: bytes) -> list[str]:
        """Every CID named for the base checkpoint with sha256 `model_hash`: the initial one, or the one of
        the vote that reached agreement, then those of every other vote for the same hash. (Only the hash
        is agreed: the deciding voter may name a CID nobody serves, so a fetch tries the others.)"""
        created = self.created
        cids: list[str] = []
        if bytes(created["initialModelHash"]) == model_hash:
            cids.append(str(created["initialModelCid"]))
        for name in ("ModelAgreed", "ModelVoted"):
            for e in reversed(self.events("attestation_registry", name)):
                if bytes(e["modelHash"]) == model_hash and str(e["modelCid"]) not in cids:
                    cids.append(str(e["modelCid"]))
        if not cids:
            raise ConfigError(f"task {self.task_id}: no CID known for checkpoint 0x{model_hash.hex()}")
        return cids

    def checkpoint(self, model_hash: bytes) -> bytes:
        """The bytes of a base checkpoint, fetched (bounded, verified against the hash) and cached: from
        the first of its CIDs (`base_cids`) that serves them."""
        from protocol.artifacts import ArtifactInvalidError, ArtifactUnavailableError

        *others, last = self.base_cids(model_hash)
        for cid in others:
            try:
                return self._fetch_checkpoint(cid, model_hash)
            except (ArtifactUnavailableError, ArtifactInvalidError):
                continue
        return self._fetch_checkpoint(last, model_hash)

    def _fetch_checkpoint(self, cid: str, model_hash: bytes) -> bytes:
        limit = self.spec.limits.checkpoint
        return self.cache.fetch(self.session.store, cid, model_hash, limit, "checkpoint")

    def now(self) -> int:
        """The chain's time: the latest block's timestamp."""
        return self.session.client.timestamp()


def check_spec(spec: TaskSpec, created: Mapping[str, Any]) -> None:
    """Refuse a task whose spec and on-chain parameters (TaskCreated's) disagree (`ConfigError` naming the
    field); validators and auditors alike."""
    problems = []
    for name, param in (("sample_rollouts", "sampleRollouts"), ("sample_steps", "sampleSteps")):
        if getattr(spec, name) != int(created[param]):
            problems.append(f"{name} is {getattr(spec, name)} in the spec, {created[param]} on chain")
    if spec.initial_checkpoint.digest != bytes(created["initialModelHash"]):
        problems.append("initial_checkpoint.sha256 differs from the on-chain initialModelHash")
    if spec.initial_checkpoint.cid != str(created["initialModelCid"]):
        problems.append("initial_checkpoint.cid differs from the on-chain initialModelCid")
    if problems:
        raise ConfigError("refusing the task: its spec and the chain disagree: " + "; ".join(problems))


def checksum(address: str) -> str:
    """An address in checksum form (`ConfigError` if it is not one)."""
    try:
        return str(to_checksum_address(address))
    except (ValueError, TypeError):
        raise ConfigError(f"not an address: {address!r}") from None
