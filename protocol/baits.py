"""The bait plan: which rounds of a task hold a real honeypot, and which of the initiator's bait trainers
submits its known-bad work there (docs/protocol.md, "Laziness does not pay").

A plan is a local file, private to the initiator and its baits (never on chain or IPFS), written once with
mode 0600: a 32-byte key, the honeypot rate h and the bait pool. The initiator's honeypot planner
(`protocol.roles.honeypots`) and each bait trainer (`trustrl train --bait-secret`) read the same file and
agree without talking, and a restart recomputes the same choices:

    u = HMAC-SHA256(key, "trustrl honeypot" | "round" | chain id | escrow | task | round)
    round r holds a honeypot  iff  u[0:8] (big-endian) < h x 2^64
    its bait                  =    baits[u[8:16] mod len(baits)]
    its defect                =    ROTATION[HMAC(key, ... "defect" ...)[0:8] mod len(ROTATION)]

So each round is a honeypot with probability h, independently, and nobody without the key can tell which
(HMAC is a PRF). The defect rotates the same way (`honeypot_defect`) over the defects only an expensive
check sees: `every-step` fails the re-execution of whichever steps the seed picks, and `every-rollout` fails
the sampling replay of whichever rollouts it picks (`protocol.cheats`), so a validator that skips both is
caught on every honeypot, like a lazy one, and one that skips either cannot know whether this honeypot
needs it (caught on half). `poison` (the update equation, the cheapest check) is not rotated: it would
catch only the fully lazy validator, which the two others catch too, and it would spare the validator that
runs the cheap checks alone on a third of the honeypots. In every other round a
bait trains honestly (it is an ordinary, paid trainer). The commitment's salt and the decoy word of a
round without a honeypot are derived from the key as well (labels "salt" and "decoy"), so a planner that
lost its journal still opens what it committed.

Consent: the HoneypotRegistry reveals a honeypot only with its bait's consent (an initiator could otherwise
name an honest trainer whose good work a cartel rejected). A bait signs `honeypot_consent_digest` of each of
its honeypot rounds when it submits there and writes the signature next to the plan file
(`<plan>.consents/<chain>-<task>-<round>.sig`, mode 0600); the planner reads it when it reveals. The signature
names the chain, the registry, the task, the round and the salt, so it opens that one honeypot only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address

from protocol.contracts import honeypot_consent_digest
from protocol.errors import ConfigError

__all__ = [
    "BAIT_DEFECTS",
    "EXPENSIVE_DEFECTS",
    "ROTATION",
    "BaitPlan",
    "RoundScope",
    "create_plan",
    "decoy_word",
    "ensure_plan",
    "honeypot_bait",
    "honeypot_defect",
    "honeypot_salt",
    "load_plan",
    "read_consent",
    "schedule",
    "write_consent",
]

_SCALE = 2**64
_MAGIC = b"trustrl honeypot"

BAIT_DEFECTS: tuple[str, ...] = ("poison", "every-step", "every-rollout")
"""The defects a bait may use, each the trainer node's `--cheat` of that name and each caught with P = 1 by
one check class every honest validator runs identically on any hardware (their margins: docs/protocol.md,
"Laziness does not pay"): the update equation, the re-execution of the picked steps, the sampling replay of
the sampled rollouts. A bait may fix one of them (`--cheat poison`) or rotate `ROTATION` (`--cheat bait`)."""
EXPENSIVE_DEFECTS: tuple[str, ...] = ("every-step", "every-rollout")
"""The defects only the expensive checks (re-execution, replay) see: the semi-lazy validator accepts them."""
ROTATION: tuple[str, ...] = EXPENSIVE_DEFECTS
"""What `--cheat bait` rotates through, one defect per expensive check class: a validator that skips k of
the len(ROTATION) classes is caught on k / len(ROTATION) of the honeypots (the semi-lazy one, skipping
both, on every one; `poison` is left out because it catches nobody the others miss)."""


@dataclass(frozen=True)
class BaitPlan:
    """The shared secret of an initiator and its baits, with the honeypot rate and the bait pool."""

    key: bytes
    rate: float
    baits: tuple[str, ...]
    path: Path | None = field(default=None, compare=False)
    """The plan's file (its baits' consents lie beside it), when it was read from or written to one."""

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ConfigError(f"a bait plan's key is 32 bytes, not {len(self.key)}")
        if not 0.0 <= self.rate <= 1.0:  # also refuses NaN
            raise ConfigError(f"a bait plan's rate is in [0, 1], not {self.rate!r}")
        if not self.baits or len(set(self.baits)) != len(self.baits):
            raise ConfigError("a bait plan names at least one bait, each once")


@dataclass(frozen=True)
class RoundScope:
    """What the PRF's input names besides the round: the chain, the deployment (its escrow) and the task."""

    chain_id: int
    escrow: str
    task_id: int


def _prf(plan: BaitPlan, label: bytes, scope: RoundScope, round_: int) -> bytes:
    message = b"|".join(
        (
            _MAGIC,
            label,
            scope.chain_id.to_bytes(32, "big"),
            bytes.fromhex(to_checksum_address(scope.escrow)[2:]),
            scope.task_id.to_bytes(32, "big"),
            round_.to_bytes(32, "big"),
        )
    )
    return hmac.new(plan.key, message, hashlib.sha256).digest()


def honeypot_bait(plan: BaitPlan, scope: RoundScope, round_: int) -> str | None:
    """The bait that submits round `round_`'s honeypot, or None when the round holds none (see the module
    docstring)."""
    u = _prf(plan, b"round", scope, round_)
    if int.from_bytes(u[:8], "big") >= round(plan.rate * _SCALE):
        return None
    return plan.baits[int.from_bytes(u[8:16], "big") % len(plan.baits)]


