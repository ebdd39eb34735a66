"""A role's small local journal: append-only JSON lines, fsync'd, one file per role per task.

A role writes an *intent* before it sends a transaction and *done* once the transaction is mined (or
once it found on chain that the action had happened), and *facts* it must not lose (a validator's
verdicts and salt before it commits them, a trainer's artifact references before it submits). After a
restart it reads the journal back and reconciles every open intent with the chain: an action the
chain shows is marked done, one it does not show is done again with the same data. So nothing is lost
(the data needed to finish is on disk before the transaction leaves) and nothing is repeated (the chain
says what happened).

    journal = Journal(path)
    journal.intent("commit", "round-3", verdicts=5, salt="0x...")
    ... send, wait ...
    journal.done("commit", "round-3", tx="0x...")
    journal.entry("commit", "round-3")     # -> Entry(status="done", data={...merged...})

Each line is `{"status": "intent"|"done"|"fact", "action": ..., "key": ..., "data": {...}, "t": unix}`.
A line torn by a crash (the last one, unparseable) is dropped when the journal is opened.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from protocol.errors import ConfigError

__all__ = ["Entry", "Journal"]

Status = Literal["intent", "done", "fact"]


@dataclass
class Entry:
    """The latest state of one (action, key): its status and the data of all its lines merged."""

    action: str
    key: str
    status: Status
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def is_done(self) -> bool:
        """Whether the action completed."""
        return self.status == "done"


class Journal:
    """An append-only, fsync'd JSON-lines journal (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], Entry] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        raw = self.path.read_bytes()
        lines = raw.split(b"\n")
        good_end = 0
        offset = 0
        for i, line in enumerate(lines):
            end = offset + len(line) + (1 if i < len(lines) - 1 else 0)
            if line.strip():
                try:
                    record = json.loads(line)
                    self._apply(record)
                except (ValueError, KeyError, TypeError):
                    if i >= len(lines) - 2 and not raw[end:].strip():
                        break  # a torn last line: the crash happened while writing it
                    raise ConfigError(f"journal {self.path} is corrupt at line {i + 1}") from None
            good_end = end
            offset = end
        if good_end < len(raw):
            with open(self.path, "r+b") as f:
                f.truncate(good_end)
                f.flush()
                os.fsync(f.fileno())

    def _apply(self, record: dict[str, Any]) -> None:
        status = record["status"]
        if status not in ("intent", "done", "fact"):
            raise ValueError(status)
        key = (str(record["action"]), str(record["key"]))
        data = dict(record.get("data") or {})
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = Entry(key[0], key[1], status, data)
            return
        entry.data.update(data)
        # A fact never demotes a done action; a new intent after done starts the action again.
        if status != "fact" or entry.status == "fact":
            entry.status = status

    def _append(self, status: Status, action: str, key: str, data: dict[str, Any]) -> None:
        record = {"status": status, "action": action, "key": key, "data": data, "t": round(time.time(), 3)}
        try:
            line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"journal data for {action}/{key} is not JSON: {exc}") from None
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            self._apply(record)

    def intent(self, action: str, key: str, **data: Any) -> None:
        """Record that `action` is about to happen (before sending its transaction)."""
        self._append("intent", action, key, data)

    def done(self, action: str, key: str, **data: Any) -> None:
        """Record that `action` happened (its transaction was mined, or the chain shows it)."""
        self._append("done", action, key, data)

    def fact(self, action: str, key: str, **data: Any) -> None:
        """Record data to keep (merged into the entry; does not change a done status)."""
        self._append("fact", action, key, data)

    def entry(self, action: str, key: str) -> Entry | None:
        """The latest state of (action, key), or None if never written."""
        with self._lock:
            entry = self._entries.get((action, key))
            return None if entry is None else Entry(entry.action, entry.key, entry.status, dict(entry.data))

    def is_done(self, action: str, key: str) -> bool:
        """Whether (action, key) is done."""
        entry = self.entry(action, key)
        return entry is not None and entry.is_done

    def open_intents(self) -> list[Entry]:
        """Every entry whose last status is an intent (to reconcile after a restart)."""
        with self._lock:
            return [
                Entry(e.action, e.key, e.status, dict(e.data))
                for e in self._entries.values()
                if e.status == "intent"
            ]

    def entries(self, action: str | None = None) -> list[Entry]:
        """Every entry (of `action`), in first-written order."""
        with self._lock:
            return [
                Entry(e.action, e.key, e.status, dict(e.data))
                for e in self._entries.values()
                if action is None or e.action == action
            ]
