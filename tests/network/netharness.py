"""The network tests' harness: one deployment on an interval-mining anvil, sessions for its dev accounts,
a tiny task, and `drive`, which steps roles in-process (one thread, round robin) the way `run()` would.

Keystores and CLI helpers let the same tests start real `trustrl` processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from protocol.artifacts import ArtifactUnavailableError
from protocol.contracts import AppealParams, ValidatorOutcome, Verdict
from protocol.errors import ChainError, IpfsError
from protocol.roles.base import Output
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.verification import Checked

if TYPE_CHECKING:
    from protocol.anvil import Anvil
    from protocol.chain import ChainClient
    from protocol.contracts import Deployment
    from protocol.ipfs_daemon import IpfsDaemon
    from protocol.network import NetworkConfig, Session, Submission, TaskView
    from protocol.roles.base import RoleNode
    from protocol.roles.initiator import TaskFile

BLOCK_TIME = 0.25
NUM_ACCOUNTS = 24
TOKENS = 10**18
PASSWORD = "network-tests"
COURT = AppealParams(
    window=900, draws=31, bond=5 * TOKENS, commit_duration=120, reveal_duration=120, slash_bps=5_000,
    reward_bps=5_000,
)  # fmt: skip
"""The network tests' AppealCourt (`Net.own_deployment(..., appeals=COURT)`)."""
REPO = Path(__file__).resolve().parents[2]

WARMSTART = {
    "lr": 0.01,
    "target_accuracy": 0.3,
    "batch_size": 32,
    "eval_size": 50,
    "eval_every": 10,
    "max_steps": 400,
}

TINY_TASK: dict[str, Any] = {
    "description": "network tests: 1-digit addition, a tiny policy",
    "env": {"name": "addition", "params": {"digits": 1}},
    "model": {
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "num_kv_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 16,
    },
    "inner": {"steps": 2, "rollout_every": 1, "num_prompts": 2, "group_size": 2, "max_new_tokens": 3},
    "sample_rollouts": "all",
    "sample_steps": 1,
    "heldout_size": 8,
    # ~1 s of warm start: the policy answers some prompts, so rewards differ and updates are not zero.
    "initial": {"warmstart": WARMSTART},
    "chain": {
        "num_rounds": 1,
        "reward_per_round": 10,
        # deterrent (protocol.deterrence): a step is re-executed with P = 1/2, so the slash (20) must be at
        # least 2 x (1 - P) / P x the trainer pool (8)
        "min_trainer_stake": 20,
        "trainer_slash_bps": 10_000,
        "min_validator_stake": 10,
        "quorum": 2,
        "submit_duration": 60,
        "commit_duration": 30,
        "reveal_duration": 20,
        "vote_duration": 40,  # the vote commit and the vote reveal get half each
        "seed_delay": 1,
        "start_delay": 600,
        "max_empty_rounds": 0,
    },
}


_TERMS = TINY_TASK["chain"]
TRAINER_SLASH = TOKENS * _TERMS["min_trainer_stake"] * _TERMS["trainer_slash_bps"] // 10_000
"""What a rejected or unavailable trainer of the tiny task loses (its whole allocation)."""


def tiny_task(checkpoint: Path | None = None, **chain: Any) -> dict[str, Any]:
    """The tiny task file as a dict, with `chain` terms overridden; with `checkpoint`, the initial model is
    that file instead of a warm start."""
    initial = {"checkpoint": str(checkpoint)} if checkpoint is not None else TINY_TASK["initial"]
    return {**TINY_TASK, "initial": initial, "chain": {**TINY_TASK["chain"], **chain}}


