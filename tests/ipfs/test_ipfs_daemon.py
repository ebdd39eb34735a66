"""The daemon's lifecycle with real js-ipfs processes: it goes away, crashes and comes back, and the
store gives clear errors meanwhile and loses nothing. The tests stop and crash the session's daemon;
`running_ipfs` brings it back for the next test."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from protocol.errors import IpfsError
from protocol.ipfs import ArtifactStore
from protocol.ipfs_daemon import IpfsDaemon

pytestmark = pytest.mark.ipfs


@pytest.fixture
def daemon(running_ipfs: IpfsDaemon) -> IpfsDaemon:
    return running_ipfs


def _wait_dead(pid: int, timeout: float = 10.0) -> None:
    """Until `pid` has exited (a zombie counts: its parent reaps it later)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.02)
    raise AssertionError(f"pid {pid} still alive after {timeout} s")


def test_daemon_is_loopback_only(daemon: IpfsDaemon) -> None:
    config = json.loads((daemon.repo_dir / "config").read_text())
    assert config["Bootstrap"] == []
    assert config["Discovery"]["MDNS"]["Enabled"] is False
    assert config["Addresses"]["API"] == f"/ip4/127.0.0.1/tcp/{daemon.api_port}"
    assert all(addr.startswith("/ip4/127.0.0.1/") for addr in config["Addresses"]["Swarm"])
    assert daemon.api_multiaddr == f"/ip4/127.0.0.1/tcp/{daemon.api_port}/http"
    with ArtifactStore(daemon.api_multiaddr) as store:  # a multiaddr works as the address too
        assert store.version()


def test_live_daemon_holds_its_repo(daemon: IpfsDaemon) -> None:
    intruder = IpfsDaemon(daemon.repo_dir)
    with pytest.raises(IpfsError, match=f"in use by a daemon with pid {daemon.pid}"):
        intruder.start()
    assert daemon.running


def test_stopped_daemon_is_a_clear_error_and_a_restart_loses_nothing(daemon: IpfsDaemon) -> None:
    quick = ArtifactStore(daemon.api_url, retries=3, backoff=0.1, find_timeout=1.0)
    data = os.urandom(400_000)
    art = quick.put_bytes(data)
    small = quick.put_bytes(os.urandom(100))
    pid = daemon.pid
    assert pid is not None
    daemon.stop()
    assert daemon.pid is None
    assert not daemon.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not (daemon.repo_dir / "repo.lock").exists()

    started = time.monotonic()
    with pytest.raises(IpfsError) as err:
        quick.get_bytes(art.cid, max_size=len(data))
    elapsed = time.monotonic() - started
    message = str(err.value)
    assert f"IPFS daemon at {daemon.api_url} is not answering" in message
    assert "4 attempts" in message
    assert "pass --ipfs" in message
    assert 0.7 - 0.05 <= elapsed < 5  # backoff 0.1 + 0.2 + 0.4, nothing longer
    with pytest.raises(IpfsError, match="not answering"):
        quick.put_bytes(b"lost?")

    # The daemon comes back while a patient reader is retrying: the read succeeds, nothing is lost.
    patient = ArtifactStore(
        daemon.api_url, retries=60, backoff=0.1, max_backoff=0.5, budget=60, find_timeout=1.0
    )
    restarter = threading.Timer(0.2, daemon.start)
    restarter.start()
    try:
        assert patient.get_bytes(art.cid, max_size=len(data), expected_sha256=art.sha256) == data
    finally:
        restarter.join()
    assert daemon.running
    assert daemon.pid != pid
    assert patient.get_bytes(small.cid, max_size=100, expected_sha256=small.sha256)


def test_crash_leaves_a_stale_lock_that_the_next_start_clears(daemon: IpfsDaemon) -> None:
    store = ArtifactStore(daemon.api_url, retries=1, backoff=0.05, find_timeout=1.0)
    art = store.put_bytes(os.urandom(300_000))
    pid = daemon.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # a crash: no cleanup by js-ipfs, no stop() by us
    _wait_dead(pid)
    assert (daemon.repo_dir / "repo.lock").exists()

    # Another process of ours finds the lock, sees that its recorded owner is dead, and starts.
    with IpfsDaemon(daemon.repo_dir, daemon.api_port, daemon.gateway_port) as second:
        assert second.pid != pid
        # The crashed daemon's handle is cleaned up now; it must not touch the new owner's lock.
        daemon.stop()
        assert (daemon.repo_dir / "repo.lock").exists()
        assert store.get_bytes(art.cid, max_size=art.size, expected_sha256=art.sha256)


def test_port_in_use_is_refused_before_start(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = IpfsDaemon(tmp_path / "repo", api_port=port)
        d.port_wait = 0.2
        with pytest.raises(IpfsError, match=f"port {port} on 127.0.0.1 is in use: pick another api_port"):
            d.start()
        assert not d.running


def test_missing_js_ipfs_is_a_clear_error(tmp_path: Path) -> None:
    d = IpfsDaemon(tmp_path / "repo", cli_path=tmp_path / "no" / "cli.js")
    with pytest.raises(IpfsError, match="npm ci"):
        d.start()
