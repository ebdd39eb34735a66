"""A TCP proxy that injects network faults between a client and a server (anvil's RPC, the IPFS API).

    proxy = FaultProxy(target_port)              # listens on 127.0.0.1:proxy.port, forwards to the target
    proxy.set("blackhole")                       # or fault("blackhole", seconds=30) to restore on its own
    proxy.set("pass")

Modes (a fault also applies to the connections already open when it starts: `refuse` and `drop` cut them,
`blackhole` and `slow` hold what they carry):
* `pass`: forward both ways.
* `refuse`: the port stops listening (it stays bound), so new connections are refused; open ones are cut.
* `blackhole`: connections are accepted and nothing is ever answered (what arrives is read and dropped), as a
  dead host behind a live load balancer or a lost route would do.
* `slow`: every chunk of an answer waits `delay` seconds (uniform in [`slow_min`, `slow_max`]) first.
* `drop`: an answer is cut in the middle: half of its first chunk is forwarded, then the connection is closed.

Threads, one per direction of each connection; `close()` stops everything it started.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from typing import Literal

Mode = Literal["pass", "refuse", "blackhole", "slow", "drop"]
MODES: tuple[Mode, ...] = ("refuse", "blackhole", "slow", "drop")


class FaultProxy:
    """See the module docstring."""

    def __init__(self, target_port: int, *, slow_min: float = 1.0, slow_max: float = 5.0) -> None:
        self.target = ("127.0.0.1", target_port)
        self.slow_min, self.slow_max = slow_min, slow_max
        self.mode: Mode = "pass"
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.closed = False
        self._timer: threading.Timer | None = None
        self.faults: list[tuple[Mode, float, float]] = []
        """(mode, start, end) of each fault, in time.monotonic() (end 0 while it lasts)."""
        self.server = self._listen(0)
        self.port = int(self.server.getsockname()[1])
        self._accepting = threading.Thread(target=self._serve, args=(self.server,), daemon=True)
        self._accepting.start()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT."""
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _listen(port: int) -> socket.socket:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        return server

    # ------------------------------------------------------------------ control
    def set(self, mode: Mode) -> None:
        """Switch to `mode` now."""
        with self.lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            previous, self.mode = self.mode, mode
            now = time.monotonic()
            if self.faults and self.faults[-1][2] == 0:
                m, start, _ = self.faults[-1]
                self.faults[-1] = (m, start, now)
            if mode != "pass":
                self.faults.append((mode, now, 0))
            if mode in ("refuse", "drop") and previous != mode:
                self._cut_open()
            if mode == "refuse" and previous != "refuse":
                self._stop_listening()
            elif mode != "refuse" and previous == "refuse" and not self.closed:
                self.server.listen(64)
                threading.Thread(target=self._serve, args=(self.server,), daemon=True).start()

    def fault(self, mode: Mode, seconds: float) -> None:
        """Switch to `mode` for `seconds`, then back to `pass` (on a timer thread)."""
        self.set(mode)
        timer = threading.Timer(seconds, self.set, args=("pass",))
        timer.daemon = True
        with self.lock:
            self._timer = timer
        timer.start()

    def close(self) -> None:
        """Stop listening and cut every connection."""
        with self.lock:
            self.closed = True
            if self._timer is not None:
                self._timer.cancel()
            with contextlib.suppress(OSError):
                self.server.close()
            self._cut_open()

    def _cut_open(self) -> None:
        for s in self.open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self.open.clear()

    def _stop_listening(self) -> None:
        """Close the listener and bind the port again at once without listening (connections to a bound,
        non-listening port are refused, and no other socket can take the port meanwhile)."""
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # ends the accept() blocked in another thread
        with contextlib.suppress(OSError):
            self.server.close()
        placeholder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        placeholder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        placeholder.bind(("127.0.0.1", self.port))
        self.server = placeholder

    # ------------------------------------------------------------------ forwarding
    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "refuse":
                client.close()
                continue
            upstream: socket.socket | None = None
            if mode != "blackhole":
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()
                    continue
            with self.lock:
                self.open.add(client)
                if upstream is not None:
                    self.open.add(upstream)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if upstream is None:
                threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                continue
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _swallow(self, sock: socket.socket) -> None:
        """Read and drop everything (a black hole), until the peer or `close()` ends it."""
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        finally:
            self._forget(sock)

    def _pipe(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        try:
            while data := src.recv(65536):
                mode = self.mode
                if mode == "blackhole":
                    continue  # dropped: the other side waits forever
                if answers and mode == "slow":
                    time.sleep(random.uniform(self.slow_min, self.slow_max))
                if answers and mode == "drop":
                    dst.sendall(data[: max(1, len(data) // 2)])
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                self._forget(s)

    def _forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        with self.lock:
            self.open.discard(sock)
