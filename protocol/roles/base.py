"""What every role shares: output (lines, status, progress bars), the step/run loop, joining a task.

A role is a class with `step()`, which does the next due action (one transaction, one verification,
one training round) and returns whether it did anything, and `run()`, which calls `step()` until the
role is finished, sleeping a poll interval when nothing was due. Transient failures (the RPC or IPFS
node away, a race with another participant's transaction) are logged and retried by `run()`; errors in
the configuration (a refused task, no stake) propagate.

The roles that join a task with a stake (trainer, validator) derive from `ParticipantNode`: its `step()`
waits for the task, joins it, and once the task has ended settles and claims until nothing is left; they
only say what to do while the task is active (`act()`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import ClassVar, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from protocol.contracts import Role, TaskState, TaskStatus
from protocol.errors import ChainError, ConfigError, ContractRevert, IpfsError
from protocol.journal import Journal
from protocol.network import Session, TaskView
from protocol.retry import deadline

__all__ = ["Output", "ParticipantNode", "RoleNode", "ensure_joined", "to_units", "tokens", "top_up"]

Advance = Callable[[int], None]

TRANSIENT_PAUSE = 2.0
"""Longest pause of the run loop after a transient failure (seconds)."""


DECIMALS = 18


def to_units(amount: Decimal | int | str) -> int:
    """Tokens (a decimal number, up to 18 decimals) as base units."""
    try:
        value = Decimal(str(amount)) * (10**DECIMALS)
    except InvalidOperation:
        raise ConfigError(f"not a token amount: {amount!r}") from None
    if value != value.to_integral_value() or value < 0:
        raise ConfigError(f"token amount {amount} must be >= 0 with at most {DECIMALS} decimals")
    return int(value)


def tokens(amount: int) -> str:
    """An amount in base units as tokens (18 decimals), trimmed."""
    whole, frac = divmod(int(amount), 10**18)
    text = f"{whole}.{frac:018d}".rstrip("0").rstrip(".")
    return text


class Output:
    """Where a role reports. Plain: timestamped lines (log files, pipes). Rich: the same lines above a live
    area with a spinner for what the role waits on and progress bars for long work."""

    def __init__(self, name: str = "", *, rich: bool = False, stream: TextIO | None = None) -> None:
        self.name = name
        self.rich = rich
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream) if rich else None
        self._progress: Progress | None = None
        self._status_task: TaskID | None = None
        self._last_status = ""
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        """One line of what happened."""
        with self._lock:
            if self._progress is not None:
                self._progress.console.print(message, highlight=False, markup=False)
            elif self.console is not None:
                self.console.print(message, highlight=False, markup=False)
            else:
                prefix = (
                    f"{time.strftime('%H:%M:%S')} {self.name}: " if self.name else time.strftime("%H:%M:%S ")
                )
                self.stream.write(prefix + message + "\n")
                self.stream.flush()

    def status(self, message: str) -> None:
        """What the role waits on now (shown on a spinner, or logged once when it changes)."""
        if message == self._last_status:
            return
        self._last_status = message
        if self._progress is not None and self._status_task is not None:
            self._progress.update(self._status_task, description=message)
        else:
            self.log(message)

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        """Keep a live area (spinner + bars) while the block runs (rich only)."""
        if not self.rich or self._progress is not None:
            yield
            return
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        with progress:
            self._progress = progress
            self._status_task = progress.add_task(self._last_status or "starting", total=None)
            try:
                yield
            finally:
                self._progress = None
                self._status_task = None

    @contextlib.contextmanager
    def progress(self, what: str, total: int) -> Iterator[Advance]:
        """A progress bar for `total` units of work; yields `advance(n)`."""
        started = time.monotonic()
        if self._progress is not None:
            task = self._progress.add_task(what, total=total)
            progress = self._progress

            def advance(n: int = 1) -> None:
                progress.advance(task, n)

            try:
                yield advance
            finally:
                progress.remove_task(task)
            self.log(f"{what}: done in {time.monotonic() - started:.1f} s")
            return

        def ignore(n: int = 1) -> None:
            return None

        yield ignore
        self.log(f"{what}: done in {time.monotonic() - started:.1f} s")


class Upkeep(Protocol):
    """A task's upkeep (`protocol.roles.settle.Keeper`, which builds on this module)."""

    waiting: bool
    """Whether a due duty was left to a keeper before this one in turn (so this role is not done yet)."""

    def upkeep(self) -> bool:
        """Send the next due upkeep transaction, else claim this account's credit; True if either did."""
        ...


