"""The validator's watch (a deployment with an AppealCourt): it appeals, by itself, every decided decision of
a round it judged that contradicts its own checked verdict (docs/protocol.md "Appeals", "Who appeals").

Which decisions (`to_appeal`, pure): submission i of finalised round r, while `now < voteEnd_r + window`,
where this validator's verdict (revealed on chain and journalled by its own check, `verdict` facts keyed
`r:i`) and the ballot's decision disagree across the court's two sides (`contradicts`):
* it revealed ACCEPT and the decision is REJECT or UNAVAILABLE (it fetched every artifact it needed and
  found the work right, so a not-ACCEPT decision slashes a trainer whose work was served and right; and the
  jurors re-check the same seed-picked artifacts, which its own IPFS node now holds too);
* it revealed REJECT (every REJECT of `protocol.verification.verify` names a failed check) and the decision
  is ACCEPT;
and only when its verdict has a clear margin (`clear_margin`, from the `margin` and `exact` its check
journalled): a REJECT from a check no tolerance excuses or from a tolerance metric at least `CLEAR_MARGIN`
times its limit, an ACCEPT whose every tolerance metric stayed within `ACCEPT_MARGIN` of its limit. A
submission on a tolerance's edge splits honest validators on different hardware, and an appeal of it
before a court with another hardware mix would slash the honest other side. A contradiction without a
clear margin is logged once and left to an appeal by hand.
Never on its own UNAVAILABLE or NONE (it did not see the work), never REJECT against UNAVAILABLE (the same
side for the court: nothing to overturn). A decision under appeal (anyone's) or overturned is skipped; one
whose first appeal was decided without being overturned is tried once more, as attempt 1 (the contract
takes it only when that appeal missed its reveal quorum: `AlreadyAppealed` otherwise, which ends it), and
never after (`LAST_AUTO_ATTEMPT`): each attempt goes before the same committee, so a silent blocker that
starved two starves every retry, each failed attempt costs more than half a bond, and the count is a uint8.

Filing (`Watch.step`, one appeal a call): with a wallet holding the court's bond (else one log line, and
it looks again on later calls), approve the court when its allowance is short, journal the intent
(`auto-appeal`, key `r:i:attempt`) *before* `appeal`, done after. `AlreadyAppealed` and
`AppealWindowClosed` mean someone else was first or the window passed: done, not an error. Any other
revert of `appeal` (a Panic included) ends that attempt too, logged: re-raised, it would recur on every
upkeep and starve the keeper's. A restart reconciles an open intent with `appealOf` (the attempt filed:
done), else files it again under the same key; so nothing is filed twice. A round is dropped from the watch
(`auto-appeal-round` done) once its window closed, or once finalised without a clear contradiction or
without this validator's reveal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from protocol.contracts import Appeal, ProtocolClient, Verdict, unpack_verdicts
from protocol.errors import ContractRevert
from protocol.journal import Journal
from protocol.roles.base import Output

__all__ = [
    "ACCEPT_MARGIN",
    "CLEAR_MARGIN",
    "LAST_AUTO_ATTEMPT",
    "Case",
    "Standing",
    "Watch",
    "clear_margin",
    "contradicts",
    "standing_of",
    "to_appeal",
]

DONE_REVERTS = ("AlreadyAppealed", "AppealWindowClosed")
"""The court's refusals that end an auto appeal: someone appealed first, or the window closed."""

CLEAR_MARGIN = 4.0
"""How far past a tolerance's limit (a factor) a REJECT must be for the watch to appeal on it."""

ACCEPT_MARGIN = 0.5
"""The largest metric / limit of an ACCEPT the watch appeals on: every tolerance metric within half of its
limit, so another machine would have to double one to reject. Not a quarter: the quality gate's honest
worst measured is 0.095 of 0.3 (docs/protocol.md, "Bounded damage"), and an honest acceptor of such work
(a bait's good work a cartel rejected, say) must still be defended."""

LAST_AUTO_ATTEMPT = 1
"""The last attempt the watch files: a decision's first appeal, and one more after it missed its quorum."""


class Standing(StrEnum):
    """Where a decision stands at the court."""

    NONE = "none"
    """Never appealed."""
    PENDING = "pending"
    """Under appeal, not decided yet."""
    OVERTURNED = "overturned"
    """The court overturned it: nothing left to appeal."""
    STANDS = "stands"
    """An appeal was decided without overturning it: upheld, or without the reveal quorum (only then does
    the court take a new attempt)."""


@dataclass(frozen=True)
class Case:
    """One decided submission of a round as this validator's watch sees it."""

    index: int
    mine: Verdict
    """This validator's revealed and journalled verdict (NONE: it has none on this submission)."""
    decision: Verdict
    """The ballot's decision (NONE: undecided)."""
    standing: Standing
    attempt: int
    """The attempt a new appeal would be (0 when never appealed)."""

    @property
    def key(self) -> str:
        """`index:attempt`: the attempt's journal key within its round (`Watch` prefixes the round)."""
        return f"{self.index}:{self.attempt}"


