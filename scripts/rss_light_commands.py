"""Peak resident memory of the commands that need no model: `trustrl task status`, `trustrl claim --task`
and the initiator's keeper loop (`trustrl task create FILE --follow` started again after the task exists,
as after a restart: it only draws seeds, finalises, settles and claims).

    python scripts/rss_light_commands.py [--json out/rss_light.json]

Starts its own anvil and IPFS daemon, deploys, creates a 1-round task nobody joins (its empty round
finalises at the submit deadline), then runs each command as a process through the real CLI and reads its
peak RSS (ru_maxrss of the waited child). Prints one line per command and writes JSON {command: MB}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

TASK = {
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
    "heldout_size": 8,
    "initial": {"warmstart": {"max_steps": 1, "eval_size": 8, "eval_every": 1, "target_accuracy": 0.01}},
    "chain": {
        "num_rounds": 1,
        "reward_per_round": 10,
        "submit_duration": 8,
        "commit_duration": 10,
        "reveal_duration": 10,
        "vote_duration": 10,
        "start_delay": 0,
        "max_empty_rounds": 0,
    },
}


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    """Run `python -m protocol.cli ARGS`; (exit status, output tail)."""
    proc = subprocess.run(
        [sys.executable, "-m", "protocol.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return proc.returncode, (proc.stdout + proc.stderr)[-400:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from protocol.anvil import Anvil
    from protocol.chain import ChainClient, save_keystore_account
    from protocol.compile import compile_contracts
    from protocol.contracts import deploy_protocol
    from protocol.ipfs_daemon import IpfsDaemon
    from protocol.network import NetworkConfig

    work = Path(tempfile.mkdtemp(prefix="trustrl-rss-"))
    results: dict[str, float] = {}
    with Anvil(block_time=1.0, accounts=3) as node, IpfsDaemon(work / "ipfs") as ipfs:
        compiled = compile_contracts()
        deployer = ChainClient(node.rpc_url, node.accounts[0][1], abis=[c.abi for c in compiled.values()])
        d = deploy_protocol(deployer, unbonding_period=5, settlement_grace=1, compiled=compiled)
        deployer.transact(d.token.functions.mint(node.accounts[1][0], 10**21))
        network = work / "network.json"
        network.write_text(
            NetworkConfig(
                rpc_url=node.rpc_url, deployment=d.addresses, ipfs_api=ipfs.api_url
            ).model_dump_json()
        )
        key = work / "initiator.json"
        save_keystore_account(node.accounts[1][1], key, "pw", iterations=1 << 10)
        task_file = work / "task.yaml"
        task_file.write_text(yaml.safe_dump(TASK))
        env = {**os.environ, "TRUSTRL_PASSWORD": "pw", "OMP_NUM_THREADS": "1"}
        common = ["--network", str(network), "--keystore", str(key), "--home", str(work / "home")]
        # The creation (warm start: torch) first, then each light command, measured by a fresh parent each
        # (ru_maxrss of the children is a running maximum).
        code, tail = _run(["task", "create", str(task_file), *common], env)
        if code != 0:
            raise SystemExit(f"task create failed: {tail}")
        steps = [
            ("task status", ["task", "status", "1", "--network", str(network), "--home", str(work / "h2")]),
            ("claim --task", ["claim", "--task", "1", *common]),
            (
                "task create --follow (keeper loop, restarted)",
                ["task", "create", str(task_file), "--follow", *common],
            ),
        ]
        for name, argv in steps:
            # A fresh measuring process per command: ru_maxrss of children is a running maximum.
            probe = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], check=False, "
                    "capture_output=True, text=True, timeout=300); "
                    "print(p.stdout[-300:], p.stderr[-300:], file=sys.stderr); "
                    "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)",
                    sys.executable,
                    "-m",
                    "protocol.cli",
                    *argv,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=320,
            )
            code, peak = probe.stdout.split()[-2:]
            if code != "0":
                raise SystemExit(f"{name} exited with {code}: {probe.stderr[-600:]}")
            results[name] = round(int(peak) / 1024, 1)
            print(f"{name:<48}{results[name]:>8.1f} MB peak RSS")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