@dataclass
class Net:
    """One deployment and what the tests need around it."""

    anvil: Anvil
    ipfs: IpfsDaemon
    deployer: ChainClient
    deployment: Deployment
    config: NetworkConfig
    files: Path
    home: Path
    _sessions: dict[int, Session] = field(default_factory=dict)

    @classmethod
    def deploy(
        cls,
        anvil: Anvil,
        ipfs: IpfsDaemon,
        files: Path,
        appeals: AppealParams | None = None,
        settlement_grace: int = 1,
    ) -> Net:
        """Deploy the contracts (with an AppealCourt of `appeals`, and `settlement_grace`); mint and stake
        1000 tokens for every dev account but the deployer."""
        from protocol.chain import ChainClient
        from protocol.compile import compile_contracts
        from protocol.contracts import deploy_protocol
        from protocol.network import NetworkConfig

        compiled = compile_contracts()
        deployer = ChainClient(anvil.rpc_url, anvil.accounts[0][1], abis=[c.abi for c in compiled.values()])
        deployment = deploy_protocol(
            deployer,
            unbonding_period=5,
            settlement_grace=settlement_grace,
            appeals=appeals,
            compiled=compiled,
        )
        sent = [
            deployer.send(deployment.token.functions.mint(a, 10_000 * TOKENS)) for a, _ in anvil.accounts[1:]
        ]
        for tx in sent:
            deployer.wait(tx)
        staking = []
        for _, key in anvil.accounts[1:]:
            client = deployer.with_account(key)
            staking.append(
                (
                    client,
                    client.send(
                        deployment.token.functions.approve(deployment.stake_manager.address, 1_000 * TOKENS)
                    ),
                )
            )
            staking.append(
                (client, client.send(deployment.stake_manager.functions.stake(1_000 * TOKENS), gas=200_000))
            )
        for client, tx in staking:
            client.wait(tx)
        config = NetworkConfig(
            rpc_url=anvil.rpc_url, deployment=deployment.addresses, ipfs_api=ipfs.api_url, poll_interval=0.1
        )
        (files / "network.json").write_text(config.model_dump_json(indent=2))
        return cls(anvil, ipfs, deployer, deployment, config, files, files / "home")

    def own_deployment(
        self, directory: Path, appeals: AppealParams | None = None, settlement_grace: int = 1
    ) -> Net:
        """A deployment of the test's own (with an AppealCourt of `appeals`, and `settlement_grace`) on this
        one's anvil and IPFS, its files and home under `directory`."""
        files = directory / "own-deployment"
        files.mkdir()
        return Net.deploy(self.anvil, self.ipfs, files, appeals, settlement_grace).for_test(
            directory / "home"
        )

    def for_test(self, home: Path) -> Net:
        """The same deployment with its own home directory (journals, caches) and fresh sessions."""
        return replace(self, home=home, _sessions={})

    @property
    def network_file(self) -> Path:
        """The network file for the CLI."""
        return self.files / "network.json"

    def address(self, index: int) -> str:
        """Dev account `index`'s address."""
        return self.anvil.accounts[index][0]

    def session(self, index: int, *, home: Path | None = None) -> Session:
        """A session for dev account `index` (one per account and test, unless `home` is given)."""
        from protocol.network import connect

        key = self.anvil.accounts[index][1]
        if home is not None:
            return connect(self.config, key, home, ipfs_retries=1)
        if index not in self._sessions:
            self._sessions[index] = connect(self.config, key, self.home, ipfs_retries=1)
        return self._sessions[index]

    def keystore(self, index: int) -> Path:
        """An encrypted keystore of dev account `index` (password PASSWORD)."""
        from protocol.chain import save_keystore_account

        path = self.files / f"key-{index}.json"
        if not path.exists():
            save_keystore_account(self.anvil.accounts[index][1], path, PASSWORD, iterations=1 << 10)
        return path

    @property
    def checkpoint(self) -> Path:
        """The tiny task's warm-started initial model, made once per session (later tasks start from it)."""
        path = self.files / "initial.safetensors"
        if not path.exists():
            from protocol.roles.base import Output
            from protocol.roles.initiator import TaskFile, make_initial_checkpoint

            path.write_bytes(
                make_initial_checkpoint(TaskFile.model_validate(TINY_TASK), Output("warm start"))
            )
        return path

    def task_file(self, *, warm_start: bool = False, **chain: Any) -> TaskFile:
        """The tiny task with `chain` terms overridden (starting from `checkpoint` unless `warm_start`)."""
        from protocol.roles.initiator import TaskFile

        return TaskFile.model_validate(tiny_task(None if warm_start else self.checkpoint, **chain))

    def write_task_file(self, path: Path, **chain: Any) -> Path:
        """The tiny task as a YAML file (starting from `checkpoint`)."""
        path.write_text(yaml.safe_dump(tiny_task(self.checkpoint, **chain), sort_keys=False))
        return path

    def create_task(self, initiator: int, *, warm_start: bool = False, **chain: Any) -> int:
        """Create the tiny task from dev account `initiator`; returns its id."""
        from protocol.roles.base import Output
        from protocol.roles.initiator import create_task

        task = self.task_file(warm_start=warm_start, **chain)
        return create_task(self.session(initiator), task, Output("initiator"))

    def warp_to_start(self, task_id: int) -> None:
        """Move the chain's clock to the task's start (everyone has joined by then)."""
        state = self.session(1).proto.task_state(task_id)
        delta = state.round_start - self.deployer.timestamp()
        if delta > 0:
            self.deployer.increase_time(delta)

    def cli(self, *args: str, timeout: float = 120, check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run `python -m protocol.cli ARGS` with the test password in the environment."""
        return subprocess.run(
            [sys.executable, "-m", "protocol.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=cli_env(),
            cwd=REPO,
            check=check,
        )

    def spawn(self, args: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start `python -m protocol.cli ARGS` in the background, output to `log`."""
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "protocol.cli", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=cli_env(),
                cwd=REPO,
                start_new_session=True,
            )

    def account(self, index: int) -> list[str]:
        """The CLI options of dev account `index` for one-shot commands (mint, stake, unstake)."""
        return ["--network", str(self.network_file), "--keystore", str(self.keystore(index))]

    def common(self, index: int, home: Path) -> list[str]:
        """The CLI options of dev account `index` for the nodes and claims (with a home directory)."""
        return [*self.account(index), "--home", str(home)]


