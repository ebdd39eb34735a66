"""SIGINT (Ctrl-C) and SIGTERM stop `trustrl` with status 130, a node at a safe point, saying what is pending
and by when. Real signals to real processes (a trainer node between `submitWork` and its state upload), and
to this process for the rules of `protocol.stopping` (at once inside interruptible work, else at the next
safe point, at once on a second signal)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from netharness import TINY_TASK, Net, events

from protocol.stopping import Interrupted, check_stop, interruptible, stop_on_signals

UTC_WHEN = r"\d\d:\d\d:\d\d UTC \((in \d+ s|now|\d+ s ago)\)"
PENDING_BEFORE_SEED = r"pending: round 0's picked states are not uploaded and its seed is not drawn yet; (.*)"

SLASH_PERCENT = TINY_TASK["chain"]["trainer_slash_bps"] // 100
"""The share of its allocation an UNAVAILABLE trainer of the tiny task loses, in percent."""


def _signalled(signum: int) -> None:
    """Send `signum` to this process and give its handler a second to run."""
    os.kill(os.getpid(), signum)
    time.sleep(1)


def test_a_deferred_stop_waits_for_a_safe_point_and_a_second_signal_does_not() -> None:
    with stop_on_signals(defer=True):
        _signalled(signal.SIGINT)  # outside interruptible work: remembered, not raised
        with pytest.raises(Interrupted) as first:
            check_stop()  # the run loop's safe point
        assert first.value.signal_name == "SIGINT"
        with pytest.raises(Interrupted) as second:
            _signalled(signal.SIGTERM)  # a second signal: at once
        assert second.value.signal_name == "SIGTERM"
    with stop_on_signals(defer=True), interruptible(), pytest.raises(Interrupted):
        _signalled(signal.SIGTERM)  # inside interruptible work: at once
    with stop_on_signals(defer=False), pytest.raises(Interrupted):
        _signalled(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _journal_has(home: Path, task_id: int, action: str, key: str) -> bool:
    for path in home.glob(f"chain-*/task-{task_id}/trainer-*/journal.jsonl"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if (record["action"], record["key"], record["status"]) == (action, key, "done"):
                return True
    return False


def _stop(proc: subprocess.Popen[bytes], signum: int, timeout: float = 60) -> int:
    os.kill(proc.pid, signum)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.slow
def test_a_trainer_stopped_before_its_state_upload_says_so_and_by_when(net: Net, tmp_path: Path) -> None:
    """A trainer process submits round 0 and waits for the seed (a second trainer joined and never submits,
    so the submit phase stays open); SIGINT stops it with 130 and the pending upload with its deadline. After
    the seed is drawn the same journal gives the deadline in UTC; a restart uploads the states, and SIGTERM
    then stops it with nothing about states pending. The second run logs JSON lines (`--log-json`)."""
    from protocol.contracts import Role
    from protocol.errors import ContractRevert
    from protocol.journal import Journal
    from protocol.network import TaskView
    from protocol.roles.base import Output, ensure_joined
    from protocol.roles.trainer import TrainerNode

    task_id = net.create_task(20, submit_duration=120, commit_duration=60, seed_delay=1)
    home = tmp_path / "home"
    args = ["train", "--task", str(task_id), *net.common(21, home), "--threads", "1"]
    log = tmp_path / "trainer.log"
    proc = net.spawn(args, log)
    try:
        idle = TaskView(net.session(22), task_id)
        ensure_joined(idle, Role.TRAINER, Journal(tmp_path / "idle.jsonl"), Output("idle"))
        joined = lambda: len(events(net, net.deployment.task_escrow, "Joined", taskId=task_id)) >= 2  # noqa: E731
        _wait(joined, 120, "both trainers joined")
        net.warp_to_start(task_id)
        _wait(lambda: _journal_has(home, task_id, "submit", "0"), 180, "round 0 submitted")
        code = _stop(proc, signal.SIGINT)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 130, text[-3000:]
    assert "stopped by SIGINT at a safe point" in text, text[-3000:]
    pending = re.search(PENDING_BEFORE_SEED, text)
    assert pending, text[-3000:]
    assert re.fullmatch(
        rf"restart within 45 s of the seed \(submissions close {UTC_WHEN}\) or the submission is judged "
        rf"UNAVAILABLE and {SLASH_PERCENT}% of this trainer's allocation is slashed",
        pending.group(1),
    ), pending.group(1)
    assert "Traceback" not in text

    # The seed: the submit phase ends, the seed block is set, then drawn. The journal now gives a deadline.
    proto = net.session(20).proto
    net.deployer.increase_time(121)

    def seed_drawn() -> bool:
        with contextlib.suppress(ContractRevert):  # SeedTooEarly until the seed block is mined
            proto.draw_seed(task_id)
        return proto.task_state(task_id).seed_drawn

    _wait(seed_drawn, 30, "the seed")
    node = TrainerNode(net.session(21, home=home), task_id, out=Output("check"))
    [line] = [p for p in node.pending() if "picked states" in p]
    commit_end = proto.ballot_of(task_id, 0).commit_end
    assert re.fullmatch(
        rf"round 0's picked states are not uploaded; restart before {UTC_WHEN} or the submission is judged "
        rf"UNAVAILABLE and {SLASH_PERCENT}% of this trainer's allocation is slashed",
        line,
    ), line
    assert time.strftime("%H:%M:%S", time.gmtime(commit_end - 15)) in line  # validators give up 15 s early

    log2 = tmp_path / "trainer-2.log"
    proc = net.spawn(["--log-json", *args], log2)
    try:
        _wait(lambda: _journal_has(home, task_id, "states", "0"), 120, "the picked states uploaded")
        code = _stop(proc, signal.SIGTERM)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    records = [json.loads(line) for line in log2.read_text().splitlines() if line.strip()]
    assert code == 130, records[-5:]
    assert {"time", "role", "event", "message"} <= set(records[0])
    messages = [r["message"] for r in records]
    assert any(m.startswith("round 0: uploaded the picked states") for m in messages), messages
    assert "stopped by SIGTERM at a safe point" in messages, messages
    assert not any("picked states are not uploaded" in m for m in messages), messages
