"""Static analysis of the contracts as a gate: slither must find nothing that is not suppressed inline.

    python scripts/slither_gate.py [--json PATH]

Runs slither (PyPI slither-analyzer, installed by `scripts/setup.sh --test`) over contracts/ through forge
(bin/forge, which compiles with the project's solc wrapper), with slither.config.json (the test tokens,
forge tests and OpenZeppelin left out) and `--warn-unused-ignores`, so a suppression that no longer
suppresses anything is a finding too. A reviewed false positive is suppressed where it is, with its reason:
`// slither-disable-next-line DETECTOR reason`. Every suppression must give one (checked here as well).
Prints each finding; exits 1 when there is any (or slither fails), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# A suppression: the detectors, then its reason on the same line (or, for a range, on the next line).
SUPPRESSION = re.compile(r"//\s*slither-disable-(next-line|start)\s+([\w,-]+)(.*)$")


def unexplained_suppressions(root: Path = ROOT) -> list[str]:
    """`file:line` of every slither suppression in contracts/ that gives no reason."""
    out = []
    for path in sorted((root / "contracts").rglob("*.sol")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            match = SUPPRESSION.search(line)
            if not match:
                continue
            reason = match.group(3).strip()
            if not reason and match.group(1) == "start" and i + 1 < len(lines):
                reason = lines[i + 1].strip().removeprefix("//").strip()
            if not reason:
                out.append(f"{path.relative_to(root)}:{i + 1}")
    return out


def run_slither(json_path: Path) -> dict[str, Any]:
    """Slither's JSON report over the project (compiled by forge into build/slither, apart from the forge
    tests' build/forge so that both can run at once)."""
    env = {
        **os.environ,
        "PATH": f"{ROOT / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # solc-select (a dependency of slither) keeps its state under the virtual environment.
        "VIRTUAL_ENV": sys.prefix,
        "FOUNDRY_OUT": "build/slither/out",
        "FOUNDRY_CACHE_PATH": "build/slither/cache",
    }
    json_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "slither", ".", "--config-file", "slither.config.json",
               "--warn-unused-ignores", "--json", str(json_path)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if not json_path.exists():
        raise SystemExit(f"slither wrote no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads(json_path.read_text())
    if not report.get("success"):
        raise SystemExit(f"slither failed: {report.get('error')}\n{done.stderr[-3000:]}")
    return report


def findings(report: dict[str, Any]) -> list[str]:
    """One line per finding: detector, impact, and slither's description."""
    return [
        f"[{r['check']}, {r['impact']}] {' '.join(r['description'].split())}"
        for r in report.get("results", {}).get("detectors", [])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--json", type=Path, help="keep slither's JSON report here")
    args = parser.parse_args(argv)
    bare = unexplained_suppressions()
    with tempfile.TemporaryDirectory() as tmp:
        report = run_slither(args.json or Path(tmp) / "slither.json")
    found = findings(report)
    for line in found:
        print(line)
    for where in bare:
        print(f"[suppression without a reason] {where}")
    print(f"slither: {len(found)} finding(s) not suppressed; {len(bare)} suppression(s) without a reason")
    return 1 if found or bare else 0


if __name__ == "__main__":
    sys.exit(main())
