"""The `trustrl` command line.

    trustrl demo                                   the whole network here (anvil, IPFS, 8 processes)
    trustrl deploy   --network URL --keystore K    deploy the contracts, write a network file
    trustrl account  new|import|dev                make an encrypted keystore
    trustrl mint / stake / unstake / claim         tokens, stakes, rewards
    trustrl task create FILE / task status N       fund a task / show it
    trustrl train --task N / validate --task N     run a trainer / validator node

Every command that acts as an account takes `--network` (a network file, an RPC URL with `--deployment`,
or `local`) and `--keystore` (an encrypted V3 keystore; the password comes from `$TRUSTRL_PASSWORD` or a
prompt); the nodes also take `--ipfs`, `--home` and `--threads`. Each command declares its own options,
with help texts that say what they mean for it. Heavy modules (torch, web3, the contracts) are imported
inside the commands, so `trustrl --help` is instant.

Amounts are typed and shown in tokens of the token's own `decimals()`; `--json` gives exact base units.
Times are the chain's, in UTC. Rounds are numbered from 0, as on chain. Every error raised on purpose
(`TrustrlError`) is printed as one line and exits with status 1 (`-v` adds the raw error underneath, e.g.
the contract's revert with its values); a traceback means a bug. SIGINT (Ctrl-C) and SIGTERM stop a
command with status 130; the nodes stop at a safe point and say what is pending and by when
(`protocol.stopping`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from protocol.audit.cli import register_audit
from protocol.stopping import Interrupted, stop_on_signals
from trainer.errors import TrustrlError

if TYPE_CHECKING:
    from protocol.contracts import ProtocolClient
    from protocol.errors import ContractRevert
    from protocol.network import Session, TaskView
    from protocol.roles.base import Output, RoleNode

app = typer.Typer(
    name="trustrl",
    help="Verifiable, decentralized RL training with on-chain incentives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
task_app = typer.Typer(help="Create and inspect training tasks.", no_args_is_help=True)
account_app = typer.Typer(
    help="Make encrypted keystores (no plaintext key is ever written).", no_args_is_help=True
)
app.add_typer(task_app, name="task")
app.add_typer(account_app, name="account")
register_audit(app)  # `trustrl audit` (protocol/audit/cli.py)

console = Console(soft_wrap=True)  # a result is one line in a log, never folded at 80 columns
err_console = Console(stderr=True, soft_wrap=True)

EXIT_INTERRUPTED = 130
"""Exit status after SIGINT or SIGTERM (128 + SIGINT, the shell's convention)."""

DEFAULT_HOME = Path.home() / ".trustrl"
DEFAULT_PASSWORD_ENV = "TRUSTRL_PASSWORD"


@dataclass
class Settings:
    """The global options (`trustrl [-v] [--log-json] [--log-every S] COMMAND`)."""

    verbose: bool = False
    log_json: bool = False
    log_every: float = 30.0


SETTINGS = Settings()

# ---------------------------------------------------------------------------------------------- options
# One alias per option and meaning; a command whose option means something else declares its own.

NetworkOpt = Annotated[
    str,
    typer.Option(
        "--network",
        "-n",
        envvar="TRUSTRL_NETWORK",
        help="A network file (from `trustrl deploy`), an RPC URL (with --deployment), or `local`.",
    ),
]
DeploymentOpt = Annotated[
    Path | None,
    typer.Option(
        "--deployment",
        envvar="TRUSTRL_DEPLOYMENT",
        help="Deployment JSON (contract addresses), when --network is an RPC URL.",
    ),
]
IpfsOpt = Annotated[
    str | None,
    typer.Option(
        "--ipfs",
        envvar="TRUSTRL_IPFS",
        help="IPFS API of the node that stores and fetches artifacts (default: the network file's).",
    ),
]
KeystoreOpt = Annotated[
    Path,
    typer.Option(
        "--keystore",
        "-k",
        envvar="TRUSTRL_KEYSTORE",
        help="Encrypted V3 keystore of the account that signs and pays the gas.",
    ),
]
PasswordEnvOpt = Annotated[
    str,
    typer.Option(
        "--password-env",
        help="Environment variable holding the keystore password (else a prompt in a terminal).",
    ),
]
HomeOpt = Annotated[
    Path,
    typer.Option(
        "--home", envvar="TRUSTRL_HOME", help="Where the node keeps its journals, training states and caches."
    ),
]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's).")
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        envvar="TRUSTRL_DEVICE",
        help="Where models run: cpu (default), cuda, cuda:N or auto (trainer.device; CUDA is untested here).",
    ),
]
TaskOpt = Annotated[int, typer.Option("--task", min=1, help="Task id.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for the task if it does not exist yet.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (amounts in exact base units).")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Replace an existing keystore file (its key is lost).")
]


@app.callback()
def _global_options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            envvar="TRUSTRL_VERBOSE",
            help="After an error's sentence, show the raw error (a contract's revert with its values).",
        ),
    ] = False,
    log_json: Annotated[
        bool,
        typer.Option(
            "--log-json",
            envvar="TRUSTRL_LOG_JSON",
            help="Nodes log one JSON object a line (time, role, event, message, ...) for log collectors.",
        ),
    ] = False,
    log_every: Annotated[
        float,
        typer.Option(
            "--log-every",
            min=1.0,
            envvar="TRUSTRL_LOG_EVERY",
            help="Seconds between progress lines of a long step, and between lines of a countdown, when "
            "the output is not a terminal.",
        ),
    ] = 30.0,
) -> None:
    """Verifiable, decentralized RL training with on-chain incentives."""
    SETTINGS.verbose, SETTINGS.log_json, SETTINGS.log_every = verbose, log_json, log_every


# ---------------------------------------------------------------------------------------------- helpers


def _password(env: str, *, confirm: bool = False) -> str:
    from protocol.errors import ConfigError
    from protocol.network import password_from_env

    value = password_from_env(env)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise ConfigError(f"no keystore password: set ${env} or run in a terminal to be asked")
    return str(typer.prompt("keystore password", hide_input=True, confirmation_prompt=confirm))


