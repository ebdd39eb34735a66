"""A local anvil node (Foundry) for tests, benchmarks and `trustrl demo`.

    with Anvil(block_time=1.0) as node:
        client = ChainClient(node.rpc_url, node.accounts[0][1])

The node listens on 127.0.0.1 on a free port, is stopped by its pid (SIGTERM, then SIGKILL after a
timeout; never by name), and keeps its on-disk state cache and `$HOME` in a private temporary
directory that is removed on stop, so nothing accumulates in `~/.foundry/anvil/tmp/`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from pathlib import Path
from types import TracebackType

from protocol.errors import ChainError

__all__ = ["DEFAULT_MNEMONIC", "Anvil", "AnvilError", "dev_accounts", "find_anvil"]

DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class AnvilError(ChainError):
    """anvil is missing, could not start, or did not answer in time."""


def find_anvil() -> Path:
    """Locate the anvil executable: `$TRUSTRL_ANVIL`, `<repo>/.venv/bin/anvil`, then PATH."""
    env = os.environ.get("TRUSTRL_ANVIL")
    candidates = [Path(env)] if env else [_REPO_ROOT / ".venv" / "bin" / "anvil"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    if env:
        raise AnvilError(f"$TRUSTRL_ANVIL={env} is not an executable file")
    found = shutil.which("anvil")
    if found:
        return Path(found)
    raise AnvilError(f"anvil not found ({candidates[0]} is missing and none on PATH): run scripts/setup.sh")


@functools.lru_cache(maxsize=8)
def dev_accounts(count: int, mnemonic: str = DEFAULT_MNEMONIC) -> tuple[tuple[str, str], ...]:
    """The (checksum address, 0x private key) pairs anvil derives from `mnemonic`
    (BIP-44 path m/44'/60'/0'/0/i)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    out = []
    for i in range(count):
        acct = Account.from_mnemonic(mnemonic, account_path=f"m/44'/60'/0'/0/{i}")
        out.append((str(acct.address), "0x" + bytes(acct.key).hex()))
    return tuple(out)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rpc_answers(url: str) -> bool:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    # Loopback never goes through an HTTP(S)_PROXY from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=1.0) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return False


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _cleanup(proc: subprocess.Popen[bytes] | None, workdir: str | None) -> None:
    if proc is not None:
        _terminate(proc, 5.0)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


class Anvil:
    """A running anvil node; use as a context manager or call `start()` / `stop()`.

    `block_time`: seconds between blocks (interval mining); None mines one block per transaction.
    `accounts`: number of funded dev accounts (10,000 ETH each) from the default mnemonic.
    `port`: fixed port, or None for a free one. `startup_timeout`: seconds to wait for the RPC.
    """

    def __init__(
        self,
        block_time: float | None = None,
        accounts: int = 20,
        port: int | None = None,
        chain_id: int = 31337,
        *,
        startup_timeout: float = 30.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if block_time is not None and block_time <= 0:
            raise AnvilError(f"block_time must be positive, got {block_time}")
        if accounts < 1:
            raise AnvilError(f"accounts must be at least 1, got {accounts}")
        self.block_time = block_time
        self.num_accounts = accounts
        self.chain_id = chain_id
        self.startup_timeout = startup_timeout
        self._fixed_port = port
        self._extra_args = extra_args
        self._proc: subprocess.Popen[bytes] | None = None
        self._workdir: str | None = None
        self._finalizer: weakref.finalize | None = None
        self.port = 0

    @property
    def rpc_url(self) -> str:
        """The node's HTTP JSON-RPC URL."""
        self._require_running()
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """The process id of the anvil process."""
        self._require_running()
        assert self._proc is not None
        return self._proc.pid

    @property
    def accounts(self) -> list[tuple[str, str]]:
        """The funded dev accounts as (checksum address, 0x private key)."""
        return list(dev_accounts(self.num_accounts))

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def _require_running(self) -> None:
        if self._proc is None:
            raise AnvilError("anvil is not started")

    def _command(self, binary: Path, port: int, cache: str) -> list[str]:
        cmd = [
            str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent",
            "--accounts", str(self.num_accounts), "--chain-id", str(self.chain_id),
            "--mnemonic", DEFAULT_MNEMONIC, "--cache-path", cache,
        ]
        if self.block_time is not None:
            cmd += ["--block-time", repr(float(self.block_time))]
        return cmd + list(self._extra_args)

    def start(self) -> Anvil:
        """Start the node and wait until its RPC answers; raises `AnvilError` on failure."""
        if self._proc is not None:
            raise AnvilError("anvil is already started")
        binary = find_anvil()
        self._workdir = tempfile.mkdtemp(prefix="trustrl-anvil-")
        cache = os.path.join(self._workdir, "cache")
        # anvil writes state snapshots under $HOME/.foundry; a private HOME keeps them with us.
        env = dict(os.environ, HOME=self._workdir)
        log_path = os.path.join(self._workdir, "anvil.log")
        attempts = 1 if self._fixed_port else 3
        last_error = ""
        for _ in range(attempts):
            port = self._fixed_port or _free_port()
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    self._command(binary, port, cache), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )
            self._proc, self.port = proc, port
            self._finalizer = weakref.finalize(self, _cleanup, proc, self._workdir)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + self.startup_timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                if _rpc_answers(url):
                    return self
                time.sleep(0.05)
            _terminate(proc, 5.0)
            self._finalizer.detach()
            self._proc = None
            last_error = Path(log_path).read_text(errors="replace").strip()[-2000:]
            if proc.returncode is None or "in use" not in last_error:
                break  # not a port race: retrying will not help
        shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None
        detail = f": {last_error}" if last_error else ""
        raise AnvilError(
            f"anvil ({binary}) did not answer on 127.0.0.1:{self.port} within "
            f"{self.startup_timeout:.0f} s{detail}"
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the node (SIGTERM, SIGKILL after `timeout` s) and remove its private directory."""
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if self._proc is not None:
            _terminate(self._proc, timeout)
            self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._proc.pid} url=http://127.0.0.1:{self.port}" if self._proc else "stopped"
        return f"Anvil({state})"
