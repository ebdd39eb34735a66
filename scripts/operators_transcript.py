#!/usr/bin/env python
"""Record what each role's commands print, run as a person would run them (docs/operators.md).

    .venv/bin/python scripts/operators_transcript.py --out out/transcript.md

Starts its own anvil (1 s blocks) and IPFS daemon on free loopback ports in a temporary directory, then runs
`trustrl` exactly as an operator types it: keystores, deploy, mint and stake, a 2-round task (the demo's
model), one trainer and two validator nodes, `task status`, a Ctrl-C of a trainer between its submission and
its state upload, the restart, claims, unstaking and the audit. Every command and its output (stdout and
stderr, as a terminal-less log shows them) go to the markdown file; the nodes' logs are appended at the end.
Everything it started is stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "transcript-password"


class Transcript:
    """Runs commands in a work directory and records them as markdown."""

    def __init__(self, work: Path, out: Path) -> None:
        self.work = work
        self.out = out
        self.parts: list[str] = []
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TRUSTRL_")},
            "TRUSTRL_PASSWORD": PASSWORD,
            "OMP_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "110",
            "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def say(self, text: str) -> None:
        self.parts.append(text.strip() + "\n")
        self.flush()

    def run(self, command: str, *, ok: tuple[int, ...] = (0,)) -> str:
        started = time.monotonic()
        proc = subprocess.run(
            shlex.split(command), cwd=self.work, env=self.env, capture_output=True, text=True, timeout=900
        )
        took = time.monotonic() - started
        output = (proc.stdout + proc.stderr).rstrip()
        shown = output + (f"\n[exit status {proc.returncode}]" if proc.returncode else "")
        self.parts.append(f"```console\n$ {command}\n{shown}\n```\n<sub>{took:.1f} s</sub>\n")
        self.flush()
        if proc.returncode not in ok:
            raise SystemExit(f"`{command}` exited with {proc.returncode}:\n{output}")
        return output

    def spawn(self, command: str, log: str) -> subprocess.Popen[bytes]:
        self.parts.append(f"```console\n$ {command} > {log} 2>&1 &\n```\n")
        self.flush()
        with open(self.work / log, "wb") as f:
            return subprocess.Popen(
                shlex.split(command),
                cwd=self.work,
                env=self.env,
                stdout=f,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def flush(self) -> None:
        self.out.write_text("\n".join(self.parts))


def wait_for(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise SystemExit(f"{text!r} did not appear in {path} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        os.kill(proc.pid, signum)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("out/transcript.md"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    from protocol.anvil import Anvil
    from protocol.demo import DEMO_TASK
    from protocol.ipfs_daemon import IpfsDaemon

    work = Path(tempfile.mkdtemp(prefix="trustrl-transcript-"))
    t = Transcript(work, args.out.resolve())
    anvil = Anvil(block_time=1.0, accounts=10).start()
    ipfs = IpfsDaemon(work / "ipfs").start()
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        task = {
            **DEMO_TASK,
            "description": "operators' transcript: 2-digit addition, 2 rounds",
            "chain": {
                **DEMO_TASK["chain"],
                "num_rounds": 2,
                "reward_per_round": 100,
                "quorum": 2,
                "submit_duration": 120,
                "commit_duration": 120,
                "start_delay": 90,
            },
        }
        (work / "task.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
        t.say(f"anvil at {anvil.rpc_url} (1 s blocks), IPFS API at {ipfs.api_url}; work directory `$W`.")
        t.say("## Keys")
        for index, name in (
            (0, "deployer"),
            (1, "initiator"),
            (2, "trainer"),
            (3, "validator-1"),
            (4, "validator-2"),
        ):
            t.run(f"trustrl account dev {index} {name}.json")
        t.run("trustrl account dev 2 trainer.json", ok=(1,))
        t.run("trustrl account new spare.json")
        t.say("## Deploy (once, by anyone)")
        t.run(
            f"trustrl deploy --network {anvil.rpc_url} --keystore deployer.json --out net.json "
            f"--ipfs {ipfs.api_url} --unbonding 60"
        )
        t.env["TRUSTRL_NETWORK"] = "net.json"
        t.say("`export TRUSTRL_NETWORK=net.json` for every command below.")
        t.say("## Tokens and stakes")
        t.run("trustrl mint 1000 --keystore initiator.json")
        for name in ("trainer", "validator-1", "validator-2"):
            t.run(f"trustrl mint 200 --keystore {name}.json")
            t.run(f"trustrl stake 150 --keystore {name}.json")
        t.run("trustrl stake 500 --keystore trainer.json", ok=(1,))
        t.say("## The initiator creates the task")
        t.run("trustrl task create task.yaml --keystore initiator.json --home home-initiator --threads 1")
        t.run("trustrl task status 1")
        t.say("## The nodes (each in its own terminal or service)")
        follow = "trustrl task create task.yaml --follow --keystore initiator.json --home home-initiator"
        keeper = t.spawn(f"{follow} --threads 1", "initiator.log")
        nodes.append(keeper)
        trainer = t.spawn(
            "trustrl train --task 1 --keystore trainer.json --home home-trainer --threads 1", "trainer.log"
        )
        nodes.append(trainer)
        for name in ("validator-1", "validator-2"):
            nodes.append(
                t.spawn(
                    f"trustrl validate --task 1 --keystore {name}.json --home home-{name} --threads 1",
                    f"{name}.log",
                )
            )
        wait_for(work / "trainer.log", "round 0: submitted as #0", 600)
        t.say("## Ctrl-C of the trainer between its submission and its state upload")
        code = stop(trainer, signal.SIGINT)
        t.say(f"The trainer exited with status {code}; the end of trainer.log:")
        tail = (work / "trainer.log").read_text().splitlines()[-6:]
        t.say("```text\n" + "\n".join(tail) + "\n```")
        t.run("trustrl task status 1")
        trainer = t.spawn(
            "trustrl train --task 1 --keystore trainer.json --home home-trainer --threads 1", "trainer-2.log"
        )
        nodes.append(trainer)
        deadline = time.monotonic() + 900
        while any(p.poll() is None for p in (keeper, trainer)) and time.monotonic() < deadline:
            time.sleep(2)
        t.say("## After the task")
        t.run("trustrl task status 1")
        t.run("trustrl task status 1 --json")
        t.run("trustrl claim --keystore trainer.json")
        t.run("trustrl claim --task 1 --keystore initiator.json --home home-initiator")
        t.run("trustrl unstake --keystore trainer.json")
        t.run("trustrl unstake --withdraw --keystore trainer.json", ok=(1,))
        t.run("trustrl -v unstake --withdraw --keystore trainer.json", ok=(1,))
        t.say("## The audit (anyone)")
        t.run("trustrl audit --task 1 --json audit.json", ok=(0, 3))
        t.say("## The nodes' logs")
        for proc in nodes:
            stop(proc)
        for log in ("initiator.log", "trainer.log", "trainer-2.log", "validator-1.log"):
            t.say(f"### {log}\n```text\n{(work / log).read_text(errors='replace').rstrip()}\n```")
    finally:
        for proc in nodes:
            stop(proc)
        ipfs.stop()
        anvil.stop()
    print(f"transcript written to {args.out} (work directory {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
