"""One retry policy for every request the clients send: JSON-RPC to the chain (`protocol.chain`) and the IPFS
API (`protocol.ipfs`), on tenacity.

Each try has short timeouts: `connect_timeout` to open a connection, `read_timeout` for the answer to start
(and between its bytes), so a node that accepts connections and never answers costs one read timeout, not
minutes. A try that fails transiently (connection refused or reset, a timeout, HTTP 429/5xx, a node saying
it is rate limited: the caller's `transient` predicate decides) is made again on a new connection after an
exponential, jittered wait (`first_wait`, 2x, 4x, ... at most `max_wait`). Trying stops when the next try
cannot help:

* after `attempts` tries;
* when the wait plus one more try as long as the last one would end more than `budget` seconds after the
  first try (a dead endpoint fails a one-shot command in seconds: a refused one after ~`attempts` quick
  tries, a black-holed one after one read timeout);
* when the wait would end past the caller's deadline (`deadline(...)`: a role working toward a phase
  deadline does not sleep past it).

The last error is then re-raised for the caller to describe. The same `DEFAULT_POLICY` serves both clients;
a network file may override the timeouts (`NetworkConfig.rpc_timeout`).
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

__all__ = ["DEFAULT_POLICY", "RetryPolicy", "current_deadline", "deadline"]

T = TypeVar("T")

_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("trustrl_deadline", default=None)


@contextlib.contextmanager
def deadline(at_monotonic: float | None) -> Iterator[None]:
    """Within the block, retries do not wait past `at_monotonic` (a `time.monotonic()` value; None: no
    deadline). Nested deadlines keep the earlier one."""
    outer = _DEADLINE.get()
    inner = at_monotonic if outer is None or at_monotonic is None else min(outer, at_monotonic)
    token = _DEADLINE.set(inner if inner is not None else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def current_deadline() -> float | None:
    """The deadline set by the innermost `deadline` block, or None."""
    return _DEADLINE.get()


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts of one try and when to try again (see the module docstring)."""

    connect_timeout: float = 3.0
    read_timeout: float = 6.0
    attempts: int = 5
    first_wait: float = 0.25
    max_wait: float = 2.0
    budget: float = 15.0

    def __post_init__(self) -> None:
        if min(self.connect_timeout, self.read_timeout, self.budget) <= 0 or self.attempts < 1:
            raise ValueError("timeouts and budget must be > 0 and attempts >= 1")
        if self.first_wait < 0 or self.max_wait < self.first_wait:
            raise ValueError("waits must satisfy 0 <= first_wait <= max_wait")

    def with_(self, **changes: float | int | None) -> RetryPolicy:
        """A copy with the given fields changed (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]

    def call(
        self,
        fn: Callable[[], T],
        *,
        transient: Callable[[BaseException], bool],
        on_retry: Callable[[BaseException, int], None] | None = None,
    ) -> T:
        """`fn()`, tried again while it raises an exception `transient` accepts and the policy allows; the
        last exception propagates. `on_retry(exc, attempt)` runs before each wait (e.g. to switch to a
        fallback endpoint)."""
        started: dict[int, float] = {}

        def before(state: RetryCallState) -> None:
            started[state.attempt_number] = time.monotonic()

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= self.attempts:
                return True
            now = time.monotonic()
            wait = state.upcoming_sleep
            last = now - started.get(state.attempt_number, now)
            if now - state.start_time + wait + last > self.budget:
                return True
            limit = _DEADLINE.get()
            return limit is not None and now + wait >= limit

        def before_sleep(state: RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                exc = state.outcome.exception()
                if exc is not None:
                    on_retry(exc, state.attempt_number)

        retrying = Retrying(
            stop=stop,
            wait=wait_exponential_jitter(
                multiplier=self.first_wait, max=self.max_wait, jitter=self.first_wait
            ),
            retry=retry_if_exception(transient),
            before=before,
            before_sleep=before_sleep,
            reraise=True,
        )
        return retrying(fn)


DEFAULT_POLICY = RetryPolicy()
"""The policy of every RPC and IPFS request unless a caller (a test, a network file) says otherwise."""