def contradicts(mine: Verdict, decision: Verdict) -> bool:
    """Whether an appeal of `decision` could give this validator's checked verdict `mine` the court's side:
    ACCEPT against REJECT or UNAVAILABLE, REJECT against ACCEPT (the court's sides are ACCEPT and not-ACCEPT).
    False for an undecided decision, and whenever `mine` is UNAVAILABLE or NONE (it did not see the work)."""
    if mine == Verdict.ACCEPT:
        return decision in (Verdict.REJECT, Verdict.UNAVAILABLE)
    if mine == Verdict.REJECT:
        return decision == Verdict.ACCEPT
    return False


def clear_margin(mine: Verdict, fact: Mapping[str, object]) -> bool:
    """Whether this validator's verdict `mine`, with the `verdict` journal fact of its check, is clear of
    every tolerance's edge: a REJECT with an exact failure (`exact`) or a `margin` (the largest metric /
    limit over its tolerance checks) of at least `CLEAR_MARGIN`; an ACCEPT with a `margin` of at most
    `ACCEPT_MARGIN`. False otherwise, and for a fact without them (an older journal, an unchecked
    verdict)."""
    margin = fact.get("margin")
    ratio = float(margin) if isinstance(margin, int | float) and not isinstance(margin, bool) else None
    if mine == Verdict.REJECT:
        return fact.get("exact") is True or (ratio is not None and ratio >= CLEAR_MARGIN)
    if mine == Verdict.ACCEPT:
        return ratio is not None and ratio <= ACCEPT_MARGIN
    return False


def standing_of(appeal: Appeal) -> tuple[Standing, int]:
    """A decision's `Standing` from its `appealOf`, and the attempt a new appeal of it would be."""
    if not appeal.filed:
        return Standing.NONE, 0
    if not appeal.decided:
        return Standing.PENDING, appeal.attempt
    if appeal.overturned:
        return Standing.OVERTURNED, appeal.attempt
    return Standing.STANDS, appeal.attempt + 1


def to_appeal(
    cases: Sequence[Case], *, finalised: bool, now: int, window_end: int, tried: Collection[str]
) -> list[Case]:
    """The cases of one round this validator appeals now: the round is finalised and its window open (`now <
    window_end`), the decision `contradicts` its verdict, it stands unappealed or after a decided appeal that
    did not overturn it (`Standing.NONE`, `Standing.STANDS`) with the attempt to file at most
    `LAST_AUTO_ATTEMPT`, and this attempt's `Case.key` is not in `tried` (the attempts it already filed or
    saw refused)."""
    if not finalised or now >= window_end:
        return []
    return [
        c
        for c in cases
        if contradicts(c.mine, c.decision)
        and c.standing in (Standing.NONE, Standing.STANDS)
        and c.attempt <= LAST_AUTO_ATTEMPT
        and c.key not in tried
    ]


@dataclass
class _Round:
    """What the watch keeps of a finalised round (fixed once finalised)."""

    window_end: int
    contradicted: list[tuple[int, Verdict, Verdict]]
    """(index, mine, decision) of the contradicted decisions."""


