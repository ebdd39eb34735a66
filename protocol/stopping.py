"""Stopping a command on SIGINT (Ctrl-C) and SIGTERM (systemd, docker, kill) at a safe point.

`trustrl` turns both signals into `Interrupted`, a BaseException (so `except Exception` lets it pass), and
exits with status 130. One-shot commands stop at once. Long-running nodes (`stop_on_signals(defer=True)`)
stop at the next safe point: at once inside `interruptible()` blocks (training, verifying, uploading,
waiting: work whose loss costs nothing but time, since the journal says what is done), else after the action
in flight (a transaction being sent and mined, a journal line being written), when their run loop calls
`check_stop()` before its next step. A second signal stops at once. The node then says what is pending from
its journal and the chain, with deadlines (`RoleNode.pending`).

No torch, no web3: `protocol.cli` installs the handlers before any command runs.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["Interrupted", "check_stop", "deferred_signals", "interruptible", "stop_on_signals"]


class Interrupted(BaseException):
    """SIGINT or SIGTERM asked this process to stop (a BaseException, so `except Exception` lets it pass)."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"stopped by {self.signal_name}")


class _StopRequest:
    """What SIGINT and SIGTERM do in this process (see the module docstring)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.defer = False
        self.depth = 0  # > 0 inside `interruptible()`

    def handle(self, signum: int, frame: object) -> None:
        again = self.signum is not None
        self.signum = signum
        if again or not self.defer or self.depth > 0:
            raise Interrupted(signum)


_STOP = _StopRequest()


@contextlib.contextmanager
def stop_on_signals(*, defer: bool) -> Iterator[None]:
    """Turn SIGINT (Ctrl-C) and SIGTERM into `Interrupted` while the block runs.

    `defer=False`: at once. `defer=True` (long-running nodes): at the next safe point. Inside
    `interruptible()` (training, verifying, uploading, waiting: work whose loss costs nothing but time) that
    is at once; elsewhere (a transaction being sent and mined, a journal line being written) the request is
    remembered and the run loop stops before its next step (`check_stop`). A second signal stops at once."""
    saved = (_STOP.signum, _STOP.defer, _STOP.depth)
    _STOP.signum, _STOP.defer, _STOP.depth = None, defer, 0
    try:
        with _handled_by(_STOP.handle):
            yield
    finally:
        _STOP.signum, _STOP.defer, _STOP.depth = saved


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Mark the block as safe to stop in at once (see `stop_on_signals`)."""
    check_stop()
    _STOP.depth += 1
    try:
        yield
    finally:
        _STOP.depth -= 1


def check_stop() -> None:
    """Raise `Interrupted` if a signal asked this process to stop."""
    if _STOP.signum is not None:
        raise Interrupted(_STOP.signum)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Let the block finish whatever SIGINT and SIGTERM arrive (cleanup that must not be cut short: stopping
    the processes a command started); the signals are ignored while it runs (in the main thread: only it
    receives signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with _handled_by(signal.SIG_IGN):
        yield


@contextlib.contextmanager
def _handled_by(handler: Callable[[int, Any], None] | int) -> Iterator[None]:
    """SIGINT and SIGTERM go to `handler` while the block runs; the previous handlers come back after."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, restored in previous.items():
            signal.signal(s, restored)
