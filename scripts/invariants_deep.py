"""The contracts' random-sequence invariant test at depth: many sequences over several seeds, and how often
each action, each function's success and custom error, and each event was reached.

    python scripts/invariants_deep.py [--seeds 1 2 3 4] [--examples 2500] [--jobs 1] [--json PATH] [--resume]

Runs tests/contracts/test_invariants.py once per seed (a pytest process with its own anvil), each drawing
`--examples` sequences of 12 steps from that seed instead of CI's 300 derandomized ones, then adds up their
statistics (`--jobs` runs that many seeds at once). Prints the table (one column per seed) and writes the
JSON (default out/invariants.json). Exits 1 when a run fails (its log, with the minimal failing sequence,
is kept next to the JSON) or when a row the machine can reach was never reached in any run (`coverage` in
the test; UNREACHED says what cannot be reached, and why). `--resume` reuses the seeds' passed runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/contracts/test_invariants.py"
sys.path.insert(0, str(ROOT / "tests" / "contracts"))

from test_invariants import UNREACHED, coverage  # noqa: E402


def run_seed(seed: int, examples: int, out: Path, resume: bool) -> tuple[bool, dict[str, Any], float]:
    """One pytest run of the invariant test drawing `examples` sequences from `seed`: whether it passed,
    the statistics it wrote (empty when it failed before writing them) and its wall time. With `resume`,
    a run of the same seed and size that passed before is taken as it is."""
    started = time.monotonic()
    stats_path = out / f"invariants-seed-{seed}.json"
    log_path = out / f"invariants-seed-{seed}.log"
    if resume and stats_path.exists():
        summary = json.loads(stats_path.read_text())
        if summary.get("examples") == examples and summary.get("passed"):
            print(f"seed {seed}: passed before, {summary['stats']['examples']} sequences in "
                  f"{summary['wall_s']:.0f} s", flush=True)  # fmt: skip
            return True, summary, summary["wall_s"]
    stats_path.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRUSTRL_INVARIANT_EXAMPLES": str(examples),
        "TRUSTRL_INVARIANT_SEED": str(seed),
        "TRUSTRL_INVARIANT_STATS": str(stats_path),
    }
    command = [sys.executable, "-m", "pytest", TEST, "-qx", "-p", "no:randomly", "-p", "no:cacheprovider"]
    with log_path.open("w") as log:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    summary = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    wall = time.monotonic() - started
    if summary:
        summary.update(passed=done.returncode == 0, wall_s=round(wall, 1))
        stats_path.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    verdict = "passed" if done.returncode == 0 else f"FAILED (exit {done.returncode}, see {log_path})"
    print(f"seed {seed}: {verdict}, {summary.get('stats', {}).get('examples', 0)} sequences in {wall:.0f} s",
          flush=True)  # fmt: skip
    return done.returncode == 0, summary, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4], help="one run per seed")
    parser.add_argument("--examples", type=int, default=2_500, help="sequences per seed")
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once")
    parser.add_argument("--resume", action="store_true", help="reuse the seeds' runs that passed before")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "invariants.json", help="the summary")
    args = parser.parse_args(argv)
    out = args.json.resolve().parent
    out.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    runs: dict[int, dict[str, object]] = {}
    per_seed: dict[int, Counter[str]] = {}
    events: set[str] = set()
    failed = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda seed: run_seed(seed, args.examples, out, args.resume), args.seeds))
    for seed, (passed, summary, wall) in zip(args.seeds, results, strict=True):
        stats = Counter(summary.get("stats", {}))
        per_seed[seed] = stats
        events.update(summary.get("events", []))
        runs[seed] = {"passed": passed, "sequences": stats["examples"], "wall_s": round(wall, 1)}
        if not passed:
            failed.append(seed)
    total: Counter[str] = sum(per_seed.values(), Counter())
    rows, unreached = coverage(total, events)
    wall_s = time.monotonic() - started

    seeds = list(per_seed)
    print(f"\n{'row':<66}" + "".join(f"{'seed ' + str(s):>11}" for s in seeds) + f"{'total':>11}")
    for key, count in rows:
        cells = "".join(f"{per_seed[s].get(key, 0):>11}" for s in seeds)
        note = "  (unreachable: see UNREACHED)" if not count and key in UNREACHED else ""
        print(f"{key:<66}{cells}{count:>11}{note}")
    print(f"\n{total['examples']} sequences over seeds {seeds} in {wall_s:.0f} s")
    if unreached:
        print("never reached: " + ", ".join(unreached))
    args.json.write_text(
        json.dumps(
            {
                "runs": runs,
                "sequences": total["examples"],
                "wall_s": round(wall_s, 1),
                "rows": dict(rows),
                "stats": dict(total),
                "never_reached": unreached,
                "unreachable": UNREACHED,
            },
            indent=1,
            sort_keys=True,
        )
        + "\n"
    )
    return 1 if failed or unreached else 0


if __name__ == "__main__":
    sys.exit(main())