class RoleNode:
    """Base of the long-running roles: a task view, a working directory, a journal, a run loop."""

    role_name = "role"
    keeper: Upkeep
    """The task's upkeep this role does (each role's constructor sets it up)."""

    def __init__(
        self, session: Session, task_id: int, *, out: Output | None = None, wait: bool = True
    ) -> None:
        self.session = session
        self.task_id = task_id
        self.view = TaskView(session, task_id)
        self.out = out or Output(self.role_name)
        self.wait_for_task = wait
        self.dir: Path = session.task_dir(task_id, self.role_name)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(self.dir / "journal.jsonl")
        entries = self.journal.entries()
        if entries:
            pending = self.journal.open_intents()
            self.out.log(
                f"resuming {self.role_name} of task {task_id} from its journal ({len(entries)} entries"
                + (f", {len(pending)} to reconcile with the chain)" if pending else ")")
            )
        self._finished = False
        self._exists = False
        self._errors: dict[str, int] = {}

    @property
    def me(self) -> str:
        """This role's address."""
        return self.session.address

    @property
    def finished(self) -> bool:
        """Whether the role has nothing left to do for its task."""
        return self._finished

    def step(self) -> bool:
        """Do the next due action; True if something was done."""
        raise NotImplementedError

    def task_ready(self) -> bool:
        """Whether the task exists (waits for it, or refuses a task id that does not exist)."""
        if self._exists or self.view.exists():
            self._exists = True
            return True
        if not self.wait_for_task:
            raise ConfigError(f"task {self.task_id} does not exist on this deployment")
        self.out.status(f"waiting for task {self.task_id} to be created")
        return False

    def upkeep(self) -> bool:
        """Send the next due upkeep transaction (`keeper`), else claim this account's credit; True if either
        did something."""
        return self.keeper.upkeep()

    def run(self, *, timeout: float | None = None, stop: threading.Event | None = None) -> None:
        """Step until finished (or `timeout` seconds, or `stop` is set); transient errors are retried."""
        from protocol.artifacts import ArtifactUnavailableError

        deadline = None if timeout is None else time.monotonic() + timeout
        idle_block = -1  # the block at which the last step found nothing to do
        with self.out.live():
            while not self._finished:
                if stop is not None and stop.is_set():
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise ChainError(f"{self.role_name} did not finish within {timeout:.0f} s")
                try:
                    # Nothing on chain changes between blocks: an idle role looks again only at a new one,
                    # which keeps many roles on one machine from spending its CPU on polling.
                    block = self.session.client.block_number()
                    did = False if block == idle_block else self.step()
                    idle_block = -1 if did else block
                except (ChainError, IpfsError, ArtifactUnavailableError) as exc:
                    self._transient(exc)
                    did, idle_block = False, -1
                if not did and not self._finished:
                    time.sleep(self.session.poll_interval)

    def _transient(self, exc: Exception) -> None:
        """Log a transient failure (the same message at most every 20th time) and back off a little: at most
        `TRANSIENT_PAUSE` s, so that a role is back at most that long after an outage ends (each request
        already waited its own retries)."""
        message = f"{type(exc).__name__}: {exc}"
        count = self._errors.get(message, 0)
        self._errors[message] = count + 1
        if count % 20 == 0:
            kind = "revert" if isinstance(exc, ContractRevert) else "will retry"
            self.out.log(f"{kind}: {message}")
        time.sleep(min(TRANSIENT_PAUSE, self.session.poll_interval * (1 + min(count, 10))))

    def until(self, chain_time: int) -> contextlib.AbstractContextManager[None]:
        """A block within which retries and receipt waits end by the chain time `chain_time` (a phase
        deadline this role works toward): what is not done by then is pointless."""
        left = chain_time - self.view.now()
        return deadline(time.monotonic() + max(0.0, float(left)))


