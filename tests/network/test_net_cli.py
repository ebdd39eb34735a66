"""The `trustrl` command line as separate OS processes: a full round, kill -9 and restart of a trainer and
a validator mid-round, and one clear error line (never a traceback) for bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from netharness import REPO, Net, cli_env, events

from protocol.contracts import Verdict

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _joined(net: Net, task_id: int, count: int) -> Callable[[], bool]:
    return lambda: len(events(net, net.deployment.task_escrow, "Joined", taskId=task_id)) >= count


def _finish(procs: dict[str, subprocess.Popen[bytes]], logs: Path, timeout: float) -> None:
    """Wait for every process to exit with status 0 (killing all of them on failure)."""
    deadline = time.monotonic() + timeout
    try:
        for name, proc in procs.items():
            code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
            log = (logs / f"{name}.log").read_text(errors="replace")
            assert code == 0, f"{name} exited with {code}:\n{log[-3000:]}"
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def _journal(home: Path, task_id: int, role: str) -> Path:
    found = list(home.glob(f"chain-*/task-{task_id}/{role}-*/journal.jsonl"))
    return found[0] if found else home / "missing"


def _has(path: Path, action: str, key: str, status: str | None = None) -> bool:
    if not path.exists():
        return False
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record["action"] == action and record["key"] == key and status in (None, record["status"]):
            return True
    return False


@pytest.mark.slow
def test_two_rounds_through_the_cli_with_kill_9_and_restart(net: Net, tmp_path: Path) -> None:
    """`task create`, then two trainer and two validator processes for 2 rounds; a trainer is killed right
    after it prepared its round-0 artifacts, a validator right after it journalled its verdicts and salt,
    both restarted: no lost or double submission, attestation, settlement or payout. Then `task status`,
    `claim` and `stake` through the CLI."""
    task_yaml = net.write_task_file(
        tmp_path / "task.yaml", num_rounds=2, commit_duration=90, reveal_duration=90, vote_duration=60
    )
    home = {i: tmp_path / f"home-{i}" for i in range(1, 6)}
    created = net.cli("task", "create", str(task_yaml), *net.common(1, home[1]), "--threads", "1")
    assert created.returncode == 0, created.stderr
    match = re.search(r"^task (\d+)$", created.stdout, re.MULTILINE)
    assert match, created.stdout
    task_id = int(match.group(1))
    again = net.cli("task", "create", str(task_yaml), *net.common(1, home[1]))  # the journal remembers it
    assert again.returncode == 0, again.stderr
    assert f"task {task_id}" in again.stdout

    names = {2: "train", 3: "train", 4: "validate", 5: "validate"}
    procs: dict[str, subprocess.Popen[bytes]] = {}

    def spawn(i: int) -> None:
        procs[f"{names[i]}-{i}"] = net.spawn(
            [names[i], "--task", str(task_id), *net.common(i, home[i]), "--threads", "1"],
            tmp_path / f"{names[i]}-{i}.log",
        )

    for i in names:
        spawn(i)
    _wait(_joined(net, task_id, 4), 120, "four joins")
    net.warp_to_start(task_id)
    _wait(lambda: _has(_journal(home[2], task_id, "trainer"), "prepare", "0"), 120, "round 0 prepared")
    os.kill(procs["train-2"].pid, signal.SIGKILL)
    procs["train-2"].wait()
    spawn(2)
    _wait(lambda: _has(_journal(home[4], task_id, "validator"), "commit", "0"), 120, "round 0 verdicts")
    os.kill(procs["validate-4"].pid, signal.SIGKILL)
    procs["validate-4"].wait()
    spawn(4)
    _finish(procs, tmp_path, timeout=300)

    d = net.deployment
    submitted = Counter(
        (e["round"], e["trainer"]) for e in events(net, d.task_escrow, "WorkSubmitted", taskId=task_id)
    )
    assert len(submitted) == 4
    assert set(submitted.values()) == {1}
    for name in ("VerdictsCommitted", "VerdictsRevealed", "ModelVoted"):
        per = Counter(
            (e["round"], e["validator"]) for e in events(net, d.attestation_registry, name, taskId=task_id)
        )
        assert len(per) == 4, (name, per)
        assert set(per.values()) == {1}, (name, per)
    settled = events(net, d.task_escrow, "SubmissionSettled", taskId=task_id)
    assert len(settled) == 4
    assert all(Verdict(e["decision"]) == Verdict.ACCEPT and e["slashed"] == 0 for e in settled)
    credited = Counter(
        (e["account"], e["round"], e["reason"])
        for e in events(net, d.reward_distributor, "Credited", taskId=task_id)
    )
    assert set(credited.values()) == {1}
    assert "resuming trainer" in (tmp_path / "train-2.log").read_text()
    assert _has(_journal(home[2], task_id, "trainer"), "submit", "0", "done")
    assert _has(_journal(home[4], task_id, "validator"), "reveal", "0", "done")

    status = net.cli("task", "status", str(task_id), "--network", str(net.network_file), "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["status"] == "COMPLETED"
    assert [(r["accepted"], r["rejected"], r["slashed"]) for r in report["rounds"]] == [(2, 0, 0), (2, 0, 0)]
    assert all(r["paid"] > 0 for r in report["rounds"])
    claim = net.cli("claim", "--task", str(task_id), *net.common(1, home[1]))  # the initiator's refund
    assert claim.returncode == 0, claim.stderr
    proto = net.session(1).proto
    assert proto.credit_of() == 0
    assert proto.funds_of(task_id) == (0, 0)
    staked = net.cli("stake", "5", *net.account(1))
    assert staked.returncode == 0, staked.stderr
    assert "staked 5" in staked.stdout
    # A trainer leaves: its allocation is released after the task (+ 1 s grace), unbonded, then paid out.
    net.deployer.increase_time(2)
    unstaked = net.cli("unstake", "1", *net.account(2))  # accounts are shared: leave it staked
    assert unstaked.returncode == 0, unstaked.stderr
    assert f"allocated to task {task_id}" in unstaked.stdout
    assert "unbonding" in unstaked.stdout
    net.deployer.increase_time(10)  # the deployment's unbonding period is 5 s
    withdrawn = net.cli("unstake", "--withdraw", *net.account(2))
    assert withdrawn.returncode == 0, withdrawn.stderr
    assert net.session(2).proto.stake_of()[2] == 0  # nothing left unbonding


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_malformed_task_file_names_the_field_and_sends_nothing(net: Net, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    net.write_task_file(bad)
    bad.write_text(bad.read_text().replace("steps: 2", "steps: 0"))
    nonce = net.deployer.w3.eth.get_transaction_count(net.address(1))
    result = net.cli("task", "create", str(bad), *net.common(1, tmp_path / "h"))
    _one_line_error(result, "bad.yaml", "inner.steps", "greater than or equal to 1")
    assert net.deployer.w3.eth.get_transaction_count(net.address(1)) == nonce


def test_unreachable_rpc_and_bad_options_are_one_line(net: Net, tmp_path: Path) -> None:
    from protocol.ipfs_daemon import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    deployment = tmp_path / "deployment.json"
    deployment.write_text(net.config.deployment.model_dump_json())
    result = net.cli(
        "stake",
        "1",
        "--network",
        dead,
        "--deployment",
        str(deployment),
        "--keystore",
        str(net.keystore(1)),
    )
    _one_line_error(result, "unreachable", "Connection refused")
    _one_line_error(net.cli("task", "status", "1", "--network", dead), "--deployment")
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "protocol.cli",
            "stake",
            "1",
            "--network",
            str(net.network_file),
            "--keystore",
            str(net.keystore(1)),
        ],
        capture_output=True,
        text=True,
        env={**cli_env(), "TRUSTRL_PASSWORD": "wrong"},
        cwd=REPO,
        timeout=120,
    )
    _one_line_error(wrong, "wrong password")
    _one_line_error(
        net.cli("task", "status", "999", "--network", str(net.network_file)),
        "task 999 does not exist",
    )
