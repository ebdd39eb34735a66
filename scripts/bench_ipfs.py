"""Benchmark the IPFS artifact store: daemon start/restart, put and verified get per content size.

Starts a local js-ipfs daemon in a temporary repo (or uses `--ipfs URL`), then for each size puts
random bytes and reads them back three ways: `get_bytes` (every block fetched with block/get and
checked against its CID), `get_file` (the same, streamed to disk) and, for reference, the daemon's
unverified `cat`. Prints a table (median of `--repeat` runs) and writes JSON with `--json PATH`.

    .venv/bin/python scripts/bench_ipfs.py --json out/bench_ipfs.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

from protocol.ipfs import ArtifactStore
from protocol.ipfs_daemon import IpfsDaemon

DEFAULT_SIZES = [1024, 256 * 1024, 4 * 1024 * 1024, 32 * 1024 * 1024]


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _cat(url: str, cid: str) -> bytes:
    with httpx.Client(timeout=60, trust_env=False) as client:
        response = client.post(f"{url}/api/v0/cat", params={"arg": cid})
        response.raise_for_status()
        return response.content


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ipfs", help="use a running daemon at this URL instead of starting one")
    parser.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES, help="content sizes in bytes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    results: dict[str, object] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "system": platform.platform(),
        },
    }
    with ExitStack() as stack:
        if args.ipfs:
            url = args.ipfs
        else:
            daemon = IpfsDaemon()
            start = time.perf_counter()
            stack.enter_context(daemon)
            first_start = time.perf_counter() - start
            restart = _median_s(daemon.restart, 1)
            results["daemon"] = {"init_and_start_s": first_start, "restart_s": restart}
            url = daemon.api_url
        store = stack.enter_context(ArtifactStore(url))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rows = []
        for size in args.sizes:
            data = os.urandom(size)
            put_s = _median_s(lambda d=data: store.put_bytes(d), args.repeat)
            art = store.put_bytes(data)
            get_s = _median_s(
                lambda a=art: store.get_bytes(a.cid, max_size=a.size, expected_sha256=a.sha256), args.repeat
            )
            file_s = _median_s(
                lambda a=art: store.get_file(
                    a.cid, tmp / "out.bin", max_size=a.size, expected_sha256=a.sha256
                ),
                args.repeat,
            )
            cat_s = _median_s(lambda a=art: _cat(url, a.cid), args.repeat)
            rows.append(
                {
                    "size": size,
                    "cid": art.cid,
                    "put_s": put_s,
                    "get_bytes_s": get_s,
                    "get_file_s": file_s,
                    "cat_unverified_s": cat_s,
                }
            )
        results["sizes"] = rows

    if "daemon" in results:
        d = results["daemon"]
        assert isinstance(d, dict)
        print(f"daemon: init+start {d['init_and_start_s']:.2f} s, restart {d['restart_s']:.2f} s")
    print(
        f"{'size':>10} {'put ms':>9} {'get_bytes ms':>13} {'get_file ms':>12} {'cat ms':>9} {'get MB/s':>9}"
    )
    for row in rows:
        ms = {k: 1000 * float(row[k]) for k in ("put_s", "get_bytes_s", "get_file_s", "cat_unverified_s")}
        rate = int(row["size"]) / 1e6 / float(row["get_bytes_s"])
        print(
            f"{row['size']:>10} {ms['put_s']:>9.1f} {ms['get_bytes_s']:>13.1f} {ms['get_file_s']:>12.1f} "
            f"{ms['cat_unverified_s']:>9.1f} {rate:>9.1f}"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
