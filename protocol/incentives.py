"""What each validator and keeper strategy earns per round, in the task's tokens (docs/protocol.md,
"Validators, keepers and collusion"; the rows of `scripts/bench_security.py` with role validator/keeper).

The round's validator cut is `cut = reward_per_round x validator_share_bps / 10000`, split among the `V`
validators that judge the round: an honest validator that reveals verdicts agreeing with every decision and
votes the agreed model earns `cut / V`. Against it (amounts per round, `q` the chance that a round holds a
submission the honest majority rejects, `h` the chance that it holds a honeypot, `L` the lazy slash,
`S_v` the non-reveal slash, `S_n` the no-show slash):

    lazy (accepts without checking)       (1 - h)(1 - q) x cut / V  -  h x L; with committees of k draws and
                                               a weight share s, ~ (1 - h p)(1 - q p) x cut x s  -  h p L,
                                               p = P(1 <= its draws on the honeypot <= k/3)
                                               (`protocol.deterrence.lazy_profit`, exact)
    bait-aware lazy                       <= (1 - h)(1 - q) x cut / V  -  h x L   (rejects the trainers ever
                                               revealed as bait: a bait trains honestly outside the secret
                                               honeypot rounds and is revealed only once it has no honeypot
                                               left in the task, so every honeypot comes from an unrevealed
                                               bait and catches it at rate h, as it catches the plain lazy
                                               validator; rejecting a spent bait's honest work forfeits)
    copy-vote, no-vote                    0   (the vote commit closes before any vote is public: nothing to
                                               copy; a validator without a vote forfeits its share)
    wrong vote                            0   (forfeits; a vote that blocks agreement withholds the round's
                                               whole cut from every validator: it earns nothing from it)
    non-reveal                            -S_v
    colluding majority (2 of 3 seats)     cut / V + pay / 2 per member: it decides every submission and can
                                               accept its own bad work; without an AppealCourt nothing on
                                               chain answers it, the audit flags it
    colluding pair, appealed              P x (cut / V + pay / 2) - (1 - P) x (cut / V + sigma x m): with an
                                               AppealCourt every wrong decision is appealed (the victim or
                                               any honest watcher), P = the chance the pair, holding a share
                                               s of the stake, decides the appeal of K_a draws
                                               (protocol.collusion), sigma the appeal slash, m its allocation
    early finaliser (keeper)              0   (an empty round's early finalisation reverts)
    squatter (keeper of a trainer seat)   -S_n per round held, the seat freed after `max_no_shows` rounds

A strategy whose token profit is 0 still pays the gas of its transactions (`transactions`), so it loses
money; the bench's target counts that: every dishonest row must have `expected_profit < 0`, or 0 with at
least one transaction paid for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from protocol.deterrence import laziness_refusal, lazy_profit

__all__ = ["RoundTerms", "validator_and_keeper_rows"]

BPS = 10_000


@dataclass(frozen=True)
class RoundTerms:
    """A task's on-chain terms and the round's make-up, in tokens."""

    reward_per_round: float
    validator_share_bps: int
    validators: int
    """V, the validators that judge a round."""
    trainers: int
    """Accepted trainers that share the trainer pool."""
    min_validator_stake: float
    validator_slash_bps: int
    min_trainer_stake: float
    no_show_slash_bps: int
    max_no_shows: int
    honeypot_rate: float
    """h, the chance that a round holds a honeypot (0 when the initiator runs none)."""
    lazy_slash_bps: int
    """The share of its allocation a validator that ACCEPTs a revealed honeypot loses."""
    cheat_rate: float = 0.0
    """q, the chance that a round holds another submission the honest majority rejects (0: the worst case
    for deterring laziness, a network of honest trainers)."""
    appeal_draws: int = 201
    """K_a of the deployment's AppealCourt (protocol.contracts.AppealParams' default)."""
    appeal_slash_bps: int = 5_000
    """The appeal's slash of a losing validator (AppealParams' default)."""
    cartel_stake_share: float = 1 / 3
    """The colluding pair's share of the round's validator stake (two cheap seats of three)."""
    committee_draws: int = 0
    """k, committee draws per submission (0: every validator judges every submission)."""
    lazy_share: float = 0.0
    """With committees, the lazy validator's share of the round's weight (0: 1 / `validators`)."""
    submissions: int = 0
    """N, submissions a round (0: `trainers`)."""
    num_rounds: int = 1
    """R, the task's rounds (`laziness_refusal` checks the whole task: slashes compound, capped)."""

    @property
    def cut(self) -> float:
        return self.reward_per_round * self.validator_share_bps / BPS

    @property
    def share(self) -> float:
        return self.cut / self.validators

    @property
    def lazy_slash(self) -> float:
        """What one accepted honeypot costs a validator allocating the minimum."""
        return self.min_validator_stake * self.lazy_slash_bps / BPS

    @property
    def lazy(self) -> float:
        """The lazy validator's expected profit per round (`protocol.deterrence.lazy_profit`)."""
        return lazy_profit(
            cut=self.cut,
            share=self.lazy_share or 1 / self.validators,
            draws=self.committee_draws,
            submissions=self.submissions or self.trainers,
            honeypot_rate=self.honeypot_rate,
            lazy_slash=self.lazy_slash,
            cheat_rate=self.cheat_rate,
        )

    @property
    def lazy_refusal(self) -> str:
        """The line `trustrl task create` refuses these terms with, because they let laziness pay."""
        return laziness_refusal(
            cut=self.cut,
            draws=self.committee_draws,
            honeypot_rate=self.honeypot_rate,
            min_validator_stake=self.min_validator_stake,
            lazy_slash_bps=self.lazy_slash_bps,
            submissions=self.submissions or self.trainers,
            num_rounds=self.num_rounds,
        )

    @property
    def pay(self) -> float:
        """One trainer's pay: the trainer pool over the accepted trainers."""
        return (self.reward_per_round - self.cut) / self.trainers


