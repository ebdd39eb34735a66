"""`trustrl demo`: the whole network on one machine, from nothing, and back to nothing.

It starts its own anvil (1 s blocks, so seed blocks arrive on their own) and IPFS daemon, deploys the
contracts, turns anvil dev accounts into encrypted keystores (the password travels to the children in
an environment variable), mints and stakes, and starts 10 OS processes through the real CLI:

    initiator    trustrl task create demo-task.yaml --follow    (warm start, spec + model to IPFS, escrow;
                 --honeypot-secret bait-plan.json               honeypots at rate 0.9, picked by the plan)
    honeypot     trustrl train --task 1 --bait-secret           the initiator's bait: known-bad work in the
                 bait-plan.json --cheat bait                    plan's honeypot rounds, its defect rotated
                                                                by the plan (every step or every rollout
                                                                wrong: always rejected), honest (paid)
                                                                otherwise
    trainer-1..3 trustrl train --task 1                         honest
    cheater      trustrl train --task 1 --cheat stealthy        poisons step 0 (the seed may not pick it) and
                                                                fabricates one rollout per step
    validator-1..3 trustrl validate --task 1                    weight 2 each (100 tokens allocated)
    lazy         trustrl validate --task 1 --lazy               accepts everything unchecked: each revealed
                                                                honeypot it was drawn on slashes it (it
                                                                ends with less); weight 1

The task uses stake-weighted committees (`committee_draws`: COMMITTEE_DRAWS draws per submission over the
validators' weights, docs/protocol.md "Committees"): a lazy validator is caught only when it is drawn on
the honeypot, so the committee is large for this small pool (see COMMITTEE_DRAWS).

While they run, it shows a table per round (submissions accepted / rejected, rewards, slashes, and the
held-out accuracy of the round's global checkpoint, evaluated here). When the task has completed and
everyone has settled and claimed, it reconciles every balance from chain events, checks the demo's
claims (accuracy rose, the cheater was slashed and never paid, honest trainers were paid and never
slashed, honest validators never slashed, the lazy validator slashed by the honeypots and poorer than it
started, tokens conserved). With `audit`, the auditor (protocol/audit) then replays the task's history
from the chain's events and IPFS while both still run: it rebuilds every payout, slash and balance,
re-verifies every submission and aggregate, and must reproduce the demo's own numbers. Last, it stops
every process it started by pid, and returns a JSON-ready summary (`exit_status` maps it to the exit
status of `trustrl demo`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from protocol.audit.cli import EXIT_DISCREPANCIES
from protocol.contracts import BURN_ADDRESS, Phase, TaskStatus
from protocol.display import amount
from protocol.errors import ProtocolError
from protocol.stopping import Interrupted, deferred_signals, stop_on_signals

__all__ = ["DEMO_TASK", "DemoError", "exit_status", "run_demo", "serve_kept"]

DEMO_TASK: dict[str, Any] = {
    "description": "trustrl demo: 2-digit addition, a 0.08M-parameter policy, 3 honest trainers, a cheater, "
    "a honeypot, a lazy validator",
    "env": {"name": "addition", "params": {"digits": 2}},
    "model": {
        "hidden_size": 64,
        "num_layers": 2,
        "num_heads": 4,
        "num_kv_heads": 4,
        "intermediate_size": 128,
        "max_position_embeddings": 32,
    },
    # H = 32 small steps (lr 5e-5) a round rather than 8 of 1e-4: AdamW goes about twice as far, in steps
    # half as long, with four times the rollouts behind it (held-out gain +23 / +33 points under the
    # avx512 / avx2 kernels, where 8 steps gave +14 / +18; scripts/demo_learning.py).
    "inner": {
        "steps": 32,
        "rollout_every": 1,
        "num_prompts": 8,
        "group_size": 8,
        "max_new_tokens": 4,
        "grpo": {"lr": 5e-5},
    },
    "outer": {"lr": 1.0, "momentum": 0.0, "clip": 1.0},
    "sample_rollouts": "all",
    "sample_steps": 16,
    "heldout_size": 500,
    "initial": {"warmstart": {"lr": 1e-3, "target_accuracy": 0.3, "eval_size": 200}},
    "chain": {
        "num_rounds": 5,
        "reward_per_round": 100,
        "validator_share_bps": 2000,
        "min_trainer_stake": 200,
        "min_validator_stake": 50,  # see HONEYPOT_RATE
        "quorum": 32,  # revealed draws (of 63): more than one validator's
        "max_trainers": 8,
        "max_validators": 8,
        "submit_duration": 90,
        # Verification of 5 submissions takes ~12 CPU-s, minutes on a loaded machine; the phase closes as soon
        # as every validator committed, so a long window costs a quiet machine nothing.
        "commit_duration": 240,
        "reveal_duration": 45,
        "vote_duration": 45,
        "seed_delay": 2,
        "trainer_slash_bps": 10_000,
        "validator_slash_bps": 500,
        "max_empty_rounds": 0,
        "committee_draws": 63,
        "start_delay": 6,
    },
}
"""The demo's task file (written to the demo directory as YAML for the initiator process)."""