class Watch:
    """A validator's watch over the decisions of the rounds it judged (see the module docstring). `journal`
    is the validator's: it reads its `verdict` facts and keeps its own `auto-appeal` entries there.
    `enabled` False (or a deployment without a court) makes `step` a no-op."""

    ACTION = "auto-appeal"
    ROUND = "auto-appeal-round"

    def __init__(
        self,
        proto: ProtocolClient,
        task_id: int,
        journal: Journal,
        out: Output,
        *,
        enabled: bool = True,
        tokens: Callable[[int], str] = str,
    ) -> None:
        self.proto = proto
        self.task_id = task_id
        self.journal = journal
        self.out = out
        self.enabled = enabled
        self.tokens = tokens
        self._rounds: dict[int, _Round] = {}
        self._bond: int | None = None
        self._short: set[str] = set()
        """The attempts whose bond the wallet could not post (logged once each)."""

    @property
    def active(self) -> bool:
        """Whether this watch appeals at all."""
        return self.enabled and self.proto.appeals_enabled

    def step(self) -> bool:
        """File the next due appeal; True if a transaction was sent."""
        if not self.active:
            return False
        self._reconcile()
        judged = sorted({int(e.key.split(":")[0]) for e in self.journal.entries("verdict")})
        watched = [r for r in judged if not self.journal.is_done(self.ROUND, str(r))]
        if not watched:
            return False
        finalised_before = self.proto.task_state(self.task_id).round
        now = self.proto.client.timestamp()
        for round_ in watched:
            if round_ >= finalised_before:
                break
            kept = self._round(round_)
            if kept is None:
                continue
            if now >= kept.window_end:
                self.journal.done(self.ROUND, str(round_), why="window closed")
                continue
            cases = [self._case(round_, i, mine, decision) for i, mine, decision in kept.contradicted]
            tried = {c.key for c in cases if self.journal.is_done(self.ACTION, f"{round_}:{c.key}")}
            for case in to_appeal(cases, finalised=True, now=now, window_end=kept.window_end, tried=tried):
                if self._file(round_, case):
                    return True
        return False

    def _round(self, round_: int) -> _Round | None:
        """The finalised round's contradicted decisions and window (read once); None, and the round dropped
        from the watch, when there is nothing in it to appeal."""
        kept = self._rounds.get(round_)
        if kept is not None:
            return kept
        proto, task_id = self.proto, self.task_id
        word, revealed = proto.verdicts_of(task_id, round_)
        if not revealed:
            self.journal.done(self.ROUND, str(round_), why="not revealed")
            return None
        decisions = proto.decisions_of(task_id, round_)
        revealed_verdicts = unpack_verdicts(word, len(decisions))
        contradicted = []
        for index, (shown, decision) in enumerate(zip(revealed_verdicts, decisions, strict=True)):
            entry = self.journal.entry("verdict", f"{round_}:{index}")
            mine = shown if entry is not None and int(entry.data["verdict"]) == shown else Verdict.NONE
            if not contradicts(mine, decision):
                continue
            assert entry is not None
            if clear_margin(mine, entry.data):
                contradicted.append((index, mine, decision))
            else:
                self.out.log(
                    f"not appealing the {decision.name} decision on submission {index} of round {round_}: "
                    f"this validator's {mine.name} has no clear margin over the tolerances (other hardware "
                    f"may judge otherwise); an appeal by hand: trustrl appeal --task {task_id} --round "
                    f"{round_} --index {index}"
                )
        if not contradicted:
            self.journal.done(self.ROUND, str(round_), why="no clear contradiction")
            return None
        kept = _Round(proto.appeal_window_end(task_id, round_), contradicted)
        self._rounds[round_] = kept
        return kept

    def _case(self, round_: int, index: int, mine: Verdict, decision: Verdict) -> Case:
        standing, attempt = standing_of(self.proto.appeal_of(self.task_id, round_, index))
        return Case(index, mine, decision, standing, attempt)

    def _reconcile(self) -> None:
        """Mark done every open intent whose attempt the court shows filed (by this validator or another)."""
        for entry in self.journal.open_intents():
            if entry.action != self.ACTION:
                continue
            round_, index, attempt = (int(x) for x in entry.key.split(":"))
            a = self.proto.appeal_of(self.task_id, round_, index)
            if a.filed and a.attempt >= attempt:
                self.journal.done(self.ACTION, entry.key, reconciled=True, appellant=a.appellant)

    def _file(self, round_: int, case: Case) -> bool:
        """Post the bond and appeal `case` of `round_`; True if a transaction was sent."""
        proto = self.proto
        court = proto.court
        assert court is not None
        key = f"{round_}:{case.key}"
        what = (
            f"the {case.decision.name} decision on submission {case.index} of round {round_} "
            f"(this validator's verdict: {case.mine.name})"
        )
        if self._bond is None:
            self._bond = proto.appeal_params().bond
        bond = self._bond
        balance = proto.token_balance()
        if balance < bond:
            if key not in self._short:
                self._short.add(key)
                self.out.log(
                    f"cannot appeal {what}: the bond is {self.tokens(bond)} tokens and the wallet "
                    f"{proto.address} holds {self.tokens(balance)} (it looks again until the window closes)"
                )
            return False
        allowance = int(proto.client.call(proto.token.functions.allowance(proto.address, court.address)))
        if allowance < bond:
            proto.approve(court.address, bond)
        self.journal.intent(self.ACTION, key, decision=case.decision.name, mine=case.mine.name, bond=bond)
        try:
            proto.appeal(self.task_id, round_, case.index)
        except ContractRevert as exc:
            if exc.error in DONE_REVERTS:
                self.journal.done(self.ACTION, key, refused=exc.error)
                self.out.log(f"did not appeal {what}: {exc.error}")
                return True
            if exc.error == "RoundNotFinalized":
                return False
            if exc.error == "UnknownError" and exc.tx is not None:
                # Mined and reverted, yet not when replayed on its parent block: another appeal of the
                # decision came first in that block. The next call sees it pending and reconciles the intent.
                return True
            self.journal.done(self.ACTION, key, refused=exc.error)
            self.out.log(f"did not appeal {what}: the court refused it unexpectedly ({exc}); not retried")
            return exc.tx is not None
        self.journal.done(self.ACTION, key)
        self.out.log(f"appealed {what}: bond {self.tokens(bond)} tokens")
        return True
