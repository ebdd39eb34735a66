"""Amounts in the token's own decimals and errors as sentences, through the real CLI: a deployment of a
6-decimal token (`trustrl deploy --token`) mints, stakes and escrows 10^6 base units per token (not 10^18);
`task status` reads in tokens, `--json` in exact base units; the expected reverts of `unstake --withdraw`
are sentences with UTC times (the raw revert under `-v`); `deploy` takes only an RPC URL and its help says
so, and never overwrites a network file; `train` for a task that does not exist yet points at `--wait`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from netharness import REPO, TINY_TASK, Net, cli_env

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]

ME = 23  # a dev account no other network test uses
SIX = 10**6
# `when()` names the date too when the time is on another day than the chain's now (e.g. past midnight)
UTC_IN = r"(\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d UTC \(in (\d+ s|\d+ min( \d+ s)?|1 h)\)"


def _one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert re.fullmatch(pattern, line), line
    return line


def test_deploy_takes_an_rpc_url_and_its_help_says_so(net: Net, tmp_path: Path) -> None:
    helped = subprocess.run(
        [sys.executable, "-m", "protocol.cli", "deploy", "--help"],
        capture_output=True,
        text=True,
        env={**cli_env(), "COLUMNS": "200"},
        cwd=REPO,
        timeout=60,
    )
    text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", helped.stdout).split())
    assert "RPC URL of the chain to deploy to" in text, text
    assert "A network file (from `trustrl deploy`)" not in text  # the other commands' --network
    refused = net.cli("deploy", "--network", str(net.network_file), "--keystore", str(net.keystore(ME)))
    _one_line_error(
        refused, r"error: deploy needs --network as an RPC URL .*the network file is what deploy writes"
    )


def test_a_six_decimal_token_escrows_and_stakes_in_its_own_units(net: Net, tmp_path: Path) -> None:
    from protocol.chain import ChainClient
    from protocol.compile import compile_contracts
    from protocol.network import connect, load_network

    compiled = compile_contracts()
    key = net.anvil.accounts[ME][1]
    client = ChainClient(net.anvil.rpc_url, key, abis=[c.abi for c in compiled.values()])
    token = client.deploy(compiled["SixDecimalToken"])
    six = tmp_path / "six.json"
    account = ["--network", str(six), "--keystore", str(net.keystore(ME))]
    deployer = ["--network", net.anvil.rpc_url, "--keystore", str(net.keystore(ME)), "--out", str(six)]
    deployed = net.cli(
        "deploy", *deployer, "--token", token.address, "--unbonding", "3600", "--ipfs", net.ipfs.api_url
    )
    assert deployed.returncode == 0, deployed.stderr
    again = net.cli("deploy", *deployer)
    _one_line_error(
        again, rf"error: {re.escape(str(six))} exists: not overwritten \(--out NEW.json, or --force\)"
    )
    proto = connect(load_network(str(six)), key, tmp_path / "h").proto
    me = proto.address

    minted = net.cli("mint", "1000", *account)
    assert minted.returncode == 0, minted.stderr
    assert minted.stdout.strip() == f"minted 1,000 tokens to {me}; balance 1,000"
    assert proto.token_balance() == 1000 * SIX
    staked = net.cli("stake", "100.5", *account, "--json")
    assert staked.returncode == 0, staked.stderr
    assert json.loads(staked.stdout) == {
        "staked": 100_500_000, "bonded": 100_500_000, "allocated": 0, "unbonding": 0, "decimals": 6,
    }  # fmt: skip
    _one_line_error(
        net.cli("stake", "0.0000001", *account),
        r"error: token amount 0.0000001 must be a number >= 0 with at most 6 decimals \(the token's "
        r"decimals\)",
    )

    # The expected reverts of `unstake --withdraw` (this deployment unbonds in an hour), as sentences.
    nothing = net.cli("unstake", "--withdraw", *account)
    _one_line_error(
        nothing, rf"error: {me} has nothing unbonded to withdraw \(`trustrl unstake` starts the unbonding\)"
    )
    raw = net.cli("-v", "unstake", "--withdraw", *account)
    assert raw.returncode == 1
    assert raw.stderr.strip().splitlines()[1] == f"  raw: ContractRevert: NothingToWithdraw(staker='{me}')"
    unbonding = net.cli("unstake", "0.5", *account)
    assert unbonding.returncode == 0, unbonding.stderr
    assert re.fullmatch(
        rf"unbonding 0.5 tokens; withdraw after {UTC_IN} \(`trustrl unstake --withdraw`\)",
        unbonding.stdout.strip(),
    ), unbonding.stdout
    early = net.cli("unstake", "--withdraw", *account)
    _one_line_error(early, rf"error: the unbonding of {me} ends {UTC_IN}: withdraw after it")

    task_yaml = net.write_task_file(tmp_path / "task.yaml", num_rounds=2, reward_per_round=12.25)
    created = net.cli("task", "create", str(task_yaml), *account, "--home", str(tmp_path / "h"))
    assert created.returncode == 0, created.stderr
    task_id = int(re.findall(r"^task (\d+)$", created.stdout, re.MULTILINE)[0])
    assert "24.5 tokens escrowed (24500000 base units)" in created.stdout, created.stdout
    assert proto.funds_of(task_id) == (2 * 12_250_000, 0)  # 10^6 per token: not 10^18
    assert proto.task_config(task_id).min_trainer_stake == TINY_TASK["chain"]["min_trainer_stake"] * SIX

    status = net.cli("task", "status", str(task_id), "--network", str(six), "--json")
    report = json.loads(status.stdout)
    assert (report["decimals"], report["reward_per_round"], report["remaining"]) == (
        6,
        12_250_000,
        24_500_000,
    )
    assert [r["round"] for r in report["rounds"]] == [0]
    shown = net.cli("task", "status", str(task_id), "--network", str(six))
    assert shown.returncode == 0, shown.stderr
    assert f"task {task_id}: active, in round 0 of rounds 0 to 1" in shown.stdout, shown.stdout
    assert "reward 12.25 tokens a round (20% to validators); escrow remaining 24.5" in shown.stdout, (
        shown.stdout
    )


def test_train_for_a_task_that_does_not_exist_points_at_wait(net: Net, tmp_path: Path) -> None:
    result = net.cli("train", "--task", "999", *net.common(ME, tmp_path))
    _one_line_error(
        result,
        r"error: task 999 does not exist on this deployment \(yet: `--wait` waits for it to be created\)",
    )