def _output(name: str) -> Output:
    from protocol.roles.base import Output

    return Output(
        name,
        rich=console.is_terminal and not SETTINGS.log_json,
        json_lines=SETTINGS.log_json,
        every=SETTINGS.log_every,
    )


def _session(
    network: str,
    keystore: Path,
    password_env: str,
    *,
    deployment: Path | None = None,
    ipfs: str | None = None,
    home: Path = DEFAULT_HOME,
    threads: int | None = None,
    device: str = "cpu",
) -> Session:
    """Set torch's threads (when given) and the compute device, load the network, decrypt the keystore and
    connect."""
    from protocol.network import connect, load_account, load_network

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    if device != "cpu":
        from trainer.device import use_device

        use_device(device)
    config = load_network(network, deployment=deployment, ipfs_api=ipfs)
    account = load_account(keystore, _password(password_env))
    return connect(config, account, home)


def _print_json(data: dict[str, Any]) -> None:
    console.print_json(json.dumps(data))


@contextlib.contextmanager
def _explained(session: Session) -> Iterator[None]:
    """Turn the expected reverts of a command into sentences (`explain_revert`); the raw revert stays the
    error's cause, which `-v` prints."""
    from protocol.errors import ConfigError, ContractRevert

    try:
        yield
    except ContractRevert as exc:
        sentence = explain_revert(exc, session)
        if sentence is None:
            raise
        raise ConfigError(sentence) from exc


def explain_revert(exc: ContractRevert, session: Session) -> str | None:
    """A sentence for a revert a person can cause and fix (None for the others, which are shown raw)."""
    from protocol.display import when

    v = exc.values
    n = {k: int(x) for k, x in v.items() if isinstance(x, int)}
    tokens = session.tokens

    def at(key: str) -> str:
        return when(n[key], n["timestamp"] if "timestamp" in n else session.client.timestamp())

    sentences: dict[str, Callable[[], str]] = {
        "StillUnbonding": lambda: (
            f"the unbonding of {v['staker']} ends {at('releaseTime')}: withdraw after it"
        ),
        "NothingToWithdraw": lambda: (
            f"{v['staker']} has nothing unbonded to withdraw (`trustrl unstake` starts the unbonding)"
        ),
        "InsufficientFreeStake": lambda: (
            f"{v['staker']} has {tokens(n['free'])} tokens of free stake; {tokens(n['needed'])} are needed"
        ),
        "AllocationLocked": lambda: (
            f"the allocation of {v['staker']} to task {n['taskId']} is locked until {at('lockedUntil')}"
        ),
        "NothingToClaim": lambda: f"{v['account']} has nothing to claim",
        "ZeroAmount": lambda: "the amount must be more than 0",
        "ERC20InsufficientBalance": lambda: (
            f"{v['sender']} holds {tokens(n['balance'])} tokens; {tokens(n['needed'])} are needed"
        ),
        "ERC20InsufficientAllowance": lambda: (
            f"the allowance of {v['spender']} is {tokens(n['allowance'])} tokens; "
            f"{tokens(n['needed'])} are needed"
        ),
        "InvalidTaskParameter": lambda: f"the contract refuses the task's {v['name']} = {v['value']}",
        "UnknownTask": lambda: f"task {n['taskId']} does not exist on this deployment",
        "TaskNotActive": lambda: f"task {n['taskId']} has ended (it is no longer active)",
        "NotInitiator": lambda: f"only the initiator of task {n['taskId']} may do that, not {v['caller']}",
        "TaskAlreadyStarted": lambda: f"task {n['taskId']} already started ({at('startTime')})",
        "AlreadyJoined": lambda: f"{v['account']} already joined task {n['taskId']}",
        "TooManyTrainers": lambda: (
            f"task {n['taskId']} is full: it takes at most {n['maxTrainers']} trainers"
        ),
        "TooManyValidators": lambda: (
            f"task {n['taskId']} is full: it takes at most {n['maxValidators']} validators"
        ),
        "NoRoundsLeft": lambda: (
            f"task {n['taskId']} has no round left to join: a join now would count from round "
            f"{n['fromRound']}, and its rounds are 0 to {n['numRounds'] - 1}"
        ),
        "StakeTooLow": lambda: (
            f"{v['account']} has {tokens(n['allocated'])} tokens allocated to task {n['taskId']}; it "
            f"requires {tokens(n['required'])} (`trustrl stake` more)"
        ),
        "RoundNotFinalized": lambda: (
            f"round {n['round']} of task {n['taskId']} is not finalised yet: its decisions can be appealed "
            "once it is"
        ),
        "AppealWindowClosed": lambda: (
            f"the appeal window of round {n['round']} of task {n['taskId']} closed {at('closesAt')}"
        ),
        "NotDecided": lambda: (
            f"submission {n['index']} of round {n['round']} of task {n['taskId']} has no decision to appeal "
            "(undecided, or no such submission)"
        ),
        "AlreadyAppealed": lambda: (
            f"submission {n['index']} of round {n['round']} of task {n['taskId']} is already under appeal "
            "(one appeal per submission)"
        ),
    }
    make = sentences.get(exc.error)
    return None if make is None else make()


def _stop_report(out: Output, exc: Interrupted, node: RoleNode | None, before: str) -> None:
    """What a stopped node says: where it stopped and what is pending, with deadlines."""
    out.log(f"stopped by {exc.signal_name} at a safe point")
    if node is None:
        out.log(before)
        return
    try:
        lines = node.pending()
    except TrustrlError as err:
        lines = [f"(the chain could not be read to say what is pending: {err})"]
    for line in lines:
        out.log(f"pending: {line}")
    if not lines:
        out.log("nothing is pending: restart any time; the journal resumes where this node stopped")


# ---------------------------------------------------------------------------------------------- accounts


def _write_keystore(key: Any, out: Path, password_env: str, force: bool) -> None:
    from protocol.chain import keystore_exists_message, save_keystore_account
    from protocol.errors import ConfigError

    if out.exists() and not force:  # before asking for a password
        raise ConfigError(keystore_exists_message(out))
    address = save_keystore_account(key, out, _password(password_env, confirm=True), overwrite=force)
    console.print(f"{address} -> {out}")