def cli_env() -> dict[str, str]:
    """The environment of a CLI process: the keystore password, one torch thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTRL_")}
    env.update(
        {
            "TRUSTRL_PASSWORD": PASSWORD,
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class Colluder(ValidatorNode):
    """A cartel member: ACCEPTs its accomplice unchecked, REJECTs its victim unchecked, checks the rest."""

    accomplice = ""
    victim = ""

    def _check(self, sub: Submission, seed: bytes, base_hash: bytes, commit_end: int) -> Checked | None:
        if sub.trainer == self.accomplice:
            return Checked(Verdict.ACCEPT, ["the cartel's accomplice"])
        if sub.trainer == self.victim:
            return Checked(Verdict.REJECT, ["the cartel's victim"])
        return super()._check(sub, seed, base_hash, commit_end)


@dataclass
class ColludingMajority:
    """A one-round task's cast: dev account 1 initiates; 2 (the bystander) and 3 (the victim) train
    honestly, 4 (the cheater) forges its rewards; 5 and 6 collude (accept the cheater, reject the victim,
    check the rest), 7 validates honestly."""

    initiator: InitiatorNode
    bystander: TrainerNode
    victim: TrainerNode
    cheater: TrainerNode
    cartel: list[Colluder]
    honest: ValidatorNode

    @classmethod
    def cast(cls, net: Net, task_id: int, *, auto_appeal: bool = True) -> ColludingMajority:
        """The roles of `task_id` on `net`, not yet started (`auto_appeal`: the honest validator's)."""
        cheater = TrainerNode(net.session(4), task_id, out=Output("cheater"), cheat="forge-rewards")
        victim = TrainerNode(net.session(3), task_id, out=Output("trainer-3"))
        cartel = [Colluder(net.session(i), task_id, out=Output(f"colluder-{i}")) for i in (5, 6)]
        for member in cartel:
            member.accomplice, member.victim = cheater.me, victim.me
        return cls(
            initiator=InitiatorNode(net.session(1), task_id),
            bystander=TrainerNode(net.session(2), task_id, out=Output("trainer-2")),
            victim=victim,
            cheater=cheater,
            cartel=cartel,
            honest=ValidatorNode(net.session(7), task_id, out=Output("validator-7"), auto_appeal=auto_appeal),
        )

    @property
    def roles(self) -> list[RoleNode]:
        """Every role, the initiator first."""
        return [self.initiator, self.bystander, self.victim, self.cheater, *self.cartel, self.honest]


TRANSIENT = (ChainError, IpfsError, ArtifactUnavailableError)


def drive(
    roles: Sequence[RoleNode],
    until: Callable[[], bool],
    timeout: float = 120.0,
    on_error: Callable[[RoleNode, Exception], None] | None = None,
) -> None:
    """Step `roles` round robin (as their `run()` loops would, transient errors retried) until `until()`."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"not done within {timeout} s")
        did = False
        for role in roles:
            if role.finished:
                continue
            try:
                did = role.step() or did
            except TRANSIENT as exc:
                if on_error is not None:
                    on_error(role, exc)
        if not did:
            time.sleep(0.1)


def finished(roles: Sequence[RoleNode]) -> Callable[[], bool]:
    """`until` for `drive`: every role finished."""
    return lambda: all(r.finished for r in roles)


def joined(roles: Sequence[RoleNode]) -> Callable[[], bool]:
    """`until` for `drive`: every role has joined its task."""
    return lambda: all(any(e.action == "join" and e.is_done for e in r.journal.entries()) for r in roles)


def events(net: Net, contract: Any, name: str, **filters: Any) -> list[dict[str, Any]]:
    """Decoded events of the deployment since its first block."""
    return [
        dict(e["args"])
        for e in net.deployer.get_logs(contract, name, net.deployment.addresses.block, **filters)
    ]


def submissions_settled(net: Net, task_id: int) -> dict[str, tuple[Verdict, int, int]]:
    """Each trainer's settled submission of `task_id`: (decision, reward, slashed), from SubmissionSettled."""
    return {
        e["trainer"]: (Verdict(e["decision"]), int(e["reward"]), int(e["slashed"]))
        for e in events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    }


def validators_settled(net: Net, task_id: int) -> dict[str, ValidatorOutcome]:
    """Each settled validator's outcome in `task_id`, from ValidatorSettled."""
    return {
        e["validator"]: ValidatorOutcome(e["outcome"])
        for e in events(net, net.deployment.task_escrow, "ValidatorSettled", taskId=task_id)
    }


def any_update_moves(view: TaskView, subs: Sequence[Submission]) -> bool:
    """Whether any of `subs` carries a nonzero pseudo-gradient (fetched and decoded as validators do). A
    round whose groups all had equal rewards gives zero updates, and the agreed model is then the base."""
    from functools import partial

    from protocol.verification import fetch_manifest
    from trainer.diloco import decode_update

    fetch = partial(view.cache.fetch, view.session.store)
    for sub in subs:
        manifest = fetch_manifest(fetch, view.spec, sub)
        data = fetch(manifest.update.cid, manifest.update.digest, view.spec.limits.update, "update")
        if any(bool(t.abs().sum() > 0) for t in decode_update(data).values()):
            return True
    return False


def read_json(path: Path) -> Any:
    """A JSON file."""
    return json.loads(path.read_text())
