"""The validator node: verify every submission of a round it judges (all of them, or with committees only
those it was drawn for: protocol.committees), commit and reveal the verdicts, aggregate the
accepted updates into the next global checkpoint and vote its hash; plus upkeep (seeds, finalisation,
its own settlement) and claims.

Round r, once its seed is drawn (`step()` does one of these per call):
* commit phase: check the submissions one by one (with committees, only those where this validator has a
  draw; its vector carries NONE elsewhere, all NONE when it has no draw) (`protocol.verification.verify`:
  a verdict whatever their content; missing data is waited for until `unavailable_margin` before the
  deadline, then UNAVAILABLE), journalling each verdict; then journal the verdict vector and a fresh salt
  *before* `commitVerdicts`, so a restart between commit and reveal can still reveal;
* reveal phase: `revealVerdicts` with the journalled vector and salt; then publish the validation report;
* vote commit phase: aggregate the updates the chain decided to ACCEPT
  (`protocol.verification.aggregate_accepted`: canonical bytes, identical on every honest validator and the
  auditor; an update that breaks the tensor rules is left out), upload the checkpoint, journal its sha256,
  CID and a fresh salt *before* `commitModelVote` (so a restart can still reveal). With nothing to aggregate
  the round's base is voted again (the model does not change);
* vote reveal phase: `voteModel` with the journalled hash, CID and salt. The round share is paid only to a
  validator that revealed a vote for the agreed model.

Appeals (a deployment with an AppealCourt), before any other upkeep, active task or ended: for every appeal
of the task it is drawn in (`drawsOf` > 0), it re-checks the one submission with the same verification
(the round's seed and base), journals the verdict and a fresh salt *before* `commitAppeal`, and reveals it in
the reveal phase (a silent juror is slashed).

`Behaviour` lists the deviations a test (or `scripts/bench_security.py`) can give a validator; the honest
one is the default.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from enum import StrEnum
from functools import partial

from protocol.artifacts import ArtifactUnavailableError, upload_bytes, upload_json
from protocol.committees import drawn_fields
from protocol.contracts import (
    Phase,
    Role,
    TaskState,
    TaskStatus,
    Verdict,
    pack_verdicts,
    unpack_verdicts,
    verdict_commitment,
)
from protocol.display import when
from protocol.errors import ContractRevert, IpfsError
from protocol.network import Session, Submission
from protocol.roles.base import Output, ParticipantNode, top_up, unavailable_margin
from protocol.roles.settle import Keeper
from protocol.roles.watch import Watch
from protocol.verification import Checked, Fetch, TaskContext, aggregate_accepted, verify
from protocol.wire import (
    AcceptedUpdate,
    AggregateManifest,
    SubmissionVerdict,
    ValidationReport,
    bytes_to_hex,
    hex_to_bytes,
)

__all__ = ["Behaviour", "ValidatorNode", "judged"]


def judged(drawn: list[int] | None, submissions: int) -> list[int]:
    """The indices of the round's submissions a validator judges: all `submissions` without committees
    (`drawn` None), else those where it has a draw (`protocol.committees.drawn_fields`)."""
    return list(range(submissions)) if drawn is None else drawn_fields(drawn)



def appeal_key(round_: int, index: int, attempt: int) -> str:
    """The journal key of an appeal attempt: `round:index`, with `:attempt` after the first (a decision whose
    appeal missed the reveal quorum may be appealed again, before the same committee)."""
    return f"{round_}:{index}" + (f":{attempt}" if attempt else "")

class Behaviour(StrEnum):
    """How a validator behaves: honest, or one deviation (in its verdicts or in the model vote)."""

    HONEST = "honest"
    COPY_VOTE = "copy_vote"
    """Does not aggregate: waits for someone's vote to copy. Votes are hidden until the vote commit closes,
    so it finds none in time; it tries to commit the first revealed one afterwards, if it still sees the
    round before its finalisation (the contract refuses: `VoteCommitPhaseNotOpen`)."""
    WRONG_VOTE = "wrong_vote"
    """Commits and reveals a vote for a hash that is not the aggregate (its sha256 under a prefix)."""
    NO_VOTE = "no_vote"
    """Reveals its verdicts and never votes on the model."""
    NON_REVEAL = "non_reveal"
    """Commits an honest model vote and never reveals it."""
    LAZY = "lazy"
    """ACCEPTs every submission without fetching or checking it (the initiator's honeypots slash it)."""
    SEMI_LAZY = "semi_lazy"
    """Runs only the cheap checks (`protocol.verification.SEMI_LAZY`): rejects a `poison` honeypot, accepts
    the `every-step` and `every-rollout` ones (and is slashed for them)."""


class ValidatorNode(ParticipantNode):
    """A validator of one task (see the module docstring). `unavailable_margin`: seconds before the commit
    deadline at which artifacts still missing are judged UNAVAILABLE (default: a quarter of the commit
    phase, at least 3 s); while its own IPFS node does not answer at all, it waits until half that margin
    is left (it cannot tell a missing artifact from its own outage), keeping the other half to commit."""

    role_name = "validator"
    join_as = Role.VALIDATOR

    def __init__(
        self,
        session: Session,
        task_id: int,
        *,
        out: Output | None = None,
        wait: bool = True,
        unavailable_margin: float | None = None,
        behaviour: Behaviour = Behaviour.HONEST,
        auto_appeal: bool = True,
    ) -> None:
        super().__init__(session, task_id, out=out, wait=wait)
        self.behaviour = behaviour
        self.keeper = Keeper(self.view, self.journal, self.out, settle_all=False)
        # Only checked verdicts are worth a bond: a lazy or semi-lazy validator appeals nothing.
        self.watch = Watch(
            self.view.proto, task_id, self.journal, self.out, tokens=session.tokens,
            enabled=auto_appeal and behaviour is Behaviour.HONEST,
        )  # fmt: skip
        self.unavailable_margin = unavailable_margin
        self._task: TaskContext | None = None

    @property
    def fetch(self) -> Fetch:
        """`protocol.artifacts.fetch_verified` through this node's disk cache."""
        return partial(self.view.cache.fetch, self.session.store)

    @property
    def task(self) -> TaskContext:
        """The task as the verification pipeline needs it."""
        if self._task is None:
            deployment = self.session.config.deployment
            self._task = TaskContext(
                self.session.chain_id, deployment.task_escrow, self.task_id, self.view.spec, self.fetch
            )
        return self._task

    def act(self, state: TaskState, from_round: int) -> bool:
        """Do the next due action of this validator in the active task."""
        round_ = state.round
        if state.seed_drawn and round_ >= from_round and self.ballot(round_):
            return True
        if not state.seed_drawn:
            self.out.status(f"round {round_}: waiting for submissions and the seed")
        return self.upkeep()

    def pending(self) -> list[str]:
        """What this validator must still do in the current round, with deadlines: commit, reveal (else it is
        slashed), vote; and credit to claim."""
        lines = super().pending()
        view, proto = self.view, self.view.proto
        if not view.exists():
            return lines
        state, config, now = view.state(), view.config, view.now()
        round_ = state.round
        joined = self.journal.entry("join", str(int(Role.VALIDATOR)))
        first = None if joined is None or not joined.is_done else int(joined.data["from_round"])
        if state.status == TaskStatus.ACTIVE and state.seed_drawn and first is not None and round_ >= first:
            ballot = proto.ballot_of(self.task_id, round_)
            phase = proto.phase_of(self.task_id, round_)
            word, revealed = proto.verdicts_of(self.task_id, round_)
            slash = f"{config.validator_slash_bps / 100:g}% of this validator's allocation is slashed"
            vote_committed = self.journal.is_done("vote-commit", str(round_))
            vote_revealed = self.journal.is_done("vote", str(round_))
            drawn = (
                proto.drawn_multiplicities(self.task_id, round_, self.me) if phase == Phase.COMMIT else None
            )
            mine = judged(drawn, ballot.submissions)
            # Drawn for none of the round's submissions, it owes nothing (settled NotDrawn).
            if phase == Phase.COMMIT and not word and mine:
                checked = sum(1 for i in mine if self.journal.entry("verdict", f"{round_}:{i}") is not None)
                count = f"{checked} of {len(mine)} submissions"
                if drawn is not None:
                    count = (
                        f"{checked} of the {len(mine)} submissions it was drawn for, of {ballot.submissions},"
                    )
                lines.append(
                    f"round {round_}'s verdicts are not committed ({count} checked); restart before "
                    f"{when(ballot.commit_end, now)} or this validator cannot reveal and {slash}"
                )
            elif phase in (Phase.COMMIT, Phase.REVEAL) and word and not revealed:
                lines.append(
                    f"round {round_}'s verdicts are committed but not revealed; restart before "
                    f"{when(ballot.reveal_end, now)} or {slash}"
                )
            elif phase == Phase.VOTE_COMMIT and revealed and not vote_committed:
                lines.append(
                    f"round {round_}'s model vote is not committed; restart before "
                    f"{when(ballot.vote_commit_end, now)} or this validator's share of the round is forfeited"
                )
            elif phase == Phase.VOTE_REVEAL and vote_committed and not vote_revealed:
                lines.append(
                    f"round {round_}'s model vote is committed but not revealed; restart before "
                    f"{when(ballot.vote_end, now)} or this validator's share of the round is forfeited"
                )
        credit = proto.credit_of()
        if credit:
            lines.append(
                f"{self.session.tokens(credit)} tokens are credited and not claimed (no deadline: "
                "`trustrl claim`)"
            )
        return lines

    def upkeep(self) -> bool:
        """Appeal duties first (`juror`), then its own appeals of wrong decisions (`watch`), then the keeper's
        upkeep and the claim."""
        return self.juror() or self.watch.step() or self.keeper.upkeep()

    # ---------------------------------------------------------------------- appeals
    def juror(self) -> bool:
        """The next due action of this validator in the task's appeals: draw a due seed, commit or reveal
        its verdict where it is drawn; True if one was taken."""
        view, proto = self.view, self.view.proto
        if not proto.appeals_enabled:
            return False
        attempts: dict[tuple[int, int], int] = {}
        for e in view.events("appeal_court", "AppealFiled"):
            round_, index = int(e["round"]), int(e["index"])
            attempt = attempts.get((round_, index), 0)
            attempts[(round_, index)] = attempt + 1
            key = appeal_key(round_, index, attempt)
            if (
                self.journal.is_done("appeal-reveal", key)
                or self.journal.entry("appeal-skip", key) is not None
            ):
                continue
            a = proto.appeal_of(self.task_id, round_, index)
            if a.decided or a.attempt != attempt:  # decided, or replaced by a later attempt (no quorum)
                self.journal.fact("appeal-skip", key, why="decided")
                continue
            if not a.drawn:
                if proto.client.block_number() > a.seed_block:
                    return self._appeal_call(partial(proto.draw_appeal, self.task_id, round_, index))
                continue
            if proto.appeal_draws_of(self.task_id, round_, index, self.me) == 0:
                self.journal.fact("appeal-skip", key, why="not drawn")
                continue
            word, revealed = proto.juror_of(self.task_id, round_, index, self.me)
            if revealed:
                self.journal.done("appeal-reveal", key, reconciled=True)
                continue
            now = view.now()
            if word == bytes(32) and now < a.commit_end:
                earlier = [appeal_key(round_, index, k) for k in range(attempt)]
                with self.until(a.commit_end):
                    return self.commit_appeal(round_, index, a.commit_end, key, earlier)
            if word != bytes(32) and now >= a.commit_end and now < a.reveal_end:
                with self.until(a.reveal_end):
                    return self.reveal_appeal(round_, index, key)
        return False

    def _appeal_call(self, action: Callable[[], object]) -> bool:
        try:
            action()
        except ContractRevert as exc:
            if exc.error in ("AlreadyDrawn", "SeedTooEarly"):
                return False
            raise
        return True

    def _round_base(self, round_: int) -> bytes:
        """The base checkpoint hash round `round_` trained on (the initial model, or the previous round's
        next base)."""
        for e in self.view.events("task_escrow", "RoundFinalized"):
            if int(e["round"]) == round_ - 1:
                return bytes(e["nextBase"])
        return bytes(self.view.created["initialModelHash"])

    def commit_appeal(
        self, round_: int, index: int, commit_end: int, key: str, earlier: list[str] | None = None
    ) -> bool:
        """Re-check submission `index` of `round_` and commit the verdict (journalled with its salt first,
        under the appeal attempt's journal `key`). A new attempt (`earlier`: the journal keys of the attempts
        it replaces) commits the verdict journalled for the latest earlier one, with a fresh salt, when that
        verdict was ACCEPT or REJECT: the same submission, seed and base, so no re-verification (a flood of
        re-filings does not multiply the work of the jurors, which face the same committee). An earlier
        UNAVAILABLE is checked again: it says what this node could fetch then (perhaps during an outage of
        its own IPFS node), not what the submission is, and the data may be served now."""
        pending = self.journal.entry("appeal-commit", key)
        known = [e for e in (self.journal.entry("appeal-commit", k) for k in earlier or []) if e is not None]
        reused = Verdict(int(known[-1].data["verdict"])) if known else Verdict.NONE
        if pending is None and reused in (Verdict.ACCEPT, Verdict.REJECT):
            self.journal.intent("appeal-commit", key, verdict=int(reused), salt=bytes_to_hex(os.urandom(32)))
            pending = self.journal.entry("appeal-commit", key)
            assert pending is not None
        if pending is None:
            subs = [s for s in self.view.submissions(round_) if s.index == index]
            if not subs:
                return False  # the event scan lags: next poll
            seed = self.view.proto.seed_of(self.task_id, round_)
            checked = self._check(subs[0], seed, self._round_base(round_), commit_end)
            if checked is None:
                return False
            self.journal.intent(
                "appeal-commit", key, verdict=int(checked.verdict), salt=bytes_to_hex(os.urandom(32))
            )
            pending = self.journal.entry("appeal-commit", key)
            assert pending is not None
            why = f": {checked.reasons[0]}" if checked.reasons else ""
            self.out.log(f"appeal of round {round_}, submission {index}: {checked.verdict.name}{why}")
        verdict, salt = Verdict(int(pending.data["verdict"])), hex_to_bytes(str(pending.data["salt"]))
        try:
            self.view.proto.commit_appeal(self.task_id, round_, index, verdict, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyCommitted":
                self.journal.done("appeal-commit", key, reconciled=True)
                return True
            if exc.error == "CommitPhaseClosed":
                self.out.log(f"appeal of round {round_}, submission {index}: the commit phase closed")
                self.journal.fact("appeal-skip", key, why="commit closed")
                return False
            raise
        self.journal.done("appeal-commit", key)
        self.out.log(f"appeal of round {round_}, submission {index}: committed")
        return True

    def reveal_appeal(self, round_: int, index: int, key: str) -> bool:
        """Reveal the appeal verdict journalled under `key`, first topping the allocation up to the task's
        minimum as the ballot's reveal does (`top_up`: the court refuses a juror below it, `StakeTooLow`, and
        the next ballot reveal would top it up anyway, losing its exemption from the silence slash)."""
        entry = self.journal.entry("appeal-commit", key)
        if entry is None:
            self.out.status(f"appeal of round {round_}, submission {index}: the journal lost the verdict")
            return False
        verdict, salt = Verdict(int(entry.data["verdict"])), hex_to_bytes(str(entry.data["salt"]))
        if not top_up(
            self.view,
            self.view.config.min_validator_stake,
            self.journal,
            self.out,
            f"appeal of round {round_}, submission {index}",
        ):
            return False
        self.journal.intent("appeal-reveal", key)
        try:
            self.view.proto.reveal_appeal(self.task_id, round_, index, verdict, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyRevealed":
                self.journal.done("appeal-reveal", key, reconciled=True)
                return True
            if exc.error == "RevealPhaseNotOpen":
                return False
            raise
        self.journal.done("appeal-reveal", key)
        self.out.log(f"appeal of round {round_}, submission {index}: revealed {verdict.name}")
        return True

    # ---------------------------------------------------------------------- the ballot
    def ballot(self, round_: int) -> bool:
        """The due ballot action of round `round_`; True if one was taken."""
        proto = self.view.proto
        phase = proto.phase_of(self.task_id, round_)
        word, revealed = proto.client.call(proto.registry.functions.verdictsOf(self.task_id, round_, self.me))
        committed = bytes(word) != bytes(32)
        if phase == Phase.COMMIT and not committed:
            with self.until(proto.ballot_of(self.task_id, round_).commit_end):
                return self.verify_and_commit(round_)
        if phase == Phase.REVEAL and committed and not revealed:
            with self.until(proto.ballot_of(self.task_id, round_).reveal_end):
                return self.reveal(round_, bytes(word))
        copier = self.behaviour == Behaviour.COPY_VOTE and phase == Phase.CLOSED
        if revealed and (phase in (Phase.VOTE_COMMIT, Phase.VOTE_REVEAL) or copier):
            vote_committed, voted = proto.model_vote_of(self.task_id, round_, self.me)
            if self.behaviour == Behaviour.COPY_VOTE and not vote_committed:
                return self.copy_vote(round_, phase)
            if phase == Phase.VOTE_COMMIT and not vote_committed and self.behaviour != Behaviour.NO_VOTE:
                with self.until(proto.ballot_of(self.task_id, round_).vote_commit_end):
                    return self.commit_vote(round_)
            if voted and not self.journal.is_done("vote", str(round_)):
                self.journal.done("vote", str(round_), reconciled=True)
            reveals = self.behaviour != Behaviour.NON_REVEAL and not voted
            if phase == Phase.VOTE_REVEAL and vote_committed and reveals:
                with self.until(proto.ballot_of(self.task_id, round_).vote_end):
                    return self.vote(round_)
        if revealed and not self.journal.is_done("report", str(round_)):
            return self.publish_report(round_)
        if phase == Phase.COMMIT:
            self.out.status(f"round {round_}: committed; waiting for the other validators")
        elif phase == Phase.REVEAL:
            self.out.status(f"round {round_}: revealed; waiting for the other validators")
        elif phase == Phase.VOTE_COMMIT:
            self.out.status(f"round {round_}: model vote committed; waiting for the other validators")
        elif phase == Phase.VOTE_REVEAL:
            self.out.status(f"round {round_}: model vote revealed; waiting for the vote to close")
        return False

    def _margin(self) -> float:
        if self.unavailable_margin is not None:
            return self.unavailable_margin
        return unavailable_margin(self.view.config.commit_duration)

    def verify_and_commit(self, round_: int) -> bool:
        """Check the next unchecked submission, or commit once all have a verdict."""
        view, proto = self.view, self.view.proto
        pending = self.journal.entry("commit", str(round_))
        if pending is None:
            ballot = proto.ballot_of(self.task_id, round_)
            subs = view.submissions(round_)
            if len(subs) != ballot.submissions:
                return False  # the event scan lags behind the ballot: next poll
            seed = proto.seed_of(self.task_id, round_)
            base_hash = proto.base_model_of(self.task_id)
            drawn = proto.drawn_multiplicities(self.task_id, round_, self.me)
            indices = set(judged(drawn, len(subs)))
            mine = [s for s in subs if s.index in indices]
            for sub in mine:
                if self.journal.entry("verdict", f"{round_}:{sub.index}") is not None:
                    continue
                checked = self._check(sub, seed, base_hash, ballot.commit_end)
                if checked is None:
                    return False
                self._record(round_, sub, checked)
                return True
            verdicts = [
                Verdict(int(self.journal.entry("verdict", f"{round_}:{s.index}").data["verdict"]))  # type: ignore[union-attr]
                if s in mine
                else Verdict.NONE
                for s in subs
            ]
            if drawn is not None:
                self.out.log(
                    f"round {round_}: drawn for {len(mine)} of {len(subs)} submissions "
                    f"({sum(drawn)} of {ballot.draws * len(subs)} draws)"
                )
            salt = os.urandom(32)
            self.journal.intent(
                "commit",
                str(round_),
                verdicts=pack_verdicts(verdicts, allow_none=True),
                salt=bytes_to_hex(salt),
                count=len(verdicts),
            )
            pending = self.journal.entry("commit", str(round_))
            assert pending is not None
        word, salt = int(pending.data["verdicts"]), hex_to_bytes(str(pending.data["salt"]))
        try:
            proto.commit_verdicts(self.task_id, round_, word, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyCommitted":
                self.journal.done("commit", str(round_), reconciled=True)
                return True
            if exc.error == "CommitPhaseClosed":
                self.out.log(f"round {round_}: the commit phase closed before this validator committed")
                return False
            raise
        self.journal.done("commit", str(round_))
        shown = ", ".join(v.name for v in unpack_verdicts(word, int(pending.data["count"])))
        self.out.log(f"round {round_}: committed verdicts [{shown}]")
        return True

    def _check(self, sub: Submission, seed: bytes, base_hash: bytes, commit_end: int) -> Checked | None:
        """Check one submission; None while an artifact is missing and the deadline is not near."""
        from protocol.verification import FULL, SEMI_LAZY
        from trainer.diloco import load_global_checkpoint

        if self.behaviour is Behaviour.LAZY:
            return Checked(Verdict.ACCEPT, ["accepted without checking (a lazy validator)"])
        try:
            with self.out.progress(
                f"round {sub.round}: checking submission {sub.index} of {sub.trainer}", 1
            ) as adv:
                base, _ = load_global_checkpoint(
                    self.view.checkpoint(base_hash), max_bytes=self.view.spec.limits.checkpoint
                )
                profile = SEMI_LAZY if self.behaviour is Behaviour.SEMI_LAZY else FULL
                checked = verify(self.fetch, self.task, sub, seed, base_hash, base, profile)
                adv(1)
            return checked
        except ArtifactUnavailableError as exc:
            now = self.view.now()
            if now < commit_end - self._margin():
                self.out.status(
                    f"round {sub.round}: waiting for an artifact of submission {sub.index}: {exc}"
                )
                return None
            if now < commit_end - self._margin() / 2 and not self._ipfs_answers():
                # This validator's own IPFS node is away: it cannot tell whether the artifact is served.
                self.out.status(
                    f"round {sub.round}: waiting for the IPFS node to judge submission {sub.index}"
                )
                return None
            return Checked(Verdict.UNAVAILABLE, [str(exc)])

    def _ipfs_answers(self) -> bool:
        """Whether this validator's IPFS node answers at all."""
        try:
            self.session.store.version()
        except IpfsError:
            return False
        return True

    def _record(self, round_: int, sub: Submission, checked: Checked) -> None:
        rdir = self.dir / f"round-{round_}"
        rdir.mkdir(parents=True, exist_ok=True)
        item = SubmissionVerdict(
            index=sub.index,
            trainer=sub.trainer,
            verdict=checked.verdict.name,
            reasons=checked.reasons[:50],
            report=checked.report,
        )
        (rdir / f"verdict-{sub.index}.json").write_text(item.model_dump_json())
        # The margin and whether a failure was exact: the watch appeals only on a clear margin.
        self.journal.fact(
            "verdict",
            f"{round_}:{sub.index}",
            verdict=int(checked.verdict),
            reasons=checked.reasons[:3],
            margin=checked.margin,
            exact=checked.exact,
        )
        why = f": {checked.reasons[0]}" if checked.reasons else ""
        more = f" (+{len(checked.reasons) - 1} more)" if len(checked.reasons) > 1 else ""
        self.out.log(
            f"round {round_}: submission {sub.index} of {sub.trainer}: {checked.verdict.name}{why}{more}"
        )

    def reveal(self, round_: int, word: bytes) -> bool:
        """Reveal the journalled verdicts and salt."""
        proto = self.view.proto
        entry = self.journal.entry("commit", str(round_))
        if entry is None:
            self.out.status(
                f"round {round_}: committed, but the journal lost the verdicts and salt: cannot reveal"
            )
            return False
        verdicts, salt = int(entry.data["verdicts"]), hex_to_bytes(str(entry.data["salt"]))
        if not top_up(
            self.view, self.view.config.min_validator_stake, self.journal, self.out, f"round {round_}"
        ):
            return False
        if verdict_commitment(self.task_id, round_, self.me, verdicts, salt) != word:
            self.out.status(
                f"round {round_}: the journalled verdicts do not match the commitment: cannot reveal"
            )
            return False
        self.journal.intent("reveal", str(round_))
        try:
            proto.reveal_verdicts(self.task_id, round_, verdicts, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyRevealed":
                self.journal.done("reveal", str(round_), reconciled=True)
                return True
            if exc.error == "RevealPhaseNotOpen":
                return False
            raise
        self.journal.done("reveal", str(round_))
        self.out.log(f"round {round_}: revealed")
        return True

    def publish_report(self, round_: int) -> bool:
        """Upload this validator's report of the round (after the reveal: it shows the verdicts)."""
        view = self.view
        rdir = self.dir / f"round-{round_}"
        items = []
        for sub in view.submissions(round_):
            path = rdir / f"verdict-{sub.index}.json"
            if path.exists():
                items.append(SubmissionVerdict.model_validate_json(path.read_text()))
        report = ValidationReport(
            chain_id=self.session.chain_id,
            escrow=self.session.config.deployment.task_escrow,
            task_id=self.task_id,
            round=round_,
            validator=self.me,
            seed=bytes_to_hex(view.proto.seed_of(self.task_id, round_)),
            submissions=items,
        )
        ref = upload_json(self.session.store, report)
        self.journal.done("report", str(round_), cid=ref.cid)
        return True

    # ---------------------------------------------------------------------- the model vote
    def aggregate(self, round_: int) -> tuple[bytes, str]:
        """(sha256, CID) of the next global checkpoint: the accepted updates aggregated onto the base."""
        view, proto = self.view, self.view.proto
        entry = self.journal.entry("aggregate", str(round_))
        if entry is not None:
            return hex_to_bytes(str(entry.data["hash"])), str(entry.data["cid"])
        spec = view.spec
        base_hash = proto.base_model_of(self.task_id)
        decisions = proto.decisions_of(self.task_id, round_)
        accepted = [s for s in view.submissions(round_) if decisions[s.index] == Verdict.ACCEPT]
        result = aggregate_accepted(self.fetch, spec, view.checkpoint(base_hash), accepted)
        for why in result.left_out:
            self.out.log(f"round {round_}: {why}")
        if not result.used:
            model_hash, cid = base_hash, view.base_cid(base_hash)
            self.journal.fact("aggregate", str(round_), hash=bytes_to_hex(model_hash), cid=cid, accepted=[])
            return model_hash, cid
        ref = upload_bytes(self.session.store, result.checkpoint)
        view.cache.put(result.checkpoint)
        used = [
            AcceptedUpdate(
                index=sub.index,
                trainer=sub.trainer,
                work_units=sub.work_units,
                update_sha256=bytes_to_hex(digest),
            )
            for sub, digest in result.used
        ]
        manifest = AggregateManifest(
            chain_id=self.session.chain_id,
            escrow=self.session.config.deployment.task_escrow,
            task_id=self.task_id,
            round=round_,
            base_hash=bytes_to_hex(base_hash),
            accepted=sorted(used, key=lambda u: bytes.fromhex(u.trainer[2:])),
            outer=spec.outer,
            model=ref,
        )
        manifest_ref = upload_json(self.session.store, manifest)
        self.journal.fact(
            "aggregate",
            str(round_),
            hash=ref.sha256,
            cid=ref.cid,
            manifest=manifest_ref.cid,
            accepted=[u.index for u in used],
        )
        return ref.digest, ref.cid

    def commit_vote(self, round_: int) -> bool:
        """Commit to a vote for the next global checkpoint (hash, CID and a fresh salt journalled first)."""
        pending = self.journal.entry("vote-commit", str(round_))
        if pending is None:
            model_hash, cid = self.aggregate(round_)
            if self.behaviour == Behaviour.WRONG_VOTE:
                model_hash = hashlib.sha256(b"wrong vote:" + model_hash).digest()
            salt_hex = bytes_to_hex(os.urandom(32))
            self.journal.intent(
                "vote-commit", str(round_), hash=bytes_to_hex(model_hash), cid=cid, salt=salt_hex
            )
            pending = self.journal.entry("vote-commit", str(round_))
            assert pending is not None
        model_hash, cid, salt = self._journalled_vote(pending.data)
        try:
            self.view.proto.commit_model_vote(self.task_id, round_, model_hash, cid, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyCommitted":
                self.journal.done("vote-commit", str(round_), reconciled=True)
                return True
            if exc.error in ("VoteCommitPhaseNotOpen", "NotRevealed"):
                self.out.log(f"round {round_}: the model vote commit closed before this validator committed")
                return False
            raise
        self.journal.done("vote-commit", str(round_))
        self.out.log(f"round {round_}: committed a model vote")
        return True

    def vote(self, round_: int) -> bool:
        """Reveal the journalled model vote (hash, CID, salt)."""
        entry = self.journal.entry("vote-commit", str(round_))
        if entry is None:
            self.out.status(f"round {round_}: model vote committed, but the journal lost it: cannot reveal")
            return False
        model_hash, cid, salt = self._journalled_vote(entry.data)
        self.journal.intent("vote", str(round_), hash=bytes_to_hex(model_hash), cid=cid)
        try:
            self.view.proto.vote_model(self.task_id, round_, model_hash, cid, salt)
        except ContractRevert as exc:
            if exc.error == "AlreadyVoted":
                self.journal.done("vote", str(round_), reconciled=True)
                return True
            if exc.error == "VotePhaseNotOpen":
                return False
            if exc.error == "CommitmentMismatch":
                self.out.status(f"round {round_}: the journalled vote does not match the commitment")
                return False
            raise
        self.journal.done("vote", str(round_))
        self.out.log(f"round {round_}: voted model {bytes_to_hex(model_hash)[:18]}… ({cid})")
        return True

    @staticmethod
    def _journalled_vote(data: dict[str, object]) -> tuple[bytes, str, bytes]:
        return hex_to_bytes(str(data["hash"])), str(data["cid"]), hex_to_bytes(str(data["salt"]))

    def copy_vote(self, round_: int, phase: Phase) -> bool:
        """`Behaviour.COPY_VOTE`: commit the first vote another validator revealed, once one is public."""
        if self.journal.entry("copy", str(round_)) is not None:
            return False
        votes = self.view.events("attestation_registry", "ModelVoted")
        public = [e for e in votes if int(e["round"]) == round_]
        if not public:
            self.out.status(f"round {round_}: waiting for a model vote to copy ({phase.name})")
            return False
        model_hash, cid = bytes(public[0]["modelHash"]), str(public[0]["modelCid"])
        try:
            self.view.proto.commit_model_vote(self.task_id, round_, model_hash, cid, os.urandom(32))
        except ContractRevert as exc:
            self.journal.fact("copy", str(round_), refused=exc.error or str(exc))
            self.out.log(f"round {round_}: copying a model vote refused: {exc.error}")
            return True
        self.journal.fact("copy", str(round_), refused="")
        return True
