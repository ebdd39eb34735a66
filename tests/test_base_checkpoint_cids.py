"""A base checkpoint is fetched from any CID named for its hash: the vote that reached agreement may name a
CID nobody serves (only the hash is agreed), so `TaskView.checkpoint` tries the other votes' CIDs, and every
fetch is checked against the agreed hash (a CID serving other bytes is skipped, never used)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from protocol.artifacts import ArtifactCache, ArtifactInvalidError
from protocol.errors import ConfigError, IpfsError
from protocol.network import TaskView

GOOD = b"the agreed checkpoint"
HASH = hashlib.sha256(GOOD).digest()


class _Store:
    """Serves `content` by CID; any other CID is not found."""

    def __init__(self, content: dict[str, bytes]) -> None:
        self.content = content
        self.asked: list[str] = []

    def get_bytes(self, cid: str, max_size: int) -> bytes:
        self.asked.append(cid)
        if cid not in self.content:
            raise IpfsError(f"{cid}: not found")
        return self.content[cid]


def _view(tmp_path: Path, store: _Store, agreed: list[str], voted: list[str]) -> TaskView:
    view = TaskView.__new__(TaskView)
    view.task_id = 1
    view.session = SimpleNamespace(store=store)  # type: ignore[assignment]
    view._created = {"initialModelHash": b"\0" * 32, "initialModelCid": "bafy-initial"}
    view._spec = SimpleNamespace(limits=SimpleNamespace(checkpoint=1 << 20))  # type: ignore[assignment]
    view._cache = ArtifactCache(tmp_path)
    log: dict[str, list[dict[str, Any]]] = {
        "ModelAgreed": [{"modelHash": HASH, "modelCid": c} for c in agreed],
        "ModelVoted": [{"modelHash": HASH, "modelCid": c} for c in voted]
        + [{"modelHash": b"\1" * 32, "modelCid": "bafy-other-hash"}],
    }
    view.events = lambda contract_name, event: log[event]  # type: ignore[method-assign]
    return view


def test_a_deciding_vote_with_a_dead_cid_does_not_strand_the_next_round(tmp_path: Path) -> None:
    store = _Store({"bafy-good": GOOD, "bafy-wrong": b"other bytes"})
    view = _view(tmp_path, store, agreed=["bafy-dead"], voted=["bafy-dead", "bafy-wrong", "bafy-good"])
    assert view.base_cids(HASH) == ["bafy-dead", "bafy-good", "bafy-wrong"]
    assert view.checkpoint(HASH) == GOOD
    assert store.asked == ["bafy-dead", "bafy-good"]


def test_bytes_that_do_not_match_the_hash_are_never_used(tmp_path: Path) -> None:
    store = _Store({"bafy-wrong": b"other bytes"})
    view = _view(tmp_path, store, agreed=["bafy-dead"], voted=["bafy-wrong"])
    with pytest.raises(ArtifactInvalidError, match="was committed"):  # the last CID's own failure
        view.checkpoint(HASH)
    assert "bafy-other-hash" not in store.asked


def test_a_hash_nobody_named_is_refused(tmp_path: Path) -> None:
    view = _view(tmp_path, _Store({}), agreed=[], voted=[])
    with pytest.raises(ConfigError, match="no CID known"):
        view.base_cids(b"\2" * 32)
