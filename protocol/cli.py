"""The `trustrl` command line.

    trustrl demo                                   the whole network here (anvil, IPFS, 8 processes)
    trustrl deploy   --network URL --keystore K    deploy the contracts, write a network file
    trustrl account  new|import|dev                make an encrypted keystore
    trustrl mint / stake / unstake / claim         tokens, stakes, rewards
    trustrl task create FILE / task status N       fund a task / show it
    trustrl train --task N / validate --task N     run a trainer / validator node

Every command that touches the chain takes `--network` (a network file, an RPC URL with `--deployment`,
or `local`), `--keystore` (an encrypted V3 keystore; the password comes from `$TRUSTRL_PASSWORD` or a
prompt) and `--ipfs` (the IPFS node's API). Heavy modules (torch, web3, the contracts) are imported inside
the commands, so `trustrl --help` is instant. Every error raised on purpose (`TrustrlError`) is printed
as one clear line and exits with status 1; a traceback means a bug.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from protocol.audit.cli import register_audit
from trainer.errors import TrustrlError

if TYPE_CHECKING:
    from protocol.contracts import Protocol
    from protocol.network import Session
    from protocol.roles.base import Output

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

console = Console()
err_console = Console(stderr=True)

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
        "--deployment", envvar="TRUSTRL_DEPLOYMENT", help="Deployment JSON, when --network is an RPC URL."
    ),
]
IpfsOpt = Annotated[
    str | None,
    typer.Option(
        "--ipfs",
        envvar="TRUSTRL_IPFS",
        help="IPFS API, e.g. http://127.0.0.1:5001 (default: the network file's).",
    ),
]
KeystoreOpt = Annotated[
    Path,
    typer.Option("--keystore", "-k", envvar="TRUSTRL_KEYSTORE", help="Encrypted V3 keystore of the account."),
]
PasswordEnvOpt = Annotated[
    str,
    typer.Option(
        "--password-env", help="Environment variable holding the keystore password (else a prompt)."
    ),
]
HomeOpt = Annotated[Path, typer.Option("--home", envvar="TRUSTRL_HOME", help="Journals, states and caches.")]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", min=1, help="torch CPU threads (default: torch's).")
]
WaitOpt = Annotated[
    bool, typer.Option("--wait/--no-wait", help="Wait for a task id that does not exist yet.")
]

DEFAULT_HOME = Path.home() / ".trustrl"
DEFAULT_PASSWORD_ENV = "TRUSTRL_PASSWORD"


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

    return Output(name, rich=console.is_terminal)


def _threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@dataclass(frozen=True)
class AccountOptions:
    """The options of every command that acts as an account (see `_account_options`)."""

    network: str
    keystore: Path
    deployment: Path | None
    ipfs: str | None
    password_env: str
    home: Path
    threads: int | None = None

    def session(self) -> Session:
        """Set torch's threads (when given), load the network, decrypt the keystore and connect."""
        from protocol.network import connect, load_account, load_network

        _threads(self.threads)
        config = load_network(self.network, deployment=self.deployment, ipfs_api=self.ipfs)
        account = load_account(self.keystore, _password(self.password_env))
        return connect(config, account, self.home)


def _option(name: str, annotation: object, default: object = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation
    )


_ACCOUNT_LEAD = (_option("network", NetworkOpt), _option("keystore", KeystoreOpt))
_ACCOUNT_TAIL = (
    _option("deployment", DeploymentOpt, None),
    _option("ipfs", IpfsOpt, None),
    _option("password_env", PasswordEnvOpt, DEFAULT_PASSWORD_ENV),
    _option("home", HomeOpt, DEFAULT_HOME),
)
_THREADS = _option("threads", ThreadsOpt, None)


