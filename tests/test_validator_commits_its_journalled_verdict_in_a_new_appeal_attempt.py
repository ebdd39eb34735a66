"""A new attempt of an appeal (the last one missed the reveal quorum) meets the same committee on the same
submission, seed and base: the validator commits the verdict it journalled for the attempt before, with a
fresh salt, without re-verifying (a flood of re-filings does not multiply a juror's work), when that verdict
was ACCEPT or REJECT; an earlier UNAVAILABLE, and a first attempt with nothing journalled, verify. The chain
is a small fake here: tests/contracts/test_appeals.py plays the attempts on the real court."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from protocol.contracts import Verdict
from protocol.journal import Journal
from protocol.roles.validator import ValidatorNode, appeal_key
from protocol.verification import Checked
from protocol.wire import hex_to_bytes

OLD_SALT = "0x" + "ab" * 32


class FakeProto:
    def __init__(self) -> None:
        self.commits: list[tuple[int, int, Verdict, bytes]] = []

    def commit_appeal(self, task_id: int, round_: int, index: int, verdict: Verdict, salt: bytes) -> None:
        self.commits.append((round_, index, verdict, salt))


def _node(tmp_path: Path) -> tuple[ValidatorNode, FakeProto, list[str]]:
    node = ValidatorNode.__new__(ValidatorNode)
    node.task_id = 1
    node.journal = Journal(tmp_path / "journal.jsonl")
    proto, checked = FakeProto(), []
    node.view = SimpleNamespace(  # type: ignore[assignment]
        proto=proto, submissions=lambda round_: checked.append("submissions") or []
    )
    node.out = SimpleNamespace(log=lambda message: None)  # type: ignore[assignment]
    return node, proto, checked


def test_a_new_attempt_commits_the_earlier_verdict_with_a_fresh_salt(tmp_path: Path) -> None:
    node, proto, checked = _node(tmp_path)
    first, second = appeal_key(0, 1, 0), appeal_key(0, 1, 1)
    node.journal.intent("appeal-commit", first, verdict=int(Verdict.REJECT), salt=OLD_SALT)
    node.journal.done("appeal-commit", first)
    assert node.commit_appeal(0, 1, 5_000, second, [first])
    ((round_, index, verdict, salt),) = proto.commits
    assert (round_, index, verdict) == (0, 1, Verdict.REJECT)
    assert salt != hex_to_bytes(OLD_SALT)
    assert checked == []  # not re-verified
    entry = node.journal.entry("appeal-commit", second)
    assert entry is not None
    assert entry.is_done
    assert (entry.data["verdict"], hex_to_bytes(str(entry.data["salt"]))) == (int(Verdict.REJECT), salt)


def test_a_first_attempt_verifies_the_submission(tmp_path: Path) -> None:
    node, proto, checked = _node(tmp_path)
    assert not node.commit_appeal(0, 1, 5_000, appeal_key(0, 1, 0), [])  # the event scan lags: nothing yet
    assert checked == ["submissions"]
    assert proto.commits == []



def test_an_earlier_unavailable_is_checked_again(tmp_path: Path) -> None:
    # UNAVAILABLE says what this node could fetch then (an outage of its own IPFS node near the deadline),
    # not what the submission is: committed again, it would side against jurors who now fetch the data.
    node, proto, checked = _node(tmp_path)
    sub = SimpleNamespace(index=1)
    node.view.submissions = lambda round_: checked.append("submissions") or [sub]  # type: ignore[method-assign]
    proto.seed_of = lambda task_id, round_: b"seed"  # type: ignore[attr-defined]
    node._round_base = lambda round_: b"base"  # type: ignore[method-assign]
    node._check = lambda s, seed, base, end: Checked(Verdict.ACCEPT)  # type: ignore[method-assign]
    first, second = appeal_key(0, 1, 0), appeal_key(0, 1, 1)
    node.journal.intent("appeal-commit", first, verdict=int(Verdict.UNAVAILABLE), salt=OLD_SALT)
    node.journal.done("appeal-commit", first)
    assert node.commit_appeal(0, 1, 5_000, second, [first])
    assert checked == ["submissions"]  # verified again, not reused
    ((_, _, verdict, _),) = proto.commits
    assert verdict == Verdict.ACCEPT
