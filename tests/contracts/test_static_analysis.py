"""Static analysis as a gate: slither finds nothing in contracts/ that is not suppressed inline with a
reason (scripts/slither_gate.py; `make lint` runs it too)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from slither_gate import unexplained_suppressions  # noqa: E402


def test_every_suppression_gives_its_reason() -> None:
    assert unexplained_suppressions() == []


def test_a_suppression_without_a_reason_is_found(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    lines = [
        "contract A {",
        "    // slither-disable-next-line timestamp",
        "    // slither-disable-next-line naming-convention why",
        "    // slither-disable-start timestamp",
        "    // the reason, on the next line",
        "}",
    ]
    (contracts / "A.sol").write_text("\n".join(lines) + "\n")
    assert unexplained_suppressions(tmp_path) == ["contracts/A.sol:2"]


def test_slither_finds_nothing_unreviewed(tmp_path: Path) -> None:
    pytest.importorskip("slither", reason="slither-analyzer is installed by scripts/setup.sh --test")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "slither_gate.py"), "--json", str(tmp_path / "slither.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1_200,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6_000:] + done.stderr[-3_000:]
    assert "slither: 0 finding(s) not suppressed; 0 suppression(s) without a reason" in done.stdout