def _account_options(
    *, threads: bool = False, tail_before: str | None = None
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the account options in place of its `opts: AccountOptions` parameter.

    `--network` and `--keystore` take the place of `opts`; `--deployment`, `--ipfs`, `--password-env`,
    `--home` (and `--threads` with `threads`) follow the command's own options, or come before the
    option named `tail_before`. The command gets them as one `AccountOptions`."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name != "opts"]
        at = list(signature.parameters).index("opts")
        cut = [p.name for p in own].index(tail_before) if tail_before is not None else len(own)
        tail = (*_ACCOUNT_TAIL, _THREADS) if threads else _ACCOUNT_TAIL
        params = [*own[:at], *_ACCOUNT_LEAD, *own[at:cut], *tail, *own[cut:]]
        shared = [p.name for p in (*_ACCOUNT_LEAD, *tail)]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            opts = AccountOptions(**{name: values.pop(name) for name in shared})
            command(opts=opts, **values)

        run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
        return run

    return decorate


def _units(amount: str) -> int:
    from protocol.roles.base import to_units

    return to_units(amount)


# ---------------------------------------------------------------------------------------------- accounts


@account_app.command("new")
def account_new(
    out: Annotated[Path, typer.Argument(help="Where to write the keystore.")],
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
) -> None:
    """Create a new random account and write it as an encrypted keystore."""
    from eth_account import Account

    from protocol.chain import save_keystore_account

    address = save_keystore_account(Account.create(), out, _password(password_env, confirm=True))
    console.print(f"{address} -> {out}")


@account_app.command("import")
def account_import(
    out: Annotated[Path, typer.Argument(help="Where to write the keystore.")],
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
) -> None:
    """Encrypt an existing private key (from a hidden prompt or stdin, never a file) into a keystore."""
    from protocol.chain import save_keystore_account

    key = typer.prompt("private key (0x...)", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
    address = save_keystore_account(key.strip(), out, _password(password_env, confirm=True))
    console.print(f"{address} -> {out}")


@account_app.command("dev")
def account_dev(
    index: Annotated[int, typer.Argument(min=0, max=99, help="anvil dev account number (0-9 by default).")],
    out: Annotated[Path, typer.Argument(help="Where to write the keystore.")],
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
) -> None:
    """Keystore of one of anvil's well-known dev accounts (local chains only: their keys are public)."""
    from protocol.anvil import dev_accounts
    from protocol.chain import save_keystore_account

    _, key = dev_accounts(index + 1)[index]
    address = save_keystore_account(key, out, _password(password_env, confirm=True))
    console.print(f"{address} -> {out}")


# ---------------------------------------------------------------------------------------------- deploy


@app.command()
def deploy(
    network: NetworkOpt,
    keystore: KeystoreOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Network file to write.")] = Path("network.json"),
    token: Annotated[str | None, typer.Option(help="Existing ERC20 (default: deploy a TestToken).")] = None,
    unbonding: Annotated[int, typer.Option(help="Unbonding period in seconds.", min=0)] = 7 * 24 * 3600,
    ipfs: IpfsOpt = None,
    password_env: PasswordEnvOpt = DEFAULT_PASSWORD_ENV,
) -> None:
    """Deploy the four contracts (and a TestToken) and write a network file for every other command."""
    from protocol.chain import ChainClient
    from protocol.compile import compile_contracts
    from protocol.contracts import deploy_protocol
    from protocol.network import DEFAULT_IPFS, LOCAL_RPC, NetworkConfig, load_account

    rpc = LOCAL_RPC if network == "local" else network
    if not rpc.startswith(("http://", "https://")):
        from protocol.errors import ConfigError

        raise ConfigError("deploy needs --network as an RPC URL (http://...) or `local`")
    account = load_account(keystore, _password(password_env))
    compiled = compile_contracts()
    client = ChainClient(rpc, account, abis=[c.abi for c in compiled.values()], timeout=300)
    with console.status(f"deploying from {client.address} to chain {client.chain_id}"):
        deployment = deploy_protocol(client, token, unbonding_period=unbonding, compiled=compiled)
    config = NetworkConfig(rpc_url=rpc, deployment=deployment.addresses, ipfs_api=ipfs or DEFAULT_IPFS)
    out.write_text(json.dumps(config.model_dump(mode="json"), indent=2) + "\n")
    console.print(f"deployed: escrow {deployment.addresses.task_escrow}; network file {out}")


# ---------------------------------------------------------------------------------------------- tokens


@app.command()
@_account_options()
def mint(
    amount: Annotated[str, typer.Argument(help="Tokens to mint (TestToken deployments only).")],
    opts: AccountOptions,
    to: Annotated[str | None, typer.Option(help="Recipient (default: the keystore's account).")] = None,
) -> None:
    """Mint test tokens (the TestToken of a test deployment lets anyone mint)."""
    from protocol.network import checksum

    session = opts.session()
    recipient = checksum(to) if to else session.address
    session.client.transact(session.proto.token.functions.mint(recipient, _units(amount)))
    console.print(f"minted {amount} tokens to {recipient}")


@app.command()
@_account_options()
def stake(
    amount: Annotated[str, typer.Argument(help="Tokens to stake.")],
    opts: AccountOptions,
) -> None:
    """Bond tokens in the StakeManager (a trainer or validator allocates from them when it joins a task)."""
    from protocol.errors import ConfigError
    from protocol.roles.base import tokens

    session = opts.session()
    proto, units = session.proto, _units(amount)
    if units == 0:
        raise ConfigError("stake a positive amount")
    balance = proto.token_balance()
    if balance < units:
        raise ConfigError(f"{session.address} holds {tokens(balance)} tokens, cannot stake {amount}")
    proto.approve(proto.stakes.address, units)
    proto.stake(units)
    bonded, allocated, unbonding, _ = proto.stake_of()
    console.print(
        f"staked {amount}: bonded {tokens(bonded)}, allocated {tokens(allocated)}, "
        f"unbonding {tokens(unbonding)}"
    )


@app.command()
@_account_options()
def unstake(
    opts: AccountOptions,
    amount: Annotated[str | None, typer.Argument(help="Tokens to unbond (default: all free stake).")] = None,
    withdraw: Annotated[bool, typer.Option("--withdraw", help="Withdraw what finished unbonding.")] = False,
) -> None:
    """Release allocations of ended tasks, move free stake to unbonding; `--withdraw` pays it out later."""
    from protocol.errors import ConfigError
    from protocol.roles.base import tokens

    session = opts.session()
    proto, client = session.proto, session.client
    if withdraw:
        paid = proto.withdraw()
        console.print(f"withdrew: tx {paid['transactionHash'].to_0x_hex()}")
        return
    now = client.timestamp()
    tasks = {
        int(e["args"]["taskId"])
        for e in client.get_logs(
            proto.stakes, "Allocated", session.config.deployment.block, staker=session.address
        )
    }
    held: list[str] = []
    for task_id in sorted(tasks):
        allocated = proto.allocation_of(task_id)
        if not allocated:
            continue
        locked = proto.locked_until(task_id)
        if locked <= now:
            proto.deallocate(task_id, allocated)
            console.print(f"released {tokens(allocated)} allocated to task {task_id}")
        else:
            held.append(f"{tokens(allocated)} in task {task_id} ({_lock_reason(proto, task_id, locked)})")
    free = int(client.call(proto.stakes.functions.freeStakeOf(session.address)))
    units = free if amount is None else _units(amount)
    if units == 0 or units > free:
        where = "; ".join(held) if held else "nothing is allocated"
        raise ConfigError(f"free stake is {tokens(free)} tokens; still allocated: {where}")
    proto.request_unstake(units)
    _, _, unbonding, release = proto.stake_of()
    console.print(
        f"unbonding {tokens(unbonding)} tokens; withdraw after unix time {release} "
        f"(`trustrl unstake --withdraw`)"
    )


def _lock_reason(proto: Protocol, task_id: int, locked: int) -> str:
    """Why this account's allocation to a task cannot be released yet, and what releases it."""
    from protocol.contracts import TaskStatus

    if proto.task_state(task_id).status == TaskStatus.ACTIVE:
        return "the task is active"
    unsettled = proto.unsettled_of(task_id)
    rounds = proto.validator_unsettled_of(task_id)
    if unsettled or rounds:
        what = (
            f"{unsettled} unsettled submission(s)" if unsettled else f"{rounds} unsettled validator round(s)"
        )
        return f"{what}: `trustrl claim --task {task_id}` settles them"
    return f"settlement grace until unix time {locked}"


@app.command()
@_account_options()
def claim(
    opts: AccountOptions,
    task: Annotated[
        int | None, typer.Option("--task", help="Settle this account's part of a task first.")
    ] = None,
) -> None:
    """Claim every reward (and refund) credited to this account."""
    from protocol.journal import Journal
    from protocol.network import TaskView
    from protocol.roles.base import tokens
    from protocol.roles.settle import Keeper, claim_credit

    session = opts.session()
    out = _output("claim")
    if task is not None:
        view = TaskView(session, task)
        keeper = Keeper(
            view,
            Journal(session.task_dir(task, "claim") / "journal.jsonl"),
            out,
            draw_seeds=False,
            finalize=False,
        )
        while keeper.step():
            pass
    paid = claim_credit(session.proto, out)
    if paid == 0:
        console.print(f"nothing to claim; token balance {tokens(session.proto.token_balance())}")


# ---------------------------------------------------------------------------------------------- tasks


@task_app.command("create")
@_account_options(threads=True)
def task_create(
    task_file: Annotated[Path, typer.Argument(help="Task YAML (see examples/task.yaml).")],
    opts: AccountOptions,
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep running as the task's keeper until it ends.")
    ] = False,
) -> None:
    """Make the initial model, put it and the spec on IPFS, escrow the reward and create the task."""
    from protocol.roles.initiator import InitiatorNode, create_task, load_task_file

    task = load_task_file(task_file)  # a malformed file fails here, before anything is sent
    session = opts.session()
    out = _output("initiator")
    with out.live():
        task_id = create_task(session, task, out)
    console.print(f"task {task_id}")
    if follow:
        InitiatorNode(session, task_id, out=out).run()


@task_app.command("status")
def task_status(
    task: Annotated[int, typer.Argument(help="Task id.")],
    network: NetworkOpt,
    deployment: DeploymentOpt = None,
    ipfs: IpfsOpt = None,
    home: HomeOpt = DEFAULT_HOME,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a task: its terms, where it stands, and every round's outcome (from chain events)."""
    from eth_account import Account
    from rich.table import Table

    from protocol.network import TaskView, connect, load_network
    from protocol.roles.base import tokens
    from protocol.roles.report import summarize_rounds

    config = load_network(network, deployment=deployment, ipfs_api=ipfs)
    session = connect(config, Account.create(), home)  # read-only: a throwaway key signs nothing
    view = TaskView(session, task)
    cfg, state = view.config, view.state()
    remaining, reserved = view.proto.funds_of(task)
    rounds = summarize_rounds(view)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "task": task,
                    "status": state.status.name,
                    "round": state.round,
                    "num_rounds": cfg.num_rounds,
                    "remaining": remaining,
                    "reserved": reserved,
                    "rounds": [
                        {
                            "round": r.round,
                            "finalized": r.finalized,
                            "accepted": r.accepted,
                            "rejected": r.rejected,
                            "paid": r.paid,
                            "slashed": r.slashed,
                        }
                        for r in rounds
                    ],
                }
            )
        )
        return
    console.print(
        f"task {task}: {state.status.name.lower()}, round {state.round} of {cfg.num_rounds}; "
        f"initiator {cfg.initiator}"
    )
    console.print(
        f"reward {tokens(cfg.reward_per_round)}/round, escrow remaining {tokens(remaining)}, "
        f"reserved {tokens(reserved)}; quorum {cfg.quorum}; samples {cfg.sample_rollouts} rollouts, "
        f"{cfg.sample_steps} steps"
    )
    table = Table("round", "submissions", "accepted", "rejected", "paid", "slashed", "finalized")
    for r in rounds:
        table.add_row(
            str(r.round),
            str(len(r.submissions)),
            str(r.accepted),
            str(r.rejected),
            tokens(r.paid),
            tokens(r.slashed),
            "yes" if r.finalized else "no",
        )
    console.print(table)