DECIMALS = 18
"""The demo's TestToken's decimals()."""
TOKENS = 10**DECIMALS
MINT = 2_000 * TOKENS
STAKE = 1_200 * TOKENS
BAIT_MINT = 3_000 * TOKENS
BAIT_STAKE = 2_400 * TOKENS
"""The honeypot's bait loses up to two minimum stakes (2 x 200) per honeypot round: it stakes enough for a
honeypot in every round (a bait that runs out of stake leaves honeypot rounds empty, in which laziness is
paid)."""
COMMITTEE_DRAWS: int = DEMO_TASK["chain"]["committee_draws"]
"""k = 63 draws per submission over the weights 2, 2, 2 (the honest validators) and 1 (the lazy one): the
lazy validator holds s = 1/7 of the weight, and a honeypot slashes it only when it is drawn on it and holds
at most a third of its draws (decided REJECT), P = P(1 <= Bin(63, 1/7) <= 21) = 1 - 9.5e-5 per honeypot
round: the demo's checks (the lazy validator slashed, poorer than it started) hold in all but ~1e-4 of the
runs, even the 1-round ones. A smaller k misses more often in a pool this small (k = 12: 18% a round; equal
weights 1, 1, 1, 1 and k = 63: 5%, the lazy third of the draws). The gas is O(N x k): 5 x 63 draws
(docs/protocol.md, "Laziness under committees"). The quorum counts revealed draws, 32 of 63 (as 2 of 4
validators did without committees): more than any one validator holds (the lazy one ~9, an honest one ~18),
so a validator alone never decides; with quorum 2, the lazy validator decided every submission of a round
alone (the bait and the cheater ACCEPTED and paid) when the honest ones missed the commit deadline on a
loaded machine."""
VALIDATOR_WEIGHT = 2
VALIDATOR_ALLOCATION = VALIDATOR_WEIGHT * DEMO_TASK["chain"]["min_validator_stake"] * TOKENS
"""What each honest validator allocates to the task before it joins (weight 2 in units of the minimum
validator stake); the lazy one allocates the minimum (weight 1) when it joins."""
KEYSTORE_SCRYPT_N = 1 << 14  # throwaway demo keys: a cheap KDF keeps 8 process starts quick
HONEST_TRAINERS = 3
VALIDATORS = 3
HONEYPOT_RATE = 0.9
"""The demo's honeypot rate h (docs/protocol.md, "Laziness does not pay"): with its validators' share of 5
tokens a round and a lazy slash of 10 (20% of the minimum validator stake, 50), laziness loses money per
round for h > 5/15. The bait (`--cheat bait`) rotates its defect over the two expensive check classes
(`protocol.baits.ROTATION`), so a validator that skips one of them is caught on half of the honeypots, at
rate h/2, and `task create` checks that one over the whole task (the slashes compound and take at most the
allocation; with committees of 63 at every weight share up to a quarter): at the stake of 50 it needs
h >= 0.78 for 5 rounds and accepts h = 0.9 for up to 10 (a stake of 40 only up to 5 rounds; at 10 the
partial checker would expect +4.10 tokens over the demo's task, "The partial checker"). The demo's bait
plan is drawn until it puts the honeypots in every round but the last (4 of 5 at the default length),
so that each run shows the bait cheating and, in the last round, training honestly and paid; a real
initiator keeps the first random key (`protocol.baits`)."""
BAIT_PLAN = "bait-plan.json"
TASK_ID = 1
STARTUP_TIMEOUT = 240.0
ROUND_TIMEOUT = 600.0
"""Seconds a round may go without progress before the demo gives up (longer than a round's phases: 90 +
240 + 45 + 45)."""
WIND_DOWN_TIMEOUT = 120.0
ACCOUNTS = 12
CHILD_LOG_EVERY = 10
"""Seconds between the progress lines of the processes' logs (the demo shows the initiator's)."""
ANVIL_STATE = "anvil-state.json"
"""Where a kept demo's chain is dumped when anvil stops (`--keep`), and loaded from (`--resume`)."""
AUDIT_LINES = 12
"""Discrepancies printed at the end of the demo (all of them are in the summary)."""


class DemoError(ProtocolError):
    """The demo could not run to its end (a process failed, or it timed out)."""


@dataclass
class Participant:
    """One account of the demo and the process that acts for it."""

    name: str
    role: str
    address: str
    key: str
    keystore: Path
    minted: int = 0
    staked: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None


@dataclass
class RoundRow:
    """One row of the live table."""

    round: int
    submissions: int = 0
    accepted: int = 0
    rejected: int = 0
    unavailable: int = 0
    undecided: int = 0
    paid: int = 0
    slashed: int = 0
    accuracy: float | None = None
    model_changed: bool = False
    settled: bool = False
    finished_at: float = 0.0


@dataclass
class DemoState:
    """What the monitor knows."""

    started: float = field(default_factory=time.monotonic)
    phase: str = "starting"
    accuracy0: float | None = None
    rows: dict[int, RoundRow] = field(default_factory=dict)
    evaluated: dict[bytes, float] = field(default_factory=dict)


def _fmt(units: int) -> str:
    """An amount of the demo's TestToken (18 decimals), to 2 decimals (exact units are in --json)."""
    return amount(units, DECIMALS, places=2, dust=False)


