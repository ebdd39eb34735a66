"""`python -m protocol.ipfs_daemon` (the local IPFS node of README's testnet instructions) stops its js-ipfs
daemon and exits 0 on SIGTERM and SIGHUP as on Ctrl-C: a service manager or `kill PID` must not leave the
node process behind, holding the repo lock and the API port."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from protocol.compile import REPO_ROOT
from protocol.ipfs_daemon import free_port

pytestmark = pytest.mark.ipfs

START_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0  # the daemon gets SIGTERM, then SIGKILL after 10 s


def _gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie counts: nobody runs it any more)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_stop_signal_stops_the_daemon_and_exits_0(tmp_path: Path, signum: signal.Signals) -> None:
    repo, api_port = tmp_path / "repo", free_port()
    command = ["-m", "protocol.ipfs_daemon", "--repo", str(repo), "--api-port", str(api_port)]
    proc = subprocess.Popen(
        [sys.executable, *command, "--gateway-port", str(free_port())],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True)
    reader.start()
    daemon_pid: int | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while daemon_pid is None:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no start line within {START_TIMEOUT:.0f} s; exit {proc.poll()}")
            found = re.match(r"IPFS daemon pid (\d+): API (\S+)", line)
            if found:
                daemon_pid = int(found.group(1))
                assert found.group(2) == f"http://127.0.0.1:{api_port}"
        assert not _gone(daemon_pid)
        response = httpx.post(f"http://127.0.0.1:{api_port}/api/v0/id", timeout=5, trust_env=False)
        assert response.status_code == 200

        stopped_at = time.monotonic()
        proc.send_signal(signum)
        code = proc.wait(timeout=STOP_TIMEOUT)
        elapsed = time.monotonic() - stopped_at
    finally:
        if proc.poll() is None:  # the test failed: do not leave anything behind
            proc.kill()
            proc.wait()
        if daemon_pid is not None and not _gone(daemon_pid):
            os.kill(daemon_pid, signal.SIGKILL)
    _, stderr = proc.communicate()
    assert code == 0, stderr
    assert elapsed < STOP_TIMEOUT
    assert f"{signum.name}: IPFS daemon stopped" in stderr
    assert _gone(daemon_pid), f"js-ipfs pid {daemon_pid} outlived its parent"
    assert not (repo / "repo.lock").exists()  # a clean stop: the next start does not wait on a stale lock
    assert not (repo / "trustrl-daemon.json").exists()
    with pytest.raises(httpx.TransportError):
        httpx.post(f"http://127.0.0.1:{api_port}/api/v0/id", timeout=2, trust_env=False)
