"""The role journal: durable intents, done and facts; a line torn by a crash is dropped on reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.errors import ConfigError
from protocol.journal import Journal


def test_intent_done_and_facts_survive_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.jsonl"
    journal = Journal(path)
    journal.intent("commit", "3", verdicts=5, salt="0xab")
    assert [e.key for e in journal.open_intents()] == ["3"]
    assert not journal.is_done("commit", "3")
    journal.fact("verdict", "3:0", verdict=1)
    reopened = Journal(path)
    entry = reopened.entry("commit", "3")
    assert entry is not None
    assert entry.status == "intent"
    assert entry.data == {"verdicts": 5, "salt": "0xab"}
    reopened.done("commit", "3", tx="0x01")
    entry = Journal(path).entry("commit", "3")
    assert entry is not None
    assert entry.is_done
    assert entry.data == {"verdicts": 5, "salt": "0xab", "tx": "0x01"}
    assert Journal(path).open_intents() == []
    journal = Journal(path)
    journal.fact("commit", "3", note="facts never undo done")
    assert journal.is_done("commit", "3")
    assert [e.key for e in journal.entries("verdict")] == ["3:0"]
    assert journal.entry("nothing", "here") is None


def test_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    journal.done("submit", "0", index=2)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b'{"status":"intent","action":"submit","key":"1","da')  # the crash happened mid-write
    journal = Journal(path)
    assert journal.is_done("submit", "0")
    assert journal.entry("submit", "1") is None
    assert path.stat().st_size == size
    journal.intent("submit", "1")
    assert Journal(path).entry("submit", "1") is not None


def test_corruption_before_the_end_and_unserialisable_data_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    Journal(path).done("a", "1")
    content = path.read_bytes()
    path.write_bytes(b"garbage\n" + content)
    with pytest.raises(ConfigError, match="corrupt at line 1"):
        Journal(path)
    journal = Journal(tmp_path / "other.jsonl")
    with pytest.raises(ConfigError, match="not JSON"):
        journal.fact("x", "1", value=object())
    with pytest.raises(ConfigError, match="not JSON"):
        journal.fact("x", "1", value=float("nan"))
