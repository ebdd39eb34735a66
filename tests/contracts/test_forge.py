"""The Solidity-native tests in tests/forge/, run by forge (bin/forge, offline, over the project's solc):
unit, fuzz and invariant tests of the core money rules with the CI profile of foundry.toml, and the gas of
every operation against contracts/gas-targets.json and the committed snapshot."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
FORGE = ROOT / "bin" / "forge"
SNAPSHOT = ROOT / "tests" / "forge" / "snapshots" / "GasSnapshotTest.json"
CAMPAIGN = re.compile(r"invariant_coreMoneyRules\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)")


def forge(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`bin/forge args` (a compile from scratch takes a minute or two on a loaded 2-core machine)."""
    return subprocess.run(
        [str(FORGE), *args, "--color", "never"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=1_200,
        check=False,
    )


def test_forge_unit_fuzz_and_invariant_tests_pass() -> None:
    done = forge("test", "--no-match-contract", "GasSnapshotTest")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6_000:]
    summary = re.search(r"(\d+) tests passed, (\d+) failed, (\d+) skipped", output)
    assert summary is not None, output[-3_000:]
    passed, failed, skipped = map(int, summary.groups())
    assert (failed, skipped) == (0, 0)
    assert passed >= 14, output[-3_000:]
    # The invariant campaign ran as configured (the CI profile: 48 runs of depth 40) and made its calls.
    campaign = CAMPAIGN.search(output)
    assert campaign is not None, output[-3_000:]
    runs, calls, reverts = map(int, campaign.groups())
    assert (runs, calls) == (48, 48 * 40)
    assert reverts < calls // 2, "most of the campaign's calls must do something"


def test_gas_snapshot_meets_the_targets_and_matches_the_committed_one() -> None:
    """Each operation's gas (forge --isolate: one transaction per call, a receipt's gasUsed) is within its
    target, and equal to the committed snapshot: a change of gas is a reviewed change (`make
    gas-snapshot` rewrites the file)."""
    assert SNAPSHOT.exists(), "no committed gas snapshot: run `make gas-snapshot`"
    done = forge("test", "--isolate", "--match-contract", "GasSnapshotTest", FORGE_SNAPSHOT_CHECK="true")
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"gas over a target or different from {SNAPSHOT.name}:\n{output[-6_000:]}"
    assert "[PASS] test_operations_meetTheTargets()" in output