KeystoreOutArg = Annotated[Path, typer.Argument(help="Where to write the keystore (never overwritten).")]


@account_app.command("new")
def account_new(
    out: KeystoreOutArg,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    force: ForceOpt = False,
) -> None:
    """Create a new random account and write it as an encrypted keystore (mode 0600)."""
    from eth_account import Account

    _write_keystore(Account.create(), out, password_env, force)


@account_app.command("import")
def account_import(
    out: KeystoreOutArg,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    force: ForceOpt = False,
) -> None:
    """Encrypt an existing private key (from a hidden prompt or stdin, never a file) into a keystore."""
    key = typer.prompt("private key (0x...)", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
    _write_keystore(key.strip(), out, password_env, force)


@account_app.command("dev")
def account_dev(
    index: Annotated[int, typer.Argument(min=0, max=99, help="anvil dev account number (0-9 by default).")],
    out: KeystoreOutArg,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    force: ForceOpt = False,
) -> None:
    """Keystore of one of anvil's well-known dev accounts (local chains only: their keys are public)."""
    from protocol.anvil import dev_accounts

    _write_keystore(dev_accounts(index + 1)[index][1], out, password_env, force)


# ---------------------------------------------------------------------------------------------- deploy


@app.command()
def deploy(
    network: Annotated[
        str,
        typer.Option(
            "--network",
            "-n",
            help="RPC URL of the chain to deploy to (http://... or https://...), or `local` "
            "(http://127.0.0.1:8545). A network file is what this command writes (--out).",
        ),
    ],
    keystore: Annotated[
        Path,
        typer.Option(
            "--keystore",
            "-k",
            envvar="TRUSTRL_KEYSTORE",
            help="Encrypted V3 keystore of the deployer (pays the gas of five deployments).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Network file to write (never overwritten without --force).")
    ] = Path("network.json"),
    token: Annotated[
        str | None,
        typer.Option(help="An existing ERC20 for stakes and rewards (default: deploy a mintable TestToken)."),
    ] = None,
    unbonding: Annotated[int, typer.Option(help="Seconds from `unstake` to `unstake --withdraw`.", min=0)] = 7
    * 24
    * 3600,
    ipfs: Annotated[
        str | None,
        typer.Option(
            "--ipfs", help="IPFS API to write into the network file (default http://127.0.0.1:5001)."
        ),
    ] = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing network file.")] = False,
    appeals: Annotated[
        bool,
        typer.Option(
            "--appeals/--no-appeals",
            help="Deploy an AppealCourt too (docs/protocol.md \"Appeals\"): decisions can be appealed within "
            "a window, and every round's settlement waits for it.",
        ),
    ] = False,
    appeal_window: Annotated[
        int, typer.Option(help="Seconds after a ballot closes during which it can be appealed.", min=1)
    ] = 3600,
    appeal_draws: Annotated[
        int, typer.Option(help="K_a, an appeal's stake-weighted draws.", min=1, max=1024)
    ] = 201,
    appeal_bond: Annotated[
        int, typer.Option(help="An appeal's bond, in the token's base units.", min=1)
    ] = 10**18,
) -> None:
    """Deploy the contracts (and a TestToken; with --appeals an AppealCourt) and write a network file for
    every other command."""
    from protocol.chain import ChainClient
    from protocol.compile import compile_contracts
    from protocol.contracts import deploy_protocol
    from protocol.errors import ConfigError
    from protocol.network import DEFAULT_IPFS, LOCAL_RPC, NetworkConfig, load_account

    rpc = LOCAL_RPC if network == "local" else network
    if not rpc.startswith(("http://", "https://")):
        raise ConfigError(
            f"deploy needs --network as an RPC URL (http://...) or `local`, not {network!r}: the network "
            "file is what deploy writes"
        )
    if out.exists() and not force:
        raise ConfigError(f"{out} exists: not overwritten (--out NEW.json, or --force)")
    account = load_account(keystore, _password(password_env))
    compiled = compile_contracts()
    client = ChainClient(rpc, account, abis=[c.abi for c in compiled.values()], timeout=300)
    with console.status(f"deploying from {client.address} to chain {client.chain_id}"):
        court = None
        if appeals:
            from protocol.contracts import AppealParams

            court = AppealParams(window=appeal_window, draws=appeal_draws, bond=appeal_bond)
        deployment = deploy_protocol(
            client, token, unbonding_period=unbonding, appeals=court, compiled=compiled
        )
    config = NetworkConfig(rpc_url=rpc, deployment=deployment.addresses, ipfs_api=ipfs or DEFAULT_IPFS)
    out.write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    console.print(f"deployed: escrow {deployment.addresses.task_escrow}; network file {out}")


# ---------------------------------------------------------------------------------------------- tokens


@app.command()
def mint(
    amount: Annotated[str, typer.Argument(help="Tokens to mint (TestToken deployments only).")],
    network: NetworkOpt,
    keystore: KeystoreOpt,
    to: Annotated[str | None, typer.Option(help="Recipient (default: the keystore's account).")] = None,
    deployment: DeploymentOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Mint test tokens (the TestToken of a test deployment lets anyone mint)."""
    from protocol.errors import ConfigError, ContractRevert
    from protocol.network import checksum

    session = _session(network, keystore, password_env, deployment=deployment)
    recipient = checksum(to) if to else session.address
    units = session.units(amount)
    with _explained(session):
        try:
            session.client.transact(session.proto.token.functions.mint(recipient, units))
        except ContractRevert as exc:
            if exc.error in ("UnknownError", "EmptyRevert"):
                raise ConfigError(
                    f"the token {session.proto.token.address} refused to mint: only a TestToken lets "
                    "anyone mint (-v shows the raw error)"
                ) from exc
            raise
    balance = session.proto.token_balance(recipient)
    if as_json:
        _print_json({"minted": units, "to": recipient, "balance": balance, "decimals": session.decimals})
        return
    console.print(f"minted {session.tokens(units)} tokens to {recipient}; balance {session.tokens(balance)}")


@app.command()
def stake(
    amount: Annotated[str, typer.Argument(help="Tokens to bond.")],
    network: NetworkOpt,
    keystore: KeystoreOpt,
    deployment: DeploymentOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Bond tokens in the StakeManager (a trainer or validator allocates from them when it joins a task)."""
    from protocol.errors import ConfigError

    session = _session(network, keystore, password_env, deployment=deployment)
    proto, units, tokens = session.proto, session.units(amount), session.tokens
    if units == 0:
        raise ConfigError("stake a positive amount")
    balance = proto.token_balance()
    if balance < units:
        raise ConfigError(f"{session.address} holds {tokens(balance)} tokens, cannot stake {tokens(units)}")
    with _explained(session):
        proto.approve(proto.stakes.address, units)
        proto.stake(units)
    bonded, allocated, unbonding, _ = proto.stake_of()
    if as_json:
        _print_json(
            {
                "staked": units,
                "bonded": bonded,
                "allocated": allocated,
                "unbonding": unbonding,
                "decimals": session.decimals,
            }
        )
        return
    console.print(
        f"staked {tokens(units)}: bonded {tokens(bonded)} (of which allocated to tasks {tokens(allocated)}), "
        f"unbonding {tokens(unbonding)}"
    )


@app.command()
def unstake(
    network: NetworkOpt,
    keystore: KeystoreOpt,
    amount: Annotated[str | None, typer.Argument(help="Tokens to unbond (default: all free stake).")] = None,
    withdraw: Annotated[
        bool, typer.Option("--withdraw", help="Withdraw what finished unbonding to the wallet.")
    ] = False,
    deployment: DeploymentOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    as_json: JsonOpt = False,
) -> None:
    """Release allocations of ended tasks, move free stake to unbonding; `--withdraw` pays it out later."""
    from protocol.display import when
    from protocol.errors import ConfigError

    session = _session(network, keystore, password_env, deployment=deployment)
    proto, client, tokens = session.proto, session.client, session.tokens
    if withdraw:
        before = proto.token_balance()
        with _explained(session):
            receipt = proto.withdraw()
        paid = proto.token_balance() - before
        tx = receipt["transactionHash"].to_0x_hex()
        if as_json:
            _print_json({"withdrawn": paid, "tx": tx, "decimals": session.decimals})
            return
        console.print(f"withdrew {tokens(paid)} tokens to {session.address} (tx {tx})")
        return
    now = client.timestamp()
    tasks = {
        int(e["args"]["taskId"])
        for e in client.get_logs(
            proto.stakes, "Allocated", session.config.deployment.block, staker=session.address
        )
    }
    held: list[str] = []
    released: dict[int, int] = {}
    with _explained(session):
        for task_id in sorted(tasks):
            allocated = proto.allocation_of(task_id)
            if not allocated:
                continue
            locked = proto.locked_until(task_id)
            if locked <= now:
                proto.deallocate(task_id, allocated)
                released[task_id] = allocated
                if not as_json:
                    console.print(f"released {tokens(allocated)} tokens allocated to task {task_id}")
            else:
                held.append(
                    f"{tokens(allocated)} in task {task_id} ({_lock_reason(proto, task_id, locked, now)})"
                )
        free = proto.free_stake_of()
        units = free if amount is None else session.units(amount)
        if units == 0 or units > free:
            where = "; ".join(held) if held else "nothing is allocated"
            raise ConfigError(f"free stake is {tokens(free)} tokens; still allocated: {where}")
        proto.request_unstake(units)
    _, _, unbonding, release = proto.stake_of()
    if as_json:
        _print_json(
            {
                "released": {str(k): v for k, v in released.items()},
                "unbonding": unbonding,
                "release_time": release,
                "decimals": session.decimals,
            }
        )
        return
    console.print(
        f"unbonding {tokens(unbonding)} tokens; withdraw after {when(release, client.timestamp())} "
        "(`trustrl unstake --withdraw`)"
    )


def _lock_reason(proto: ProtocolClient, task_id: int, locked: int, now: int) -> str:
    """Why this account's allocation to a task cannot be released yet, and what releases it."""
    from protocol.contracts import TaskStatus
    from protocol.display import when

    if proto.task_state(task_id).status == TaskStatus.ACTIVE:
        return "the task is active"
    unsettled = proto.unsettled_of(task_id)
    rounds = proto.validator_unsettled_of(task_id)
    if unsettled or rounds:
        what = (
            f"{unsettled} unsettled submission(s)" if unsettled else f"{rounds} unsettled validator round(s)"
        )
        return f"{what}: `trustrl claim --task {task_id}` settles them"
    return f"the settlement grace ends {when(locked, now)}"


@app.command()
def claim(
    network: NetworkOpt,
    keystore: KeystoreOpt,
    task: Annotated[
        int | None, typer.Option("--task", help="Settle this account's part of a task first.")
    ] = None,
    deployment: DeploymentOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Claim every reward (and refund) credited to this account (with --task: settle its part first)."""
    from protocol.journal import Journal
    from protocol.network import TaskView
    from protocol.roles.settle import Keeper, claim_credit

    session = _session(network, keystore, password_env, deployment=deployment, home=home)
    out = _output("claim")
    with _explained(session):
        if task is not None:
            view = TaskView(session, task)
            keeper = Keeper(
                view,
                Journal(session.task_dir(task, "claim") / "journal.jsonl"),
                out,
                draw_seeds=False,
                finalize=False,
                in_turn=False,
            )
            while keeper.step():
                pass
        paid = claim_credit(session, out)
    balance = session.proto.token_balance()
    if as_json:
        _print_json({"claimed": paid, "balance": balance, "decimals": session.decimals})
    elif paid == 0:
        console.print(f"nothing to claim; wallet balance {session.tokens(balance)} tokens")


@app.command()
def appeal(
    network: NetworkOpt,
    keystore: KeystoreOpt,
    task: TaskOpt,
    round_: Annotated[int, typer.Option("--round", min=0, help="The finalised round of the decision.")],
    index: Annotated[int, typer.Option("--index", min=0, help="The submission's index in the round.")],
    deployment: DeploymentOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    home: HomeOpt = DEFAULT_HOME,
    as_json: JsonOpt = False,
) -> None:
    """Appeal the decision on one submission (docs/protocol.md "Appeals"): posts the deployment's bond; a
    larger stake-weighted committee re-checks it, and its majority stands (`trustrl audit` names the
    wrong decisions worth appealing). Finalises the round first when nobody has yet."""
    from protocol.errors import ConfigError

    session = _session(network, keystore, password_env, deployment=deployment, home=home)
    proto = session.proto
    if not proto.appeals_enabled:
        raise ConfigError("this deployment has no AppealCourt: its decisions cannot be appealed")
    court = proto.court
    assert court is not None
    params = proto.appeal_params()
    with _explained(session):
        allowance = int(proto.client.call(proto.token.functions.allowance(proto.address, court.address)))
        if allowance < params.bond:
            balance = proto.token_balance()
            if balance < params.bond:
                raise ConfigError(
                    f"an appeal posts a bond of {session.tokens(params.bond)} tokens; {proto.address} holds "
                    f"{session.tokens(balance)}"
                )
            proto.approve(court.address, params.bond)
        if proto.task_state(task).round == round_:
            # The window runs from the ballot's close, but a round is appealed once finalised: finalise it
            # first (nothing presses anyone to finalise a task's last round).
            proto.finalize_round(task)
        proto.appeal(task, round_, index)
    a = proto.appeal_of(task, round_, index)
    if as_json:
        _print_json(
            {
                "task": task,
                "round": round_,
                "index": index,
                "original": a.original.name,
                "bond": a.bond,
                "seed_block": a.seed_block,
                "decimals": session.decimals,
            }
        )
        return
    console.print(
        f"appealed the {a.original.name} decision on submission {index} of round {round_} of task {task}, "
        f"bond {session.tokens(a.bond)} tokens; {params.draws} draws are taken after block {a.seed_block}, "
        f"then the jurors have {params.commit_duration} s to commit and {params.reveal_duration} s to "
        "reveal (`trustrl task status` follows it; `trustrl claim` takes what the court owes you)",
        highlight=False,
    )


# ---------------------------------------------------------------------------------------------- tasks


@task_app.command("create")
def task_create(
    task_file: Annotated[Path, typer.Argument(help="Task YAML (see examples/task.yaml).")],
    network: NetworkOpt,
    keystore: KeystoreOpt,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running as the task's keeper until it ends.")
    ] = False,
    committee_draws: Annotated[
        int | None,
        typer.Option(
            "--committee-draws",
            help="Stake-weighted committee draws per submission (overrides chain.committee_draws; 0: every "
            "validator judges every submission; docs/protocol.md, 'Committees').",
        ),
    ] = None,
    honeypot_rate: Annotated[
        float | None,
        typer.Option(
            "--honeypot-rate",
            help="With --follow: fraction of rounds with a honeypot (overrides the task file's "
            "honeypots.rate; docs/protocol.md, 'Laziness does not pay').",
        ),
    ] = None,
    honeypot_trainer: Annotated[
        str | None,
        typer.Option(
            "--honeypot-trainer",
            help="With --follow: the address of your own trainer that submits the honeypots' known-bad work "
            "(overrides honeypots.trainer and honeypots.trainers).",
        ),
    ] = None,
    honeypot_secret: Annotated[
        Path | None,
        typer.Option(
            "--honeypot-secret",
            help="The bait plan: a secret file (created with mode 0600 when missing) that picks the rounds "
            "with a honeypot and their bait; give the same file to the baits' `trustrl train --bait-secret` "
            "(overrides honeypots.secret).",
        ),
    ] = None,
    deployment: DeploymentOpt = None,
    ipfs: IpfsOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    home: HomeOpt = DEFAULT_HOME,
    threads: ThreadsOpt = None,
) -> None:
    """Make the initial model, put it and the spec on IPFS, escrow the reward and create the task."""
    from protocol.errors import ConfigError
    from protocol.roles.initiator import (
        InitiatorNode,
        create_task,
        honeypot_plan,
        honeypot_refusal,
        honeypot_terms,
        load_task_file,
        with_committee_draws,
    )

    task = load_task_file(task_file)  # a malformed file fails here, before anything is sent
    if committee_draws is not None:
        task = with_committee_draws(task, committee_draws)
    terms = honeypot_terms(task, rate=honeypot_rate, trainer=honeypot_trainer, secret=honeypot_secret)
    honeypots = honeypot_plan(terms) if follow else None
    out = _output("initiator")
    node: list[RoleNode] = []
    with stop_on_signals(defer=True):
        try:
            session = _session(
                network, keystore, password_env, deployment=deployment, ipfs=ipfs, home=home, threads=threads
            )
            with out.live(), _explained(session):
                if honeypots is not None:  # checked against the deployment before anything is sent
                    proto = session.proto
                    court = proto.appeal_params() if proto.appeals_enabled else None
                    refusal = honeypot_refusal(
                        task,
                        terms,
                        lazy_slash_bps=proto.lazy_slash_bps(),
                        settlement_grace=int(proto.client.call(proto.escrow.functions.settlementGrace())),
                        appeal_span=0
                        if court is None
                        else court.window + court.commit_duration + court.reveal_duration,
                    )
                    if refusal:
                        raise ConfigError(refusal)
                task_id = create_task(session, task, out)
            console.print(f"task {task_id}")
            if follow:
                node.append(InitiatorNode(session, task_id, out=out, honeypots=honeypots))
                node[0].run()
        except Interrupted as exc:
            _stop_report(
                out,
                exc,
                node[0] if node else None,
                "the task was not created (or the journal will find it: run the same command again)",
            )
            raise typer.Exit(EXIT_INTERRUPTED) from None


@task_app.command("status")
def task_status(
    task: Annotated[int, typer.Argument(help="Task id.")],
    network: NetworkOpt,
    deployment: DeploymentOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a task: its terms, where it stands, and every round's outcome (from chain events)."""
    from eth_account import Account
    from rich.table import Table

    from protocol.contracts import TaskStatus
    from protocol.display import amount, when
    from protocol.network import TaskView, connect, load_network
    from protocol.roles.report import summarize_rounds

    config = load_network(network, deployment=deployment)
    session = connect(config, Account.create(), DEFAULT_HOME)  # read-only: a throwaway key signs nothing
    view = TaskView(session, task)
    cfg, state = view.config, view.state()
    remaining, reserved = view.proto.funds_of(task)
    rounds = summarize_rounds(view)
    votes = _model_votes(view)
    draws, drawn = _committees(view)
    appeals = _appeals(view)
    tokens, now = session.tokens, view.now()
    if as_json:
        _print_json(
            {
                "task": task,
                "status": state.status.name,
                "round": state.round,
                "num_rounds": cfg.num_rounds,
                "decimals": session.decimals,
                "reward_per_round": cfg.reward_per_round,
                "remaining": remaining,
                "reserved": reserved,
                "committee_draws": draws,
                "appeals": appeals,
                "rounds": [
                    {
                        "round": r.round,
                        "finalized": r.finalized,
                        "submissions": len(r.submissions),
                        "accepted": r.accepted,
                        "rejected": r.rejected,
                        "unavailable": r.unavailable,
                        "undecided": r.undecided,
                        "budget": r.budget,
                        "paid": r.paid,
                        "carry": r.carry,
                        "slashed": r.slashed,
                        "model_votes": votes.get(r.round, _RoundVotes()).as_json(),
                        "committees": [
                            {"index": i, "validators": members} for i, members in enumerate(drawn[r.round])
                        ]
                        if r.round in drawn
                        else None,
                    }
                    for r in rounds
                ],
            }
        )
        return
    last = cfg.num_rounds - 1
    if state.status == TaskStatus.ACTIVE:
        where = f"active, in round {state.round} of rounds 0 to {last}"
        if now < state.round_start:
            where += f"; it opens {when(state.round_start, now)}"
        elif not state.seed_drawn and state.seed_block == 0:
            where += f"; submissions close {when(state.submit_end, now)} ({state.submissions} so far)"
    else:
        where = f"{state.status.name.lower()} after {state.round} of {cfg.num_rounds} rounds (0 to {last})"
        if state.ended_at:
            where += f", ended {when(state.ended_at, now)}"
    console.print(f"task {task}: {where}; initiator {cfg.initiator}", highlight=False)
    console.print(
        f"reward {tokens(cfg.reward_per_round)} tokens a round ({cfg.validator_share_bps / 100:g}% to "
        f"validators); escrow remaining {tokens(remaining)}, reserved for settlement {tokens(reserved)}; "
        f"quorum {cfg.quorum}; each submission re-checked on {cfg.sample_rollouts} rollouts and "
        f"{cfg.sample_steps} step(s)",
        highlight=False,
    )
    if draws:
        console.print(
            f"committees: {draws} stake-weighted draws per submission (a validator judges only the "
            "submissions it is drawn for; its verdicts, vote and pay weigh its draws)",
            highlight=False,
        )
    table = Table(
        "round",
        "submissions",
        "accepted",
        "rejected",
        "unavailable",
        "budget",
        "paid",
        "carried on",
        "slashed",
        "model votes",
        "finalised",
    )

    def cell(units: int) -> str:
        return amount(units, session.decimals, dust=False)

    for r in rounds:
        table.add_row(
            str(r.round),
            str(len(r.submissions)),
            str(r.accepted),
            str(r.rejected),
            str(r.unavailable),
            cell(r.budget) if r.finalized else "",
            cell(r.paid),
            cell(r.carry) if r.finalized else "",
            cell(r.slashed),
            votes.get(r.round, _RoundVotes()).line(),
            "yes" if r.finalized else "no",
        )
    console.print(table, width=None if console.is_terminal else 120)
    console.print(
        "budget = the round's reward + what earlier rounds carried on (rounding dust, unspent pools, "
        "forfeited shares); what a round does not pay is carried on to the next, or refunded at the end. "
        "REJECT: the work was checked and found wrong; UNAVAILABLE: what had to be checked was not served "
        "in time. Both are slashed. Model votes: committed / revealed of the validators that revealed their "
        "verdicts, and the agreed model; a validator is paid its share only for a revealed vote for it. "
        "Exact base units: --json.",
        style="dim",
        highlight=False,
    )
    for round_no, subs in sorted(drawn.items()):
        for i, members in enumerate(subs):
            shown = ", ".join(f"{v} x{m}" for v, m in members.items()) or "nobody (no active validator)"
            console.print(f"round {round_no} submission {i}: committee {shown}", highlight=False)
    for a in appeals:
        revealed = a["accept_weight"] + a["other_weight"]
        if not a["decided"] and not a["drawn"]:
            where = "committee not drawn yet"
        elif not a["decided"]:
            where = (
                f"{a['committed_weight']} of {a['draws']} draws committed, {revealed} revealed; "
                f"reveals close {when(a['reveal_end'], now)}"
            )
        else:
            verdict = "OVERTURNED" if a["overturned"] else "upheld"
            where = f"{verdict} (ACCEPT {a['accept_weight']}, other {a['other_weight']}; {a['draws']} draws)"
        console.print(
            f"round {a['round']} submission {a['index']}: appeal by {a['appellant']} of its "
            f"{a['original']} decision (bond {tokens(a['bond'])}): {where}",
            highlight=False,
        )


@dataclass
class _RoundVotes:
    """A round's model vote, from the registry's events."""

    revealed_verdicts: int = 0
    committed: set[str] = field(default_factory=set)
    votes: dict[str, str] = field(default_factory=dict)
    """validator -> the hash it revealed (0x-hex)."""
    winner: str | None = None

    def line(self) -> str:
        """`committed/revealed of n, model 0x1234…` (or `no agreement`) for the status table."""
        if not self.revealed_verdicts:
            return ""
        counts = f"{len(self.committed)}/{len(self.votes)} of {self.revealed_verdicts}"
        return f"{counts}, {self.winner[:10] + '…' if self.winner else 'no agreement'}"

    def as_json(self) -> dict[str, Any]:
        return {
            "revealed_verdicts": self.revealed_verdicts,
            "committed": sorted(self.committed),
            "revealed": self.votes,
            "winner": self.winner,
        }


def _appeals(view: TaskView) -> list[dict[str, Any]]:
    """The task's appeals (a deployment with an AppealCourt), each with where it stands."""
    proto = view.proto
    if not proto.appeals_enabled:
        return []
    draws = proto.appeal_params().draws
    out = []
    filed = {(int(e["round"]), int(e["index"])): None for e in view.events("appeal_court", "AppealFiled")}
    for round_, index in filed:  # the latest attempt of each appealed decision
        a = proto.appeal_of(view.task_id, round_, index)
        out.append(
            {
                "round": round_,
                "index": index,
                "attempt": a.attempt,
                "appellant": a.appellant,
                "original": a.original.name,
                "bond": a.bond,
                "draws": draws,
                "drawn": a.drawn,
                "commit_end": a.commit_end,
                "reveal_end": a.reveal_end,
                "committed_weight": a.committed_weight,
                "accept_weight": a.accept_weight,
                "other_weight": a.other_weight,
                "decided": a.decided,
                "overturned": a.overturned,
            }
        )
    return out


def _committees(view: TaskView) -> tuple[int, dict[int, list[dict[str, int]]]]:
    """(the task's committee draws k, per round whose ballot opened: each submission's drawn validators and
    their draws), recomputed from the round's seed and the validators' weights (protocol.committees, the
    registry's rule); k = 0 and nothing without committees."""
    from protocol import committees
    from protocol.contracts import Role

    proto, task = view.proto, view.task_id
    draws, _, _ = proto.committee_of(task, 0)
    if not draws:
        return 0, {}
    joins = [
        (str(e["account"]), int(e["fromRound"]))
        for e in view.events("task_escrow", "Joined")
        if int(e["role"]) == Role.VALIDATOR
    ]
    seats = committees.line_of([(v, proto.weight_of(task, v)[1], first) for v, first in joins])
    out: dict[int, list[dict[str, int]]] = {}
    for e in view.events("attestation_registry", "VotingOpened"):
        round_no, n = int(e["round"]), int(e["submissions"])
        _, seed, total = proto.committee_of(task, round_no)
        active = committees.active_weight(seats, round_no)
        out[round_no] = (
            [committees.committee(seats, seed, i, draws, round_no) for i in range(n)]
            if total and total == active
            else [{} for _ in range(n)]
        )
    return draws, out


def _model_votes(view: TaskView) -> dict[int, _RoundVotes]:
    """Per round: validators that revealed verdicts, committed a model vote, revealed it (and for what), the
    agreed model."""
    rounds: dict[int, _RoundVotes] = {}

    def get(e: Mapping[str, Any]) -> _RoundVotes:
        return rounds.setdefault(int(e["round"]), _RoundVotes())

    for e in view.events("attestation_registry", "VerdictsRevealed"):
        get(e).revealed_verdicts += 1
    for e in view.events("attestation_registry", "ModelVoteCommitted"):
        get(e).committed.add(str(e["validator"]))
    for e in view.events("attestation_registry", "ModelVoted"):
        get(e).votes[str(e["validator"])] = "0x" + bytes(e["modelHash"]).hex()
    for e in view.events("attestation_registry", "ModelAgreed"):
        get(e).winner = "0x" + bytes(e["modelHash"]).hex()
    return rounds


# ---------------------------------------------------------------------------------------------- nodes


def _run_node(
    role: str,
    make: Callable[[Session, Output], RoleNode],
    *,
    network: str,
    keystore: Path,
    deployment: Path | None,
    ipfs: str | None,
    password_env: str,
    home: Path,
    threads: int | None,
    device: str = "cpu",
) -> None:
    """Run a node until it is finished; SIGINT or SIGTERM stop it at a safe point with what is pending."""
    out = _output(role)
    node: RoleNode | None = None
    with stop_on_signals(defer=True):
        try:
            session = _session(
                network,
                keystore,
                password_env,
                deployment=deployment,
                ipfs=ipfs,
                home=home,
                threads=threads,
                device=device,
            )
            node = make(session, out)
            with _explained(session):
                node.run()
        except Interrupted as exc:
            _stop_report(out, exc, node, "nothing was done yet")
            raise typer.Exit(EXIT_INTERRUPTED) from None


@app.command()
def train(
    task: TaskOpt,
    network: NetworkOpt,
    keystore: KeystoreOpt,
    wait: WaitOpt = False,
    deployment: DeploymentOpt = None,
    ipfs: IpfsOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    home: HomeOpt = DEFAULT_HOME,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    cheat: Annotated[
        str | None,
        typer.Option(
            hidden=True,
            help="A dishonest trainer for demos and tests: poison | forge-rewards | withhold | nan-state | "
            "inf-state | poison-step | fabricate | stealthy | every-step | every-rollout, or with "
            "--bait-secret: bait (the plan rotates poison, every-step, every-rollout) "
            "(protocol.roles.trainer).",
        ),
    ] = None,
    bait_secret: Annotated[
        Path | None,
        typer.Option(
            "--bait-secret",
            help="Run as one of the initiator's honeypot baits: the --cheat (bait: the defect the plan "
            "picks per honeypot) only in the honeypot rounds that this bait plan (the initiator's "
            "--honeypot-secret file) picks for this trainer, honest training in every other round.",
        ),
    ] = None,
) -> None:
    """Run a trainer node: join the task, train every round, submit, upload the picked states, claim."""
    from protocol.baits import load_plan
    from protocol.errors import ConfigError
    from protocol.roles.trainer import BAIT_CHEATS, CHEATS, bait_cheat_error

    if cheat is not None and cheat not in CHEATS:
        raise ConfigError(f"unknown --cheat {cheat!r}; known: {', '.join(CHEATS)}")
    if (bait_secret is not None and cheat not in BAIT_CHEATS) or (bait_secret is None and cheat == "bait"):
        raise ConfigError(bait_cheat_error(cheat))
    plan = load_plan(bait_secret) if bait_secret is not None else None  # fails before anything is sent

    def make(session: Session, out: Output) -> RoleNode:
        _require_task(session, task, wait)
        from protocol.roles.trainer import TrainerNode

        return TrainerNode(
            session, task, out=out, wait=wait, cheat=cheat, bait_plan=plan  # type: ignore[arg-type]
        )

    _run_node(
        "trainer",
        make,
        network=network,
        keystore=keystore,
        deployment=deployment,
        ipfs=ipfs,
        password_env=password_env,
        home=home,
        threads=threads,
        device=device,
    )


def _require_task(session: Session, task: int, wait: bool) -> None:
    """A node without `--wait` refuses a task that does not exist yet (checked before torch is imported)."""
    from protocol.errors import ConfigError
    from protocol.network import TaskView

    if not wait and not TaskView(session, task).exists():
        raise ConfigError(
            f"task {task} does not exist on this deployment (yet: `--wait` waits for it to be created)"
        )


@app.command()
def validate(
    task: TaskOpt,
    network: NetworkOpt,
    keystore: KeystoreOpt,
    wait: WaitOpt = False,
    deployment: DeploymentOpt = None,
    ipfs: IpfsOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
    home: HomeOpt = DEFAULT_HOME,
    threads: ThreadsOpt = None,
    device: DeviceOpt = "cpu",
    lazy: Annotated[
        bool,
        typer.Option(
            "--lazy",
            help="A dishonest validator for demos and tests: ACCEPT every submission without fetching or "
            "checking it (honeypots slash it).",
        ),
    ] = False,
    auto_appeal: Annotated[
        bool,
        typer.Option(
            "--auto-appeal/--no-auto-appeal",
            help="On a deployment with an AppealCourt, appeal (posting the bond) every decided decision that "
            "contradicts this validator's own checked verdict, within the round's appeal window "
            '(docs/protocol.md "Who appeals").',
        ),
    ] = True,
    semi_lazy: Annotated[
        bool,
        typer.Option(
            "--semi-lazy",
            help="A dishonest validator for demos and tests: run only the cheap checks (no replay, no "
            "re-execution, no quality gate); the rotated honeypots slash it on 2 of 3.",
        ),
    ] = False,
) -> None:
    """Run a validator node: join, verify every submission, commit-reveal verdicts, vote the next model."""
    from protocol.errors import ConfigError

    if lazy and semi_lazy:
        raise ConfigError("--lazy and --semi-lazy exclude each other: choose one")

    def make(session: Session, out: Output) -> RoleNode:
        _require_task(session, task, wait)
        from protocol.roles.validator import Behaviour, ValidatorNode

        behaviour = Behaviour.LAZY if lazy else Behaviour.SEMI_LAZY if semi_lazy else Behaviour.HONEST
        return ValidatorNode(session, task, out=out, wait=wait, behaviour=behaviour, auto_appeal=auto_appeal)

    _run_node(
        "validator",
        make,
        network=network,
        keystore=keystore,
        deployment=deployment,
        ipfs=ipfs,
        password_env=password_env,
        home=home,
        threads=threads,
        device=device,
    )


# ---------------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON summary of the run to this path.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Rounds of the demo task.", min=1)] = 5,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Keep the demo's directory: logs, journals, keystores, the IPFS repo and anvil's state "
            "(`trustrl demo --resume DIR` serves them again).",
        ),
    ] = False,
    stay: Annotated[
        bool,
        typer.Option(
            "--stay",
            help="At the end, keep anvil and IPFS running (and the directory) until Ctrl-C, to query and "
            "audit the deployment.",
        ),
    ] = False,
    resume: Annotated[
        Path | None,
        typer.Option(
            "--resume",
            help="Serve a kept demo directory again: restart anvil from its state and IPFS from its repo, "
            "until Ctrl-C.",
        ),
    ] = None,
    audit: Annotated[
        bool,
        typer.Option(
            "--audit/--no-audit",
            help="At the end, audit the history from chain events and IPFS (re-verifying every "
            "submission); exit status 3 if it finds a discrepancy.",
        ),
    ] = True,
) -> None:
    """Run the whole network here: anvil, IPFS, contracts, 1 initiator, 3 honest trainers, 1 cheater and
    3 validators as separate processes; show each round; reconcile every balance; audit the history;
    stop everything. Exit status 1 if a check fails, 3 if the audit finds a discrepancy, 130 if stopped."""
    from protocol.demo import exit_status, run_demo, serve_kept

    # Logs and CI are not terminals: give the tables room instead of rich's default 80 columns.
    shown = console if console.is_terminal else Console(width=120)
    with stop_on_signals(defer=False):
        try:
            if resume is not None:
                serve_kept(resume, console=shown)
                return
            summary = run_demo(rounds=rounds, console=shown, keep=keep or stay, audit=audit, stay=stay)
        except Interrupted as exc:
            shown.print(f"stopped by {exc.signal_name}; every process the demo started is stopped")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        console.print(f"summary written to {json_path}")
    code = exit_status(summary)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point: run the app, turning trustrl errors into one line (and the raw error
    under it with -v) and SIGINT / SIGTERM into exit status 130."""
    from rich.markup import escape

    try:
        with stop_on_signals(defer=False):
            app()
    except TrustrlError as exc:
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        cause = exc.__cause__
        if SETTINGS.verbose and cause is not None:
            err_console.print(
                f"  raw: {escape(f'{type(cause).__name__}: {cause}')}", highlight=False, soft_wrap=True
            )
        sys.exit(1)
    except Interrupted as exc:
        err_console.print(f"interrupted by {exc.signal_name}", highlight=False)
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
