"""The bait plan (`protocol.baits`): the rounds with a honeypot and their bait are a deterministic
pseudo-random function of the secret key and (chain, escrow, task, round); the rate is respected over many
rounds, every bait of a pool is used, the initiator's file (written once, mode 0600) and what a bait reads
from it pick the same rounds, and a missing, open, malformed or disagreeing file is refused clearly."""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

import pytest
from eth_utils.address import to_checksum_address

from protocol.baits import (
    BaitPlan,
    RoundScope,
    create_plan,
    decoy_word,
    ensure_plan,
    honeypot_salt,
    load_plan,
    schedule,
)
from protocol.errors import ConfigError

BAITS = tuple(to_checksum_address("0x" + f"{i:02x}" * 20) for i in (1, 2, 3))
SCOPE = RoundScope(31337, "0x" + "ee" * 20, 7)
ROUNDS = 4000


def plan(rate: float, key: bytes = b"k" * 32, baits: tuple[str, ...] = BAITS) -> BaitPlan:
    return BaitPlan(key, rate, baits)


def test_the_choice_is_deterministic_and_depends_on_key_and_scope() -> None:
    p = plan(0.5)
    assert schedule(p, SCOPE, 64) == schedule(plan(0.5), SCOPE, 64)
    assert schedule(p, SCOPE, 64) != schedule(plan(0.5, key=b"x" * 32), SCOPE, 64)
    assert schedule(p, SCOPE, 64) != schedule(p, RoundScope(31337, SCOPE.escrow, 8), 64)
    assert schedule(p, SCOPE, 64) != schedule(p, RoundScope(1, SCOPE.escrow, 7), 64)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5, 0.8])
def test_the_rate_is_respected_over_many_rounds(rate: float) -> None:
    picked = schedule(plan(rate), SCOPE, ROUNDS)
    sd = math.sqrt(ROUNDS * rate * (1 - rate))
    assert abs(len(picked) - ROUNDS * rate) < 5 * sd, (len(picked), ROUNDS * rate)
    per_bait = [sum(1 for b in picked.values() if b == bait) for bait in BAITS]
    third = len(picked) / 3
    assert all(abs(n - third) < 5 * math.sqrt(third) for n in per_bait), per_bait


def test_rate_zero_plants_none_and_rate_one_every_round() -> None:
    assert schedule(plan(0.0), SCOPE, 500) == {}
    assert sorted(schedule(plan(1.0), SCOPE, 500)) == list(range(500))


def test_salts_and_decoys_are_distinct_per_round_and_purpose() -> None:
    p = plan(0.5)
    words = {f(p, SCOPE, r) for f in (honeypot_salt, decoy_word) for r in range(50)}
    assert len(words) == 100
    assert {len(w) for w in words} == {32}


def test_bad_plans_are_refused() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        plan(0.5, key=b"short")
    for rate in (-0.1, 1.5, float("nan")):
        with pytest.raises(ConfigError, match="rate"):
            plan(rate)
    with pytest.raises(ConfigError, match="at least one bait"):
        plan(0.5, baits=())
    with pytest.raises(ConfigError, match="each once"):
        plan(0.5, baits=(BAITS[0], BAITS[0]))


def test_the_initiator_writes_the_file_once_with_mode_0600_and_the_bait_reads_the_same_plan(
    tmp_path: Path,
) -> None:
    path = tmp_path / "plan.json"
    written = ensure_plan(path, 0.3, list(BAITS))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    read = load_plan(path)  # what `trustrl train --bait-secret` loads
    assert read == written
    assert schedule(read, SCOPE, 200) == schedule(written, SCOPE, 200)
    assert ensure_plan(path, 0.3, list(BAITS)) == written  # a restart keeps the key
    with pytest.raises(ConfigError, match="written once"):
        create_plan(path, 0.3, list(BAITS))
    with pytest.raises(ConfigError, match=r"rate 0.3 .* the honeypot terms say rate 0.5"):
        ensure_plan(path, 0.5, list(BAITS))
    with pytest.raises(ConfigError, match="the honeypot terms say"):
        ensure_plan(path, 0.3, list(BAITS[:2]))


def test_a_missing_open_or_malformed_file_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no bait plan at .*--honeypot-secret"):
        load_plan(tmp_path / "none.json")
    path = tmp_path / "plan.json"
    create_plan(path, 0.5, list(BAITS))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"open to other users .*chmod 600"):
        load_plan(path)
    for bad in (b"not json", b'{"key": "00", "rate": 0.5, "baits": []}', b'{"rate": true}', b"[]"):
        path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, bad)
        os.close(fd)
        with pytest.raises(ConfigError, match=r"malformed|32 bytes|at least one bait"):
            load_plan(path)
    path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, json.dumps({"key": "00" * 32, "rate": 0.5, "baits": ["0x1234"]}).encode())
    os.close(fd)
    with pytest.raises(ConfigError, match="malformed"):
        load_plan(path)