class Demo:
    """One run of the demo (see the module docstring)."""

    def __init__(
        self, *, rounds: int, console: Console, keep: bool = False, audit: bool = False, stay: bool = False
    ) -> None:
        self.rounds = rounds
        self.console = console
        self.keep = keep or stay
        self.stay = stay
        self.audit = audit
        self.dir = Path(tempfile.mkdtemp(prefix="trustrl-demo-"))
        self.password = secrets.token_hex(16)
        self.people: list[Participant] = []
        self.state = DemoState()
        self._initiator_read = 0
        self.anvil: Any = None
        self.ipfs: Any = None
        self.session: Any = None
        self.view: Any = None
        self._ml: Any = None
        self.audit_result: Any = None
        """The `AuditResult` of the audit at the end (with `audit`), for callers that want more than the
        summary."""

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> dict[str, Any]:
        """Run the demo; always stops everything it started."""
        try:
            self._start_infrastructure()
            self._deploy_and_fund()
            self._launch()
            self._monitor()
            summary = self._summary()
            if self.audit:
                summary["audit"] = self._audit(summary)
                summary["ok"] = summary["ok"] and summary["audit"]["ok"]
            if self.stay:
                self._serve_until_interrupted()
            return summary
        finally:
            with deferred_signals():
                self._stop()

    def _serve_until_interrupted(self) -> None:
        """`--stay`: keep anvil and IPFS running, for queries and audits, until SIGINT or SIGTERM."""
        _print_serving(self.console, self.dir, self.anvil, self.ipfs)
        with contextlib.suppress(Interrupted):
            while self.anvil.running and self.ipfs.running:
                time.sleep(0.5)

    def say(self, message: str) -> None:
        """A line for the person watching."""
        elapsed = time.monotonic() - self.state.started
        self.console.print(f"[dim]{elapsed:6.1f}s[/] {message}", highlight=False)

    def _start_infrastructure(self) -> None:
        from protocol.anvil import Anvil
        from protocol.ipfs_daemon import IpfsDaemon

        self.say(f"demo directory {self.dir}")
        dump = ("--dump-state", str(self.dir / ANVIL_STATE)) if self.keep else ()
        self.anvil = Anvil(block_time=1.0, accounts=ACCOUNTS, extra_args=dump).start()
        self.say(f"anvil pid {self.anvil.pid} at {self.anvil.rpc_url} (1 s blocks)")
        # The IPFS daemon takes seconds to start: it does so while the contracts are deployed.
        self.ipfs = IpfsDaemon(self.dir / "ipfs")
        self._ipfs_error: BaseException | None = None

        def start_ipfs() -> None:
            try:
                self.ipfs.start()
            except BaseException as exc:  # re-raised in the main thread by _wait_ipfs
                self._ipfs_error = exc

        self._ipfs_thread = threading.Thread(target=start_ipfs, name="ipfs-start", daemon=True)
        self._ipfs_thread.start()

    def _wait_ipfs(self) -> None:
        self._ipfs_thread.join()
        if self._ipfs_error is not None:
            raise self._ipfs_error
        self.say(f"IPFS daemon pid {self.ipfs.pid} at {self.ipfs.api_url}")

    def _deploy_and_fund(self) -> None:
        from hexbytes import HexBytes

        from protocol.chain import ChainClient, save_keystore_account
        from protocol.compile import compile_contracts
        from protocol.contracts import deploy_protocol
        from protocol.network import NetworkConfig

        compiled = compile_contracts()
        accounts = self.anvil.accounts
        deployer = ChainClient(self.anvil.rpc_url, accounts[0][1], abis=[c.abi for c in compiled.values()])
        # The settlement grace is also the last round's honeypot window (docs/protocol.md): room for the
        # initiator's reveal and slash on a loaded machine.
        deployment = deploy_protocol(deployer, unbonding_period=60, settlement_grace=120, compiled=compiled)
        self._wait_ipfs()
        self.config = NetworkConfig(
            rpc_url=self.anvil.rpc_url, deployment=deployment.addresses, ipfs_api=self.ipfs.api_url
        )
        self.network_file = self.dir / "network.json"
        self.network_file.write_text(self.config.model_dump_json(indent=2))
        self.say(f"contracts deployed: TaskEscrow {deployment.addresses.task_escrow}")

        roles = (
            ["initiator", "honeypot"]
            + ["trainer"] * HONEST_TRAINERS
            + ["cheater"]
            + ["validator"] * VALIDATORS
            + ["lazy"]
        )
        counts: dict[str, int] = {}
        keys = self.dir / "keys"
        for i, role in enumerate(roles, start=1):
            counts[role] = counts.get(role, 0) + 1
            name = role if role in ("initiator", "cheater", "honeypot", "lazy") else f"{role}-{counts[role]}"
            address, key = accounts[i]
            path = keys / f"{name}.json"
            save_keystore_account(key, path, self.password, iterations=KEYSTORE_SCRYPT_N)
            self.people.append(Participant(name, role, address, key, path))
        # Mint to everyone, then approve + stake for the trainers and validators, pipelined: each
        # account's transactions are ordered by nonce, so `stake` runs after its `approve`.
        for p in self.people:
            p.minted = BAIT_MINT if p.role == "honeypot" else MINT
        sent = [deployer.send(deployment.token.functions.mint(p.address, p.minted)) for p in self.people]
        for minted in sent:
            deployer.wait(minted)
        staking: list[tuple[ChainClient, HexBytes]] = []
        for p in self.people:
            if p.role == "initiator":
                continue
            client = deployer.with_account(p.key)
            p.staked = BAIT_STAKE if p.role == "honeypot" else STAKE
            approve = deployment.token.functions.approve(deployment.stake_manager.address, p.staked)
            staking.append((client, client.send(approve)))
            stake = deployment.stake_manager.functions.stake(p.staked)
            staking.append((client, client.send(stake, gas=200_000)))  # no estimate: approve is not mined yet
            if p.role == "validator":  # its weight in the committee draws (the task's id is known: 1)
                allocate = deployment.stake_manager.functions.allocate(TASK_ID, VALIDATOR_ALLOCATION)
                staking.append((client, client.send(allocate, gas=200_000)))
        for client, tx in staking:
            client.wait(tx)
        self.say(
            f"minted {MINT // TOKENS} tokens to each of {len(self.people)} accounts (the honeypot's bait "
            f"{BAIT_MINT // TOKENS}); {len(self.people) - 1} staked {STAKE // TOKENS} (the bait "
            f"{BAIT_STAKE // TOKENS}); the honest validators allocated {VALIDATOR_ALLOCATION // TOKENS} to "
            f"task {TASK_ID} (committees of {COMMITTEE_DRAWS} draws per submission over weights "
            f"{', '.join([str(VALIDATOR_WEIGHT)] * VALIDATORS)} and the lazy validator's 1)"
        )
        self._monitor_key = accounts[0][1]

    def _bait_plan(self, bait: str) -> Path:
        """Write the demo's bait plan (mode 0600): keys are drawn until the honeypots fall in every round but
        the last (see HONEYPOT_RATE)."""
        from protocol.baits import BaitPlan, RoundScope, create_plan, schedule

        scope = RoundScope(self.anvil.chain_id, self.config.deployment.task_escrow, TASK_ID)
        want = {r: bait for r in range(max(self.rounds - 1, 1))}
        while True:
            key = secrets.token_bytes(32)
            if schedule(BaitPlan(key, HONEYPOT_RATE, (bait,)), scope, self.rounds) == want:
                break
        path = self.dir / BAIT_PLAN
        create_plan(path, HONEYPOT_RATE, [bait], key=key)
        rounds = ", ".join(map(str, want))
        self.say(f"bait plan {path.name}: honeypots in rounds {rounds} (secret, mode 0600)")
        return path

    def _launch(self) -> None:
        task = dict(DEMO_TASK)
        task["chain"] = {**DEMO_TASK["chain"], "num_rounds": self.rounds}
        bait = next(p.address for p in self.people if p.role == "honeypot")
        plan = self._bait_plan(bait)
        task["honeypots"] = {"rate": HONEYPOT_RATE, "trainer": bait, "secret": str(plan)}
        task_file = self.dir / "demo-task.yaml"
        task_file.write_text(yaml.safe_dump(task, sort_keys=False))
        env = {
            **os.environ,
            "TRUSTRL_PASSWORD": self.password,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
        for key in (
            "TRUSTRL_NETWORK",
            "TRUSTRL_DEPLOYMENT",
            "TRUSTRL_KEYSTORE",
            "TRUSTRL_IPFS",
            "TRUSTRL_HOME",
        ):
            env.pop(key, None)
        logs = self.dir / "logs"
        logs.mkdir()
        for p in self.people:
            common = [
                "--network",
                str(self.network_file),
                "--keystore",
                str(p.keystore),
                "--home",
                str(self.dir / f"home-{p.name}"),
                "--threads",
                "1",
            ]
            if p.role == "initiator":
                args = ["task", "create", str(task_file), "--follow", *common]
            elif p.role in ("validator", "lazy"):
                args = ["validate", "--task", str(TASK_ID), "--wait", *common]
                if p.role == "lazy":
                    args += ["--lazy"]
            else:
                args = ["train", "--task", str(TASK_ID), "--wait", *common]
                if p.role == "cheater":
                    args += ["--cheat", "stealthy"]
                if p.role == "honeypot":
                    args += ["--bait-secret", str(plan), "--cheat", "bait"]
            p.log = logs / f"{p.name}.log"
            with open(p.log, "wb") as log:
                p.proc = subprocess.Popen(
                    [sys.executable, "-m", "protocol.cli", "--log-every", str(CHILD_LOG_EVERY), *args],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
        self.say("started " + ", ".join(f"{p.name} (pid {p.proc.pid})" for p in self.people if p.proc))

    def _stop(self) -> None:
        for p in self.people:
            if p.proc is not None and p.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.people:
            if p.proc is None:
                continue
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.proc.pid, signal.SIGKILL)
                p.proc.wait()
        if self.session is not None:
            self.session.close()
        if self.ipfs is not None:
            self._ipfs_thread.join()
            self.ipfs.stop()
        if self.anvil is not None:
            self.anvil.stop()
        if self.keep:
            self.say(
                f"kept {self.dir}: logs in {self.dir / 'logs'}, the chain in {self.dir / ANVIL_STATE}, the "
                f"IPFS repo in {self.dir / 'ipfs'}; `trustrl demo --resume {self.dir}` serves them again"
            )
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ monitoring
    def _check_children(self, ended: bool) -> bool:
        """Raise if a process failed; True when every process has exited."""
        for p in self.people:
            assert p.proc is not None
            code = p.proc.poll()
            if code == 0 and not ended:  # it may have seen the task end after this loop read the state
                ended = self.view.exists() and self.view.state().status != TaskStatus.ACTIVE
            if code is not None and (code != 0 or not ended):
                raise DemoError(f"{p.name} (pid {p.proc.pid}) exited with status {code}:\n{self._tail(p)}")
        return all(p.proc is not None and p.proc.poll() is not None for p in self.people)

    def _initiator_news(self) -> list[str]:
        """The initiator's new log lines (its warm start's progress, the uploads, the task's creation),
        without their timestamp and name."""
        log = self.people[0].log
        if log is None or not log.exists():
            return []
        with open(log, "rb") as f:
            f.seek(self._initiator_read)
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._initiator_read += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        return [line.partition(" initiator: ")[2] or line for line in lines if line.strip()]

    @staticmethod
    def _tail(p: Participant, lines: int = 15) -> str:
        if p.log is None or not p.log.exists():
            return "(no log)"
        return "\n".join(p.log.read_text(errors="replace").splitlines()[-lines:])

    def _accuracy(self, model_hash: bytes) -> float:
        """Held-out accuracy (greedy, the spec's held-out size) of a global checkpoint."""
        if model_hash in self.state.evaluated:
            return self.state.evaluated[model_hash]
        import torch

        from trainer.checkpoint import load_weights
        from trainer.derive import HELDOUT_DOMAIN
        from trainer.diloco import load_global_checkpoint
        from trainer.model import model_from_config
        from trainer.rollout import evaluate_accuracy
        from trainer.warmstart import problems

        torch.set_num_threads(1)
        view = self.view
        env, tokenizer, hf = view.ml()
        if self._ml is None:
            self._ml = (model_from_config(hf), problems(env, HELDOUT_DOMAIN, view.spec.heldout_size))
        model, heldout = self._ml
        weights, _ = load_global_checkpoint(view.checkpoint(model_hash))
        load_weights(model, weights)
        value = evaluate_accuracy(model, tokenizer, env, heldout, max_new_tokens=env.max_answer_len + 1)
        self.state.evaluated[model_hash] = value
        return value

    def _phase(self) -> str:
        view, proto = self.view, self.view.proto
        state = view.state()
        r = state.round
        if state.status != TaskStatus.ACTIVE:
            return f"task {state.status.name.lower()}: settling and claiming"
        now = view.now()
        if now < state.round_start:
            return f"round {r} opens in {state.round_start - now} s (joining)"
        if not state.seed_drawn:
            if state.seed_block:
                return f"round {r}: {state.submissions} submitted; waiting for seed block {state.seed_block}"
            active = int(proto.client.call(proto.escrow.functions.activeTrainers(TASK_ID, r)))
            return f"round {r}: training ({state.submissions}/{active} submitted)"
        ballot = proto.ballot_of(TASK_ID, r)
        phase = proto.phase_of(TASK_ID, r)
        if phase == Phase.COMMIT:
            return f"round {r}: validators verifying ({ballot.committed}/{ballot.expected} committed)"
        if phase == Phase.REVEAL:
            return f"round {r}: revealing verdicts ({ballot.revealed}/{ballot.committed})"
        if phase == Phase.VOTE_COMMIT:
            return f"round {r}: voting the next model ({ballot.vote_committed}/{ballot.revealed} committed)"
        if phase == Phase.VOTE_REVEAL:
            return f"round {r}: revealing model votes ({ballot.voted}/{ballot.vote_committed})"
        return f"round {r}: finalising"

    def _table(self) -> Group:
        table = Table(title=f"trustrl demo: task {TASK_ID}, rounds 0 to {self.rounds - 1}", expand=False)
        for name, justify in (
            ("round", "right"),
            ("submissions", "right"),
            ("accepted", "right"),
            ("rejected", "right"),
            ("unavailable", "right"),
            ("rewards paid", "right"),
            ("slashed", "right"),
            ("held-out accuracy", "right"),
            ("time", "right"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        acc0 = self.state.accuracy0
        table.add_row("initial", "", "", "", "", "", "", "…" if acc0 is None else f"{acc0:.3f}", "")
        for r in sorted(self.state.rows):
            row = self.state.rows[r]
            acc = (
                "…" if row.accuracy is None else f"{row.accuracy:.3f}" + ("" if row.model_changed else " (=)")
            )
            table.add_row(
                str(r),
                str(row.submissions),
                str(row.accepted),
                f"[red]{row.rejected}[/]" if row.rejected else "0",
                f"[red]{row.unavailable}[/]" if row.unavailable else "0",
                _fmt(row.paid),
                f"[red]{_fmt(row.slashed)}[/]" if row.slashed else "0",
                acc,
                f"{row.finished_at:.0f}s" if row.finished_at else "",
            )
        return Group(table, Text(self.state.phase, style="cyan"))

    def _update_rows(self) -> None:
        from protocol.roles.report import summarize_rounds

        for summary in summarize_rounds(self.view):
            if not summary.finalized:
                continue
            row = self.state.rows.get(summary.round)
            if row is None:
                row = self.state.rows[summary.round] = RoundRow(summary.round)
                row.finished_at = time.monotonic() - self.state.started
            row.submissions = len(summary.submissions)
            row.accepted, row.rejected, row.undecided = summary.accepted, summary.rejected, summary.undecided
            row.unavailable = summary.unavailable
            row.paid, row.slashed, row.settled = summary.paid, summary.slashed, summary.settled
            if row.accuracy is None:
                previous = self._base_before(summary.round)
                row.model_changed = summary.next_base != previous
                row.accuracy = self._accuracy(summary.next_base)

    def _print_rows(self, printed: set[int], *, final: bool = False) -> None:
        """Print each round once it is settled (a log, where no live table can be drawn)."""
        for r in sorted(self.state.rows):
            row = self.state.rows[r]
            if r in printed or row.accuracy is None or not (row.settled or final):
                continue
            printed.add(r)
            self.say(
                f"round {r}: {row.submissions} submissions, {row.accepted} accepted, {row.rejected} "
                f"rejected, {row.unavailable} unavailable; paid {_fmt(row.paid)}, slashed "
                f"{_fmt(row.slashed)}; held-out accuracy {row.accuracy:.3f}"
            )

    def _base_before(self, round_: int) -> bytes:
        if round_ == 0:
            return bytes(self.view.created["initialModelHash"])
        for e in self.view.events("task_escrow", "RoundFinalized"):
            if int(e["round"]) == round_ - 1:
                return bytes(e["nextBase"])
        return b""

    @contextlib.contextmanager
    def _display(self) -> Iterator[Any]:
        if self.console.is_terminal:
            with Live(self._table(), console=self.console, refresh_per_second=2, transient=False) as live:
                yield live
        else:
            yield None

    def _monitor(self) -> None:
        from protocol.network import TaskView, connect

        # Connecting imports the ML side (torch): done after the processes started, while they start up.
        self.session = connect(self.config, self._monitor_key, self.dir / "home-monitor")
        self.view = TaskView(self.session, TASK_ID)
        printed: set[int] = set()
        ended_at: float | None = None
        last_progress = time.monotonic()
        last_round = -1
        with self._display() as live:
            while True:
                ended = False
                if self.view.exists():
                    if self.state.accuracy0 is None:
                        self.state.accuracy0 = self._accuracy(bytes(self.view.created["initialModelHash"]))
                        if live is None:
                            self.say(f"task {TASK_ID} created; initial accuracy {self.state.accuracy0:.3f}")
                    state = self.view.state()
                    self.state.phase = self._phase()
                    self._update_rows()
                    ended = state.status != TaskStatus.ACTIVE
                    if state.round != last_round:
                        last_round, last_progress = state.round, time.monotonic()
                    if ended and ended_at is None:
                        ended_at = time.monotonic()
                else:
                    for line in self._initiator_news():
                        self.state.phase = f"initiator: {line}"
                        if live is None:
                            self.say(f"initiator: {line}")
                if not self.view.exists() and time.monotonic() - self.state.started > STARTUP_TIMEOUT:
                    raise DemoError(
                        f"task {TASK_ID} was not created within {STARTUP_TIMEOUT:.0f} s:\n"
                        + self._tail(self.people[0])
                    )
                if live is not None:
                    live.update(self._table())
                else:
                    self._print_rows(printed)
                if self._check_children(ended):
                    self._update_rows()
                    if live is not None:
                        live.update(self._table())
                    else:
                        self._print_rows(printed, final=True)
                    break
                if ended_at is not None and time.monotonic() - ended_at > WIND_DOWN_TIMEOUT:
                    raise DemoError(
                        "the processes did not finish settling and claiming "
                        f"{WIND_DOWN_TIMEOUT:.0f} s after the task ended"
                    )
                if not ended and self.view.exists() and time.monotonic() - last_progress > ROUND_TIMEOUT:
                    raise DemoError(
                        f"round {last_round} made no progress for {ROUND_TIMEOUT:.0f} s ({self.state.phase})"
                    )
                time.sleep(1.0)
        self.state.phase = "every process finished"
        self.say("all processes finished; reconciling balances")

    # ------------------------------------------------------------------ the end
    def _summary(self) -> dict[str, Any]:
        view, proto, client = self.view, self.session.proto, self.session.client
        deployment = self.config.deployment
        start = deployment.block

        def events(contract: Any, name: str, **filters: Any) -> list[dict[str, Any]]:
            return [dict(e["args"]) for e in client.get_logs(contract, name, start, **filters)]

        credited = events(proto.distributor, "Credited")
        slashed_events = events(proto.stakes, "Slashed")
        deposits = events(proto.distributor, "Deposited")
        rewards: dict[str, int] = {}
        refunds: dict[str, int] = {}
        for e in credited:
            bucket = refunds if int(e["reason"]) == 2 else rewards
            bucket[str(e["account"])] = bucket.get(str(e["account"]), 0) + int(e["amount"])
        slashes: dict[str, int] = {}
        for e in slashed_events:
            slashes[str(e["staker"])] = slashes.get(str(e["staker"]), 0) + int(e["amount"])
        deposited: dict[str, int] = {}
        for e in deposits:
            deposited[str(e["from"])] = deposited.get(str(e["from"]), 0) + int(e["amount"])

        balances: dict[str, dict[str, Any]] = {}
        reconciled = True
        for p in self.people:
            balance = proto.token_balance(p.address)
            bonded, allocated, unbonding, _ = proto.stake_of(p.address)
            credit = proto.credit_of(p.address)
            expected = (
                p.minted
                + rewards.get(p.address, 0)
                + refunds.get(p.address, 0)
                - slashes.get(p.address, 0)
                - deposited.get(p.address, 0)
            )
            actual = balance + bonded + unbonding + credit
            ok = actual == expected
            reconciled &= ok
            balances[p.address] = {
                "name": p.name,
                "wallet": balance,
                "staked": bonded,
                "allocated": allocated,
                "unbonding": unbonding,
                "unclaimed": credit,
                "minted": p.minted,
                "rewards": rewards.get(p.address, 0),
                "refund": refunds.get(p.address, 0),
                "slashed": slashes.get(p.address, 0),
                "deposited": deposited.get(p.address, 0),
                "reconciled": ok,
            }
        remaining, reserved = proto.funds_of(TASK_ID)
        deposit = sum(int(e["amount"]) for e in deposits if int(e["taskId"]) == TASK_ID)
        task_credits = sum(int(e["amount"]) for e in credited if int(e["taskId"]) == TASK_ID)
        holders = {p.address for p in self.people} | {
            client.address,
            deployment.stake_manager,
            deployment.reward_distributor,
            deployment.task_escrow,
            deployment.attestation_registry,
            deployment.honeypot_registry,
            BURN_ADDRESS,
        }
        supply = int(client.call(proto.token.functions.totalSupply()))
        held = sum(proto.token_balance(a) for a in holders)
        total_stake = int(client.call(proto.stakes.functions.totalStake()))
        unburned = int(client.call(proto.stakes.functions.unburned()))
        escrowed = int(client.call(proto.distributor.functions.totalEscrowed()))
        credits = int(client.call(proto.distributor.functions.totalCredits()))
        conservation = {
            "task escrow fully paid out (deposit = credits, nothing left)": deposit == task_credits
            and remaining == 0
            and reserved == 0,
            "token supply = sum of balances": supply == held,
            "StakeManager holds the stakes (+ deferred burns)": proto.token_balance(deployment.stake_manager)
            == total_stake + unburned,
            "RewardDistributor holds escrow + unclaimed credits": proto.token_balance(
                deployment.reward_distributor
            )
            == escrowed + credits,
            "burned = slashed": proto.token_balance(BURN_ADDRESS) + unburned == sum(slashes.values()),
        }
        escrow_conserved = all(conservation.values())

        accuracy = [self.state.accuracy0 or 0.0] + [
            self.state.rows[r].accuracy or 0.0 for r in sorted(self.state.rows)
        ]
        cheaters = [p.address for p in self.people if p.role == "cheater"]
        honest = [p.address for p in self.people if p.role == "trainer"]
        validators = [p.address for p in self.people if p.role == "validator"]
        lazy = [p.address for p in self.people if p.role == "lazy"]
        bait = next(p.address for p in self.people if p.role == "honeypot")
        slashed = sorted(a for a, v in slashes.items() if v > 0)
        paid = {a: v for a, v in sorted(rewards.items()) if v > 0}
        lazy_slashes = self._lazy_slashes()
        lazy_net = {a: balances[a]["wallet"] + balances[a]["staked"] + balances[a]["unbonding"]
                    + balances[a]["unclaimed"] - balances[a]["minted"] for a in lazy}  # fmt: skip
        shown = ", ".join(f"{_fmt(v)}" for v in lazy_net.values())
        checks = {
            f"held-out accuracy rose ({accuracy[0]:.3f} -> {accuracy[-1]:.3f})": accuracy[-1] > accuracy[0],
            "the cheater was slashed": all(a in slashed for a in cheaters),
            "the cheater was never paid": all(a not in paid for a in cheaters),
            "every honest trainer was paid": all(a in paid for a in honest),
            "no honest trainer was slashed": all(a not in slashed for a in honest),
            "no honest validator was slashed": all(a not in slashed for a in validators),
            "the lazy validator was slashed by the honeypots": all(lazy_slashes.get(a, 0) > 0 for a in lazy),
            "the bait was paid in its honest round": self.rounds < 2 or bait in paid,
            f"the lazy validator ends with less than it started with ({shown} tokens)": all(
                v < 0 for v in lazy_net.values()
            ),
            "every balance reconciles": reconciled,
            "tokens conserved": escrow_conserved,
            f"all {self.rounds} rounds finalised": len(self.state.rows) == self.rounds,
            "task completed": view.state().status == TaskStatus.COMPLETED,
        }
        self._print_end(balances, checks, conservation)
        wall = time.monotonic() - self.state.started
        return {
            "ok": all(checks.values()),
            "rounds": len(self.state.rows),
            "accuracy": accuracy,
            "slashed": slashed,
            "paid": paid,
            "refunded": refunds,
            "escrow_conserved": escrow_conserved,
            "deposit": deposit,
            "cheaters": cheaters,
            "honest_trainers": honest,
            "validators": validators,
            "lazy_validators": lazy,
            "lazy_slashed": lazy_slashes,
            "lazy_net": lazy_net,
            "honeypot_trainer": bait,
            "initiator": next(p.address for p in self.people if p.role == "initiator"),
            "balances": balances,
            "checks": checks,
            "conservation": conservation,
            "per_round": [
                {
                    "round": r,
                    "submissions": row.submissions,
                    "accepted": row.accepted,
                    "rejected": row.rejected,
                    "unavailable": row.unavailable,
                    "undecided": row.undecided,
                    "paid": row.paid,
                    "slashed": row.slashed,
                    "accuracy": row.accuracy,
                    "model_changed": row.model_changed,
                    "finished_at_s": row.finished_at,
                }
                for r, row in sorted(self.state.rows.items())
            ],
            "wall_s": round(wall, 1),
        }

    def _lazy_slashes(self) -> dict[str, int]:
        """validator -> what the HoneypotRegistry's LazySlashed events took from it."""
        out: dict[str, int] = {}
        for e in self.view.events("honeypot_registry", "LazySlashed"):
            out[str(e["validator"])] = out.get(str(e["validator"]), 0) + int(e["slashed"])
        return out

    def _print_end(
        self, balances: dict[str, dict[str, Any]], checks: dict[str, bool], conservation: dict[str, bool]
    ) -> None:
        table = Table(title="balances (tokens)")
        for name in (
            "account",
            "role",
            "wallet",
            "staked",
            "unclaimed",
            "rewards",
            "refund",
            "slashed",
            "deposited",
            "reconciled",
        ):
            table.add_column(name, justify="left" if name in ("account", "role") else "right")
        for address, b in balances.items():
            table.add_row(
                address[:10] + "…",
                b["name"],
                _fmt(b["wallet"]),
                _fmt(b["staked"]),
                _fmt(b["unclaimed"]),
                _fmt(b["rewards"]),
                _fmt(b["refund"]),
                _fmt(b["slashed"]),
                _fmt(b["deposited"]),
                "[green]yes[/]" if b["reconciled"] else "[red]NO[/]",
            )
        self.console.print(table)
        for label, ok in {**conservation, **checks}.items():
            mark = "[green]✓[/]" if ok else "[red]✗[/]"
            self.console.print(f" {mark} {label}", highlight=False)

    # ------------------------------------------------------------------ the audit
    def _audit(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Audit the task's history (protocol/audit: events, balances, every submission re-verified from
        IPFS), compare it with the demo's own numbers, print a short verdict; the summary's `audit`."""
        from rich.markup import escape

        from protocol.audit import Kind
        from protocol.audit.demo_history import compare_with_demo
        from protocol.audit.report import summarize
        from protocol.audit.runner import audit, open_target
        from protocol.errors import TrustrlError
        from protocol.ipfs import ArtifactStore

        self.say("auditing the history: chain events, balances, every submission re-verified from IPFS")
        started = time.perf_counter()
        try:
            target = open_target(self.anvil.rpc_url, self.config.deployment)
            with ArtifactStore(self.ipfs.api_url, retries=2, backoff=0.25, find_timeout=5.0) as store:
                result = audit(target, task=TASK_ID, store=store, progress=self.say)
        except TrustrlError as exc:
            self.console.print(f" [red]✗[/] the audit could not run: {escape(str(exc))}", highlight=False)
            return {"ok": False, "error": str(exc), "wall_s": round(time.perf_counter() - started, 1)}
        self.audit_result = result
        report = summarize(result)
        mismatches = compare_with_demo(summary, report, task=TASK_ID)
        # The lazy validator's flags are the audit doing its job (it must flag it, and nothing else).
        lazy = list(summary.get("lazy_validators", []))
        flagged = [
            d
            for d in result.discrepancies
            if d.kind == Kind.LAZY_VALIDATOR and any(a in d.subject for a in lazy)
        ]
        found = [d.line() for d in result.discrepancies if d not in flagged]
        checks = result.reverify.submissions if result.reverify is not None else []
        aggregates = result.reverify.aggregates if result.reverify is not None else []
        agree = sum(1 for c in checks if c.auditor == c.chain)
        rejected = sum(1 for c in checks if c.auditor is not None and c.auditor.name == "REJECT")
        matched = sum(1 for a in aggregates if a.status == "match")
        wall = time.perf_counter() - started
        lazy_caught = all(any(a in d.subject for d in flagged) for a in lazy)
        ok = not found and not mismatches and lazy_caught
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        verdict = {0: "no discrepancy", 1: "1 discrepancy"}.get(len(found), f"{len(found)} discrepancies")
        numbers = f"{len(mismatches)} numbers differ" if mismatches else "the demo's numbers reproduced"
        self.console.print(
            f" {mark} audit: {verdict} in {report['events']} events ({report['transactions']} transactions); "
            f"verdicts re-checked {agree}/{len(checks)} agree with the chain ({rejected} REJECT), "
            f"aggregates recomputed {matched}/{len(aggregates)}; {numbers} ({wall:.1f} s)",
            highlight=False,
        )
        if lazy:
            lazy_mark = "[green]✓[/]" if lazy_caught else "[red]✗[/]"
            self.console.print(
                f" {lazy_mark} audit: the lazy validator flagged on {len(flagged)} honeypots (it accepted "
                "known-bad work)",
                highlight=False,
            )
        for line in [*found, *(f"the demo and the audit disagree: {m}" for m in mismatches)][:AUDIT_LINES]:
            self.console.print(f"   [red]•[/] {escape(line)}", highlight=False)
        if len(found) + len(mismatches) > AUDIT_LINES:
            self.console.print(f"   … and {len(found) + len(mismatches) - AUDIT_LINES} more (see --json)")
        return {
            "ok": ok,
            "discrepancy_count": len(found),
            "discrepancy_kinds": dict(
                sorted(Counter(d.kind.value for d in result.discrepancies if d not in flagged).items())
            ),
            "discrepancies": found,
            "lazy_flags": [d.line() for d in flagged],
            "mismatches": mismatches,
            "verified": report["verified"],
            "events": report["events"],
            "transactions": report["transactions"],
            "verdicts_rechecked": len(checks),
            "verdicts_agree": agree,
            "aggregates_recomputed": len(aggregates),
            "aggregates_match": matched,
            "timings": report["timings"],
            "wall_s": round(wall, 1),
        }


def exit_status(summary: dict[str, Any]) -> int:
    """The exit status of `trustrl demo` for its summary: 0 all good; 1 a check of the demo failed (or the
    audit could not run); `EXIT_DISCREPANCIES` (3) the checks passed but the audit found discrepancies."""
    if summary.get("ok", False):
        return 0
    audit = summary.get("audit")
    checks_passed = all(dict(summary.get("checks", {})).values())
    if checks_passed and isinstance(audit, dict) and "error" not in audit and not audit.get("ok", False):
        return EXIT_DISCREPANCIES
    return 1


def run_demo(
    *,
    rounds: int = 5,
    console: Console | None = None,
    keep: bool = False,
    audit: bool = True,
    stay: bool = False,
) -> dict[str, Any]:
    """Run the demo (see the module docstring) and return its summary; `audit`: audit the history at
    the end (the summary's `audit`; its `ok` then includes the audit's); `keep`: keep the directory with
    anvil's state; `stay`: also serve the chain and IPFS until SIGINT or SIGTERM. SIGINT and SIGTERM stop
    the demo (`Interrupted`), every process it started with it."""
    demo = Demo(rounds=rounds, console=console or Console(), keep=keep, audit=audit, stay=stay)
    if threading.current_thread() is not threading.main_thread():
        return demo.run()
    with stop_on_signals(defer=False):
        return demo.run()


def serve_kept(directory: Path, *, console: Console | None = None) -> None:
    """Serve a kept demo directory (`trustrl demo --keep`) again until SIGINT or SIGTERM: anvil from its
    dumped state (dumped again when it stops, so what is done meanwhile is kept), IPFS from its repo;
    rewrites the directory's network file with their new URLs."""
    from protocol.anvil import Anvil
    from protocol.ipfs_daemon import IpfsDaemon
    from protocol.network import load_network

    console = console or Console()
    directory = directory.resolve()
    state, network_file = directory / ANVIL_STATE, directory / "network.json"
    for need in (state, network_file, directory / "ipfs"):
        if not need.exists():
            raise DemoError(
                f"{directory} is not a kept demo directory: {need.name} is missing (`trustrl demo --keep` "
                "keeps one; anvil writes its state when it stops)"
            )
    config = load_network(str(network_file))
    anvil = Anvil(block_time=1.0, accounts=ACCOUNTS, extra_args=("--state", str(state)))
    ipfs = IpfsDaemon(directory / "ipfs")
    try:
        with stop_on_signals(defer=False):
            anvil.start()
            ipfs.start()
            served = config.model_copy(update={"rpc_url": anvil.rpc_url, "ipfs_api": ipfs.api_url})
            network_file.write_text(served.model_dump_json(indent=2))
            _print_serving(console, directory, anvil, ipfs)
            with contextlib.suppress(Interrupted):
                while anvil.running and ipfs.running:
                    time.sleep(0.5)
            if not anvil.running or not ipfs.running:
                raise DemoError(f"{'anvil' if not anvil.running else 'the IPFS daemon'} stopped by itself")
    finally:
        with deferred_signals():
            ipfs.stop()
            anvil.stop()
    console.print(f"stopped; the chain is dumped again to {state}")


def _print_serving(console: Console, directory: Path, anvil: Any, ipfs: Any) -> None:
    network = directory / "network.json"
    console.print(
        f"serving the demo's deployment: anvil pid {anvil.pid} at {anvil.rpc_url}, IPFS pid {ipfs.pid} at "
        f"{ipfs.api_url}; network file {network}. In another terminal:\n"
        f"  trustrl task status {TASK_ID} --network {network}\n"
        f"  trustrl audit --task {TASK_ID} --network {network} --report audit.html\n"
        "Ctrl-C stops both.",
        highlight=False,
    )