# ---------------------------------------------------------------------------------------------- nodes


@app.command()
@_account_options(threads=True, tail_before="wait")
def train(
    task: Annotated[int, typer.Option("--task", help="Task id.")],
    opts: AccountOptions,
    wait: WaitOpt = False,
    cheat: Annotated[
        str | None, typer.Option(hidden=True, help="poison | forge-rewards | withhold (demos).")
    ] = None,
) -> None:
    """Run a trainer node: join the task, train every round, submit, upload the picked states, claim."""
    from protocol.roles.trainer import CHEATS, TrainerNode

    if cheat is not None and cheat not in CHEATS:
        from protocol.errors import ConfigError

        raise ConfigError(f"unknown --cheat {cheat!r}; known: {', '.join(CHEATS)}")
    session = opts.session()
    TrainerNode(session, task, out=_output("trainer"), wait=wait, cheat=cheat).run()  # type: ignore[arg-type]


@app.command()
@_account_options(threads=True, tail_before="wait")
def validate(
    task: Annotated[int, typer.Option("--task", help="Task id.")],
    opts: AccountOptions,
    wait: WaitOpt = False,
) -> None:
    """Run a validator node: join, verify every submission, commit-reveal verdicts, vote the next model."""
    from protocol.roles.validator import ValidatorNode

    session = opts.session()
    ValidatorNode(session, task, out=_output("validator"), wait=wait).run()


# ---------------------------------------------------------------------------------------------- demo


@app.command()
def demo(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a JSON summary of the run to this path.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Rounds of the demo task.", min=1)] = 5,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the demo's directory (logs, journals).")] = False,
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
    stop everything. Exit status 1 if a check fails, 3 if the audit finds a discrepancy."""
    from protocol.demo import exit_status, run_demo

    # Logs and CI are not terminals: give the tables room instead of rich's default 80 columns.
    shown = console if console.is_terminal else Console(width=120)
    summary = run_demo(rounds=rounds, console=shown, keep=keep, audit=audit)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        console.print(f"summary written to {json_path}")
    code = exit_status(summary)
    if code:
        raise typer.Exit(code)


def main() -> None:
    """Console-script entry point: run the app, turning trustrl errors into one line."""
    try:
        app()
    except TrustrlError as exc:
        from rich.markup import escape

        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
