"""`trustrl unstake` says why an allocation is still held and what releases it (unit test, a fake chain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from protocol.cli import _lock_reason
from protocol.contracts import TaskStatus


@dataclass
class _State:
    status: TaskStatus


@dataclass
class _FakeProtocol:
    status: TaskStatus
    unsettled: int = 0
    rounds: int = 0

    def task_state(self, task_id: int) -> _State:
        return _State(self.status)

    def unsettled_of(self, task_id: int) -> int:
        return self.unsettled

    def validator_unsettled_of(self, task_id: int) -> int:
        return self.rounds


@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        (_FakeProtocol(TaskStatus.ACTIVE), "the task is active"),
        (
            _FakeProtocol(TaskStatus.COMPLETED, unsettled=2),
            "2 unsettled submission(s): `trustrl claim --task 7`",
        ),
        (
            _FakeProtocol(TaskStatus.CANCELLED, rounds=3),
            "3 unsettled validator round(s): `trustrl claim --task 7`",
        ),
        (_FakeProtocol(TaskStatus.COMPLETED), "the settlement grace ends 00:20:34 UTC (in 20 min 34 s)"),
    ],
)
def test_lock_reason(proto: Any, expected: str) -> None:
    assert expected in _lock_reason(proto, 7, 1234, 0)
