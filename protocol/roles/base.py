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
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
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
from protocol.stopping import check_stop, interruptible

__all__ = [
    "Output",
    "ParticipantNode",
    "RoleNode",
    "Step",
    "ensure_joined",
    "top_up",
    "unavailable_margin",
]

LOG_EVERY = 30.0
"""Seconds between two plain-mode lines of the same long step or countdown (`--log-every`)."""

TRANSIENT_PAUSE = 2.0
"""Longest pause of the run loop after a transient failure (seconds)."""


def _shape(message: str) -> str:
    """A message with its numbers blanked: countdowns and counters of one wait share a shape."""
    return re.sub(r"\d+(\.\d+)?", "#", message)


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class Step:
    """A long step in progress: call it to advance by `n` units, `note(text)` for what it is doing now."""

    def __init__(self, advance: Callable[[int], None], show: Callable[[str], None]) -> None:
        self._advance = advance
        self._show = show
        self.done = 0
        self.detail = ""

    def __call__(self, n: int = 1) -> None:
        self.done += n
        self._advance(n)

    def note(self, text: str) -> None:
        """What the step is doing now (shown on its bar, or in its next progress line)."""
        self.detail = text
        self._show(text)


class Output:
    """Where a role reports, in one of three modes.

    * plain (log files, pipes, journalctl): `2026-11-23T14:02:10Z trainer: message` lines. A status (what
      the role waits on) is logged when it changes, and a countdown or counter of the same wait at most
      every `every` seconds. A long step (`progress`) logs a start line, a progress line every `every`
      seconds while it runs, and a done line.
    * json (`--log-json`): the same events as one JSON object a line: `time`, `role`, `event` (`log`,
      `status`, `start`, `progress`, `done`), `message`, and for steps `step`, `done`, `total`, `elapsed_s`.
    * rich (a terminal): the lines above a live area with a spinner and progress bars.
    """

    def __init__(
        self,
        name: str = "",
        *,
        rich: bool = False,
        json_lines: bool = False,
        every: float = LOG_EVERY,
        stream: TextIO | None = None,
    ) -> None:
        self.name = name
        self.rich = rich and not json_lines
        self.json_lines = json_lines
        self.every = every
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream) if self.rich else None
        self._progress: Progress | None = None
        self._status_task: TaskID | None = None
        self._last_status = ""
        self._last_status_logged = (0.0, "")
        self._unfinished: dict[str, float] = {}  # step -> when its last start line was logged
        self._lock = threading.RLock()

    def _emit(self, event: str, message: str, **fields: object) -> None:
        now = time.time()
        with self._lock:
            if self.json_lines:
                record = {
                    "time": _stamp(now),
                    "role": self.name,
                    "event": event,
                    "message": message,
                    **fields,
                }
                self.stream.write(json.dumps(record) + "\n")
            elif self._progress is not None:
                self._progress.console.print(message, highlight=False, markup=False)
                return
            elif self.console is not None:
                self.console.print(message, highlight=False, markup=False)
                return
            else:
                self.stream.write(f"{_stamp(now)} {self.name + ': ' if self.name else ''}{message}\n")
            self.stream.flush()

    def log(self, message: str) -> None:
        """One line of what happened."""
        self._emit("log", message)

    def status(self, message: str) -> None:
        """What the role waits on now (a spinner; in plain and json mode a line when the wait changes, and
        one every `every` seconds while only its numbers change)."""
        if message == self._last_status:
            return
        self._last_status = message
        if self._progress is not None and self._status_task is not None:
            self._progress.update(self._status_task, description=message)
            return
        now = time.monotonic()
        last_at, last_shape = self._last_status_logged
        shape = _shape(message)
        if shape == last_shape and now - last_at < self.every:
            return
        self._last_status_logged = (now, shape)
        self._emit("status", message)

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
    def progress(self, what: str, total: int | None) -> Iterator[Step]:
        """A long step of `total` units (None: unknown), interruptible (see `stop_on_signals`); yields a
        `Step`. A bar in rich mode; else a start line, a line every `every` seconds, and a done line."""
        started = time.monotonic()
        with interruptible():
            if self._progress is not None:
                progress = self._progress
                task = progress.add_task(what, total=total)
                step = Step(
                    lambda n: progress.advance(task, n),
                    lambda text: progress.update(task, description=f"{what}: {text}"),
                )
                try:
                    yield step
                finally:
                    progress.remove_task(task)
            else:
                step = Step(lambda n: None, lambda text: None)
                # A step retried every poll (an artifact not there yet) logs its start line once per
                # `every` seconds, not once per attempt.
                last = self._unfinished.get(what)
                if last is None or started - last >= self.every:
                    self._unfinished[what] = started
                    again = "" if last is None else " (again: the last attempt did not finish)"
                    self._emit("start", f"{what}: started{again}", step=what, done=0, total=total)

                def tick() -> None:
                    elapsed = time.monotonic() - started
                    count = f"{step.done}/{total}, " if total is not None else ""
                    detail = f"; {step.detail}" if step.detail else ""
                    self._emit(
                        "progress",
                        f"{what}: {count}{elapsed:.0f} s so far{detail}",
                        step=what,
                        done=step.done,
                        total=total,
                        elapsed_s=round(elapsed, 1),
                    )

                with _Ticker(self.every, tick):
                    yield step
        elapsed = time.monotonic() - started
        self._unfinished.pop(what, None)
        self._emit("done", f"{what}: done in {elapsed:.1f} s", step=what, elapsed_s=round(elapsed, 1))


class _Ticker:
    """Call `fn` every `every` seconds from a daemon thread while the block runs."""

    def __init__(self, every: float, fn: Callable[[], None]) -> None:
        self.every = every
        self.fn = fn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="output-ticker", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.fn()

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


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
            raise ConfigError(
                f"task {self.task_id} does not exist on this deployment (yet: `--wait` waits for it to be "
                "created)"
            )
        self.out.status(f"waiting for task {self.task_id} to be created")
        return False

    def pending(self) -> list[str]:
        """What this role has left undone that costs something if it is not done in time, each as a sentence
        with its deadline (from the journal and the chain), for the operator of a stopped node."""
        return [
            f"{e.action} {e.key} was started and may or may not be on chain: a restart reconciles it"
            for e in self.journal.open_intents()
        ]

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
                check_stop()
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
                    with interruptible():
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


def unavailable_margin(commit_duration: int) -> float:
    """Seconds before a round's commit deadline at which validators judge artifacts still missing UNAVAILABLE
    (by default; `ValidatorNode(unavailable_margin=...)` overrides it): a quarter of the commit phase, at
    least 3 s, so that they have time to commit."""
    return max(3.0, commit_duration / 4)


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
    tokens = view.session.tokens
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
    tokens = view.session.tokens
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
