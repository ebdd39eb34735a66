"""Start and stop a local, loopback-only js-ipfs daemon for local runs and tests.

Production nodes run kubo; locally the project runs js-ipfs 0.66.1 from `node_modules` (the only IPFS
daemon with the `/api/v0` RPC that installs from a package registry). The repo is initialised once
(`init --profile test`), then every start rewrites its addresses: API, gateway and swarm on 127.0.0.1,
no gRPC endpoint, no bootstrap peers, no MDNS, so the node never tries to reach the network.

The process is tracked by pid only: `stop()` sends SIGTERM to that pid, then SIGKILL to it after a
timeout. js-ipfs locks its repo with a `repo.lock` directory that survives a crash and blocks the next
start for 20 s; the daemon records its pid (and the kernel's start time for it, against pid reuse) in
`trustrl-daemon.json`, and a lock is removed only when that owner is dead.

Run `python -m protocol.ipfs_daemon [--repo DIR] [--api-port N]` to keep one running in a terminal; it
stops the daemon and exits 0 on Ctrl-C (SIGINT), SIGTERM or SIGHUP.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import httpx

from protocol.errors import IpfsError

__all__ = ["IpfsDaemon", "default_cli_path", "free_port"]

_PID_FILE = "trustrl-daemon.json"
_LOG_FILE = "daemon.log"
_LOCK_DIR = "repo.lock"
_TAIL_BYTES = 4000
_FATAL_MARKERS = (b"EADDRINUSE", b"EADDRNOTAVAIL", b"EACCES")


def default_cli_path() -> Path:
    """Where `npm ci` puts the js-ipfs command line: `<project>/node_modules/ipfs/src/cli.js`."""
    return Path(__file__).resolve().parents[1] / "node_modules" / "ipfs" / "src" / "cli.js"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _port_free(port: int) -> bool:
    """Whether a listener could bind 127.0.0.1:`port` (with SO_REUSEADDR, as Node's listeners do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in clock ticks since boot) of `pid` from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return fields[0], int(fields[19])  # fields 3 and 22 of proc_pid_stat(5)
    except (IndexError, ValueError):
        return None


def _proc_start_ticks(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else None


def _pid_alive(pid: int, start_ticks: int | None) -> bool:
    """Whether `pid` runs and is the process that was recorded (not a reused pid, not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process holds the pid
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, ticks = stat
    return state not in ("Z", "X") and (start_ticks is None or ticks == start_ticks)


class IpfsDaemon:
    """A js-ipfs daemon on loopback ports over a repo directory; a context manager.

    `repo_dir=None` uses a temporary repo, deleted when the context exits. Ports left as None are
    picked free once, at construction, and kept across `restart()` so `api_url` stays valid.
    """

    port_wait = 2.0
    """Seconds `start` waits for a busy port to be released (a daemon that just died frees its
    sockets a moment after it exits) before it gives up."""

    def __init__(
        self,
        repo_dir: Path | None = None,
        api_port: int | None = None,
        gateway_port: int | None = None,
        *,
        cli_path: Path | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self._own_repo = repo_dir is None
        self.repo_dir = Path(tempfile.mkdtemp(prefix="trustrl-ipfs-")) if repo_dir is None else Path(repo_dir)
        self.api_port = api_port if api_port is not None else free_port()
        self.gateway_port = gateway_port if gateway_port is not None else free_port()
        self.cli_path = cli_path if cli_path is not None else default_cli_path()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def api_multiaddr(self) -> str:
        """The RPC API as a multiaddr, e.g. `/ip4/127.0.0.1/tcp/5001/http`."""
        return f"/ip4/127.0.0.1/tcp/{self.api_port}/http"

    @property
    def api_url(self) -> str:
        """The RPC API as a URL, e.g. `http://127.0.0.1:5001` (what `ArtifactStore` takes)."""
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def gateway_url(self) -> str:
        """The read-only HTTP gateway, e.g. `http://127.0.0.1:8080`."""
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def pid(self) -> int | None:
        """The daemon's pid while it runs, else None."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """Whether the daemon process this object started is still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """The daemon's stdout and stderr (rewritten at every start)."""
        return self.repo_dir / _LOG_FILE

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> IpfsDaemon:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> IpfsDaemon:
        """Initialise the repo if needed, configure loopback ports, start the daemon, wait until ready.

        Raises `IpfsError` (with the tail of the daemon's output) when node or js-ipfs is missing, the
        repo is held by another live daemon, or the daemon exits or does not answer in `start_timeout`.
        """
        if self.running:
            return self
        node = shutil.which("node")
        if node is None:
            raise IpfsError("`node` is not on PATH: the local IPFS daemon (js-ipfs) needs Node.js 20")
        if not self.cli_path.is_file():
            raise IpfsError(
                f"js-ipfs is not installed ({self.cli_path} is missing): run `npm ci` in the project root"
            )
        self._clear_stale_lock()
        for name, port in (("api_port", self.api_port), ("gateway_port", self.gateway_port)):
            # A daemon that just died may hold its sockets a moment longer: give the kernel time.
            deadline = time.monotonic() + self.port_wait
            while not _port_free(port):
                if time.monotonic() > deadline:
                    raise IpfsError(f"port {port} on 127.0.0.1 is in use: pick another {name}")
                time.sleep(0.05)
        self.repo_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "IPFS_PATH": str(self.repo_dir)}
        if not (self.repo_dir / "config").is_file():
            self._init_repo(node, env)
        peer_id = self._configure()

        self._log = open(self.log_path, "wb")  # noqa: SIM115 - kept open while the daemon runs
        self._proc = subprocess.Popen(
            [node, str(self.cli_path), "daemon", "--enable-preload=false"],
            cwd=self.repo_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._write_pid_file(self._proc.pid)
        try:
            self._wait_ready(peer_id)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the daemon: SIGTERM to its pid, SIGKILL to its pid after `stop_timeout` s.

        The repo stays; a lock left by an unclean exit is removed (its owner is known to be dead).
        """
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            else:
                proc.wait()
            self._proc = None
            if self._recorded_pid() == proc.pid:
                # Our daemon is gone; a lock it left is stale. A later owner's lock is not ours to touch.
                self._remove_lock()
                (self.repo_dir / _PID_FILE).unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> IpfsDaemon:
        """Stop and start again on the same repo and ports: pinned data persists."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the daemon and delete the repo if this object created it."""
        self.stop()
        if self._own_repo:
            shutil.rmtree(self.repo_dir, ignore_errors=True)

    # -- internals ---------------------------------------------------------------------------------

    def _init_repo(self, node: str, env: dict[str, str]) -> None:
        try:
            result = subprocess.run(
                [node, str(self.cli_path), "init", "--profile", "test"],
                env=env,
                cwd=self.repo_dir,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.start_timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise IpfsError(
                f"`ipfs init` of {self.repo_dir} did not finish in {self.start_timeout:.0f} s"
            ) from None
        if result.returncode != 0 or not (self.repo_dir / "config").is_file():
            tail = (result.stdout + result.stderr).decode(errors="replace")[-_TAIL_BYTES:]
            raise IpfsError(f"`ipfs init` of {self.repo_dir} failed (exit {result.returncode}):\n{tail}")

    def _configure(self) -> str:
        """Rewrite the repo's addresses to loopback only; returns the node's peer id."""
        path = self.repo_dir / "config"
        try:
            config: dict[str, Any] = json.loads(path.read_text())
            peer_id = str(config["Identity"]["PeerID"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IpfsError(f"IPFS repo config {path} is unreadable: {exc}") from None
        addresses = config.setdefault("Addresses", {})
        addresses["API"] = f"/ip4/127.0.0.1/tcp/{self.api_port}"
        addresses["Gateway"] = f"/ip4/127.0.0.1/tcp/{self.gateway_port}"
        addresses["RPC"] = ""  # no gRPC-over-websocket endpoint: the project talks HTTP only
        addresses["Swarm"] = ["/ip4/127.0.0.1/tcp/0"]
        addresses["Announce"] = []
        addresses["NoAnnounce"] = []
        addresses["Delegates"] = []
        config["Bootstrap"] = []
        discovery = config.setdefault("Discovery", {})
        discovery["MDNS"] = {**discovery.get("MDNS", {}), "Enabled": False}
        discovery["webRTCStar"] = {"Enabled": False}
        tmp = path.with_name("config.tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n")
        os.replace(tmp, path)
        return peer_id

    def _write_pid_file(self, pid: int) -> None:
        record = {"pid": pid, "start_ticks": _proc_start_ticks(pid)}
        (self.repo_dir / _PID_FILE).write_text(json.dumps(record) + "\n")

    def _recorded_pid(self) -> int | None:
        try:
            return int(json.loads((self.repo_dir / _PID_FILE).read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _clear_stale_lock(self) -> None:
        """Remove `repo.lock` left by a daemon that died; refuse to share the repo with a live one."""
        lock = self.repo_dir / _LOCK_DIR
        record_path = self.repo_dir / _PID_FILE
        if not lock.exists() or not record_path.is_file():
            # No lock, or an owner we did not start: js-ipfs itself treats a lock whose mtime is
            # older than 20 s as stale, and reports a live one in the log tail.
            return
        try:
            record = json.loads(record_path.read_text())
            pid, ticks = int(record["pid"]), record.get("start_ticks")
        except (OSError, ValueError, KeyError, TypeError):
            return
        if _pid_alive(pid, ticks if isinstance(ticks, int) else None):
            raise IpfsError(
                f"IPFS repo {self.repo_dir} is in use by a daemon with pid {pid}: "
                "stop it, or use another repo directory"
            )
        self._remove_lock()
        record_path.unlink(missing_ok=True)

    def _remove_lock(self) -> None:
        lock = self.repo_dir / _LOCK_DIR
        if lock.is_dir():
            shutil.rmtree(lock, ignore_errors=True)
        else:
            lock.unlink(missing_ok=True)
        # The `api` file advertises the dead daemon's address to js-ipfs command lines.
        (self.repo_dir / "api").unlink(missing_ok=True)

    def _wait_ready(self, peer_id: str) -> None:
        """Poll `/api/v0/id` until the daemon answers with this repo's peer id."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        url = f"{self.api_url}/api/v0/id"
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while True:
                code = self._proc.poll()
                if code is not None:
                    raise IpfsError(
                        f"IPFS daemon exited with status {code} before it was ready "
                        f"(repo {self.repo_dir}):\n{self._log_tail()}"
                    )
                try:
                    response = client.post(url)
                    if response.status_code == 200:
                        answered = response.json().get("ID")
                        if answered == peer_id:
                            return
                        raise IpfsError(
                            f"port {self.api_port} is answered by another IPFS node ({answered}), "
                            f"not this repo's ({peer_id}): pick another api_port"
                        )
                except (httpx.TransportError, ValueError):
                    pass
                if self._log_says_fatal():
                    raise IpfsError(
                        f"IPFS daemon (pid {self._proc.pid}) failed to start on {self.api_url}:\n"
                        f"{self._log_tail()}"
                    )
                if time.monotonic() > deadline:
                    raise IpfsError(
                        f"IPFS daemon (pid {self._proc.pid}) did not answer on {self.api_url} within "
                        f"{self.start_timeout:.0f} s:\n{self._log_tail()}"
                    )
                time.sleep(0.1)

    def _log_says_fatal(self) -> bool:
        """js-ipfs logs a port already in use and then hangs instead of exiting."""
        try:
            return any(marker in self.log_path.read_bytes() for marker in _FATAL_MARKERS)
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return "(no daemon output)"
        return data[-_TAIL_BYTES:].decode(errors="replace").strip() or "(no daemon output)"


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(Exception):
    """A stop signal arrived (raised by the handler `main` installs)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _request_stop(signum: int, frame: object) -> None:
    # Later signals must not interrupt the stop itself (that could leave the daemon running): the
    # daemon gets SIGTERM, then SIGKILL after its stop timeout, whatever else arrives meanwhile.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise _StopRequested(signum)


def main(argv: list[str] | None = None) -> int:
    """Run a local daemon in the foreground until Ctrl-C, SIGTERM or SIGHUP (for manual local runs)."""
    parser = argparse.ArgumentParser(prog="python -m protocol.ipfs_daemon", description=main.__doc__)
    parser.add_argument("--repo", type=Path, default=Path.home() / ".trustrl" / "ipfs", help="repo directory")
    parser.add_argument("--api-port", type=int, default=5001)
    parser.add_argument("--gateway-port", type=int, default=8080)
    args = parser.parse_args(argv)
    daemon = IpfsDaemon(args.repo, args.api_port, args.gateway_port)
    previous = {sig: signal.signal(sig, _request_stop) for sig in _STOP_SIGNALS}
    try:
        with daemon:
            print(
                f"IPFS daemon pid {daemon.pid}: API {daemon.api_url} (--ipfs {daemon.api_url}), "
                f"repo {daemon.repo_dir}; Ctrl-C stops it",
                flush=True,
            )
            while daemon.running:
                time.sleep(0.5)
            print(f"IPFS daemon exited; log: {daemon.log_path}", file=sys.stderr)
            return 1
    except IpfsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except _StopRequested as stop:
        # The `with` block has stopped the daemon by now (SIGTERM to its pid, SIGKILL after a timeout).
        print(f"{stop}: IPFS daemon stopped", file=sys.stderr, flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