def honeypot_defect(plan: BaitPlan, scope: RoundScope, round_: int) -> str:
    """The defect of round `round_`'s honeypot (`ROTATION`, uniform by the PRF's label "defect",
    independent of the rounds' and the baits' choice); defined for every round, used in the honeypot ones."""
    u = _prf(plan, b"defect", scope, round_)
    return ROTATION[int.from_bytes(u[:8], "big") % len(ROTATION)]


def honeypot_salt(plan: BaitPlan, scope: RoundScope, round_: int) -> bytes:
    """The salt of round `round_`'s commitment keccak(task, round, bait, salt)."""
    return _prf(plan, b"salt", scope, round_)


def decoy_word(plan: BaitPlan, scope: RoundScope, round_: int) -> bytes:
    """The word committed in a round without a honeypot: it opens nothing and looks like a commitment."""
    return _prf(plan, b"decoy", scope, round_)


def schedule(plan: BaitPlan, scope: RoundScope, num_rounds: int) -> dict[int, str]:
    """round -> its bait, for every round of a task that holds a honeypot."""
    return {r: b for r in range(num_rounds) if (b := honeypot_bait(plan, scope, r)) is not None}


# ---------------------------------------------------------------------- the file
def _encode(plan: BaitPlan) -> bytes:
    return (
        json.dumps({"key": plan.key.hex(), "rate": plan.rate, "baits": list(plan.baits)}, indent=2) + "\n"
    ).encode()


def create_plan(
    path: Path, rate: float, baits: list[str] | tuple[str, ...], key: bytes | None = None
) -> BaitPlan:
    """Write a new plan to `path` (mode 0600, never overwriting a file), with a fresh random key unless
    `key` is given."""
    key = secrets.token_bytes(32) if key is None else key
    plan = BaitPlan(key, float(rate), tuple(to_checksum_address(b) for b in baits))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: a bait plan is written once (load it instead)") from None
    except OSError as exc:
        raise ConfigError(f"cannot create the bait plan {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(_encode(plan))
        f.flush()
        os.fsync(f.fileno())
    return BaitPlan(plan.key, plan.rate, plan.baits, Path(path))


def load_plan(path: Path) -> BaitPlan:
    """Read a plan; `ConfigError` when it is missing, unreadable, readable by others or malformed."""
    try:
        mode = os.stat(path).st_mode
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"no bait plan at {path}: the initiator's `trustrl task create --honeypot-secret {path}` writes "
            "it (the same file goes to its bait trainers)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read the bait plan {path}: {exc.strerror or exc}") from None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"the bait plan {path} is open to other users (mode {stat.S_IMODE(mode):o}): it is a secret; "
            f"chmod 600 {path}"
        )
    try:
        data = json.loads(raw)
        key = bytes.fromhex(data["key"])
        rate = data["rate"]
        baits = data["baits"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not isinstance(baits, list):
            raise TypeError("rate must be a number and baits a list")
        return BaitPlan(key, float(rate), tuple(to_checksum_address(b) for b in baits), Path(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the bait plan {path} is malformed: {exc}") from None


def ensure_plan(path: Path, rate: float, baits: list[str] | tuple[str, ...]) -> BaitPlan:
    """The initiator's plan at `path`: created from (rate, baits) when missing, else loaded and required to
    hold the same rate and baits (a plan that disagrees with the task's terms would make the planner and
    its baits pick different rounds)."""
    if not Path(path).exists():
        return create_plan(path, rate, baits)
    plan = load_plan(path)
    want = tuple(to_checksum_address(b) for b in baits)
    if (plan.rate, plan.baits) != (float(rate), want):
        raise ConfigError(
            f"the bait plan {path} holds rate {plan.rate} and baits {', '.join(plan.baits)}; the honeypot "
            f"terms say rate {rate} and baits {', '.join(want)}: use another file or the plan's terms"
        )
    return plan


# ---------------------------------------------------------------------- consents
def _consent_file(plan: BaitPlan, scope: RoundScope, round_: int) -> Path:
    if plan.path is None:
        raise ConfigError("this bait plan has no file: its baits' consents lie beside the plan's file")
    name = f"{scope.chain_id}-{scope.task_id}-{round_}.sig"
    return plan.path.with_name(plan.path.name + ".consents") / name


def write_consent(
    plan: BaitPlan, scope: RoundScope, registry: str, round_: int, account: LocalAccount
) -> bytes:
    """The bait `account` consents to the reveal of round `round_`'s honeypot: its signature of
    `honeypot_consent_digest` (EIP-191), written beside the plan (mode 0600, atomically) and returned."""
    salt = honeypot_salt(plan, scope, round_)
    digest = honeypot_consent_digest(scope.chain_id, registry, scope.task_id, round_, salt)
    signature = bytes(account.sign_message(encode_defunct(primitive=digest)).signature)
    target = _consent_file(plan, scope, round_)
    try:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(signature.hex().encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the bait's consent {target}: {exc.strerror or exc}") from None
    return signature


def read_consent(plan: BaitPlan, scope: RoundScope, round_: int) -> bytes | None:
    """The bait's consent to the reveal of round `round_`'s honeypot (65 bytes), or None while it has not
    written one (a malformed file counts as none: the registry would refuse it)."""
    try:
        raw = _consent_file(plan, scope, round_).read_text().strip()
        signature = bytes.fromhex(raw)
    except (OSError, ValueError):
        return None
    return signature if len(signature) == 65 else None