def _appealed_pair(t: RoundTerms) -> float:
    """A member's expected profit per wrong decision when it is appealed: the pair keeps it (its share and
    half the accomplice's pay) with P(capture), else forfeits its share and loses sigma of its allocation."""
    from protocol.collusion import appeal_capture_probability

    p = appeal_capture_probability(t.appeal_draws, t.cartel_stake_share)
    loss = t.share + t.min_validator_stake * t.appeal_slash_bps / BPS
    return p * (t.share + t.pay / 2) - (1 - p) * loss
LARGE_POOL_ROW = "lazy validator, committees of 4 in a large pool"
LARGE_POOL_DRAWS = 4
"""The committee of the "lazy validator, committees of 4 in a large pool" row (the gas bound of
128-submission rounds, docs/protocol.md "Committees")."""
LARGE_POOL_SHARE = 0.01
"""That row's lazy validator's share of the pool's weight."""


def validator_and_keeper_rows(t: RoundTerms) -> list[dict[str, Any]]:
    """One row per strategy: name, role, expected profit per round (tokens), the transactions it pays gas
    for, what answers it, whether it is honest; a lazy row under terms that `trustrl task create` refuses
    carries the refusal (`refused`) and counts as answered."""
    large_pool = replace(t, committee_draws=LARGE_POOL_DRAWS, lazy_share=LARGE_POOL_SHARE)
    refused = {"lazy validator": t.lazy_refusal, "bait-aware lazy validator": t.lazy_refusal}
    refused[LARGE_POOL_ROW] = large_pool.lazy_refusal
    rows: list[tuple[str, str, str, float, int, str]] = [
        (
            "honest validator",
            "validator",
            "checks every submission, reveals, votes the agreed model",
            t.share,
            4,
            "",
        ),
        (
            "lazy validator",
            "validator",
            "accepts every submission without fetching or checking it",
            t.lazy,
            4,
            "honeypots: its ACCEPT of a revealed honeypot that the majority rejected is slashed (with "
            "committees, when it is drawn on the honeypot and holds at most a third of its draws)",
        ),
        (
            LARGE_POOL_ROW,
            "validator",
            f"a lazy validator holding {LARGE_POOL_SHARE:.0%} of the weight, committees of "
            f"{LARGE_POOL_DRAWS} draws: drawn on a honeypot with P ~ {LARGE_POOL_DRAWS} x "
            f"{LARGE_POOL_SHARE:g}",
            large_pool.lazy,
            4,
            "task creation refuses honeypots with committees under which a minimum-stake lazy validator "
            "profits (here: rate x k x lazy slash <= the validators' cut)",
        ),
        (
            "bait-aware lazy validator",
            "validator",
            "rejects the trainers ever revealed as bait, accepts everything else without checking",
            t.lazy,
            4,
            "the bait plan: baits train honestly except in secret honeypot rounds and are revealed only when "
            "spent, so the honeypots catch it at rate h (an upper bound: rejecting a spent bait forfeits)",
        ),
        (
            "copy-vote validator",
            "validator",
            "waits for another validator's model vote to copy it",
            0.0,
            2,
            "commit-reveal votes: none is public before the vote commit closes; no vote forfeits the share",
        ),
        (
            "wrong-vote validator",
            "validator",
            "votes a model hash other than the aggregate of the decided updates",
            0.0,
            4,
            "a vote other than the agreed model forfeits the share; no agreement pays no validator",
        ),
        (
            "no-vote validator",
            "validator",
            "reveals its verdicts and never votes",
            0.0,
            2,
            "a validator without a vote forfeits its share",
        ),
        (
            "non-revealing validator",
            "validator",
            "commits verdicts and never reveals them",
            -t.min_validator_stake * t.validator_slash_bps / BPS,
            1,
            "settleValidator slashes validator_slash_bps of its allocation",
        ),
        (
            "colluding majority (each of 2 of 3)",
            "validator",
            "two of three validators accept their own bad submission and reject honest ones",
            t.share + t.pay / 2,
            4,
            "nothing on chain without an AppealCourt in the deployment (next row: with one); `trustrl audit` "
            "flags the verdicts (exit 3)",
        ),
        (
            "colluding pair, appealed (2 of 3 seats, 1/3 of the stake)",
            "validator",
            "two minimum-stake validators of three decide a submission wrongly; it is appealed",
            _appealed_pair(t),
            4,
            f"an appeal (AppealCourt, K_a = {t.appeal_draws}): stake-weighted draws overturn it, the pair "
            "is slashed and forfeits its shares",
        ),
        (
            "early finaliser",
            "keeper",
            "finalises empty rounds before their deadline to end the task at its start",
            0.0,
            1,
            "an empty round cannot be finalised before its deadline until a round has had work",
        ),
        (
            "seat squatter",
            "keeper",
            "joins as a trainer to fill max_trainers and never submits",
            -t.min_trainer_stake * t.no_show_slash_bps / BPS,
            1,
            f"no-show slash each round; the seat is freed after {t.max_no_shows} rounds missed",
        ),
    ]
    out = []
    for name, role, description, profit, transactions, answered_by in rows:
        honest = name == "honest validator"
        refusal = refused.get(name, "")
        out.append(
            {
                "name": name,
                "role": role,
                "description": description,
                "expected_profit": profit,
                "transactions": transactions,
                "answered_by": answered_by,
                "honest": honest,
                "deterred": profit > 0
                if honest
                else (profit < 0 or (profit == 0 and transactions > 0) or bool(refusal)),
                "refused": refusal,
            }
        )
    return out