class ParticipantNode(RoleNode):
    """Base of the roles that join the task as `join_as` (trainer, validator). `step()` waits for the task and
    refuses one whose spec does not match the chain; while the task is active it joins it (once) and calls
    `act()`; once the task has ended it settles and claims until nothing is left, and is then finished."""

    join_as: ClassVar[Role]

    def __init__(
        self, session: Session, task_id: int, *, out: Output | None = None, wait: bool = True
    ) -> None:
        super().__init__(session, task_id, out=out, wait=wait)
        self.from_round: int | None = None
        """The first round this account takes part in (None until it has joined)."""

    def step(self) -> bool:
        """Do the next due action; True if something was done."""
        if not self.task_ready():
            return False
        view = self.view
        _ = view.spec  # refuses a task whose spec does not match the chain
        state = view.state()
        if state.status != TaskStatus.ACTIVE:
            did = self.upkeep()
            if not did and not self.keeper.waiting:
                self.out.status(f"task {self.task_id} is {state.status.name.lower()}; all settled")
                self._finished = True
            return did
        if self.from_round is None:
            self.from_round = ensure_joined(view, self.join_as, self.journal, self.out)
            if self.from_round is None:
                return False
        return self.act(state, self.from_round)

    def act(self, state: TaskState, from_round: int) -> bool:
        """Do the next due action in the active task, whose state is `state`, having joined it from round
        `from_round`; True if something was done."""
        raise NotImplementedError


def ensure_joined(view: TaskView, role: Role, journal: Journal, out: Output) -> int | None:
    """Join the task as `role` if not yet (allocating the minimum stake from free stake); returns the first
    round this account takes part in, or None when it cannot join now (the task ended)."""
    proto = view.proto
    me = proto.address
    entry = journal.entry("join", str(int(role)))
    if entry is not None and entry.is_done:
        return int(entry.data["from_round"])
    current, from_round = proto.client.call(proto.escrow.functions.participantOf(view.task_id, me))
    if int(current) == int(role):
        journal.done("join", str(int(role)), from_round=int(from_round))
        return int(from_round)
    if int(current) != int(Role.NONE):
        raise ConfigError(f"{me} already joined task {view.task_id} as {Role(int(current)).name.lower()}")
    state = view.state()
    if state.status != TaskStatus.ACTIVE:
        return None
    config = view.config
    need = config.min_trainer_stake if role == Role.TRAINER else config.min_validator_stake
    allocated = proto.allocation_of(view.task_id)
    if allocated < need:
        free = int(proto.client.call(proto.stakes.functions.freeStakeOf(me)))
        missing = need - allocated
        if free < missing:
            raise ConfigError(
                f"{me} needs {tokens(need)} tokens allocated to task {view.task_id} and has "
                f"{tokens(allocated)} allocated, {tokens(free)} free: stake more first (`trustrl stake`)"
            )
        journal.intent("allocate", str(view.task_id), amount=missing)
        proto.allocate(view.task_id, missing)
        journal.done("allocate", str(view.task_id), amount=missing)
        out.log(f"allocated {tokens(missing)} tokens of stake to task {view.task_id}")
    journal.intent("join", str(int(role)))
    try:
        first = proto.join_task(view.task_id, role)
    except ContractRevert as exc:
        if exc.error != "AlreadyJoined":
            raise
        _, first = proto.client.call(proto.escrow.functions.participantOf(view.task_id, me))
    journal.done("join", str(int(role)), from_round=int(first))
    out.log(f"joined task {view.task_id} as {role.name.lower()} from round {int(first)}")
    return int(first)


def top_up(view: TaskView, minimum: int, journal: Journal, out: Output, when: str) -> bool:
    """Whether this account's allocation to the task is at least `minimum` (a slash may have cut it below);
    tops it up from free stake when it can, else says why it cannot act and returns False."""
    proto = view.proto
    allocated = proto.allocation_of(view.task_id)
    if allocated >= minimum:
        return True
    missing = minimum - allocated
    free = int(proto.client.call(proto.stakes.functions.freeStakeOf(proto.address)))
    if free < missing:
        out.status(
            f"{when}: allocation {tokens(allocated)} is below the task's minimum {tokens(minimum)} and only "
            f"{tokens(free)} is free: stake more to continue"
        )
        return False
    journal.intent("allocate", when, amount=missing)
    proto.allocate(view.task_id, missing)
    journal.done("allocate", when, amount=missing)
    out.log(f"{when}: topped up the allocation to task {view.task_id} by {tokens(missing)} tokens")
    return True
