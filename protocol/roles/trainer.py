"""The trainer node: each round, train from the round's base, publish, commit, and after the seed upload the
training states the seed picked.

Round r, as `step()` sees it:
1. *prepare*: fetch the base checkpoint, run the DiLoCo inner loop (`trainer.inner.run_inner_loop`), keep
   every state theta_0..theta_H on local disk and compute its CID without uploading it; upload the signed
   rollout bundle, the pseudo-gradient and the update manifest (which lists every state's CID). The
   journal records the references before anything is submitted.
2. *submit*: `submitWork` (intent and done in the journal; `AlreadySubmitted` after a restart means the
   earlier transaction went through).
3. *states*: once the seed is drawn, upload the states it picked (`protocol.wire.required_states`),
   each checked to land under the CID the manifest committed.
4. settle its own submissions and claim its rewards (`Keeper`).

A restart resumes from the journal and the chain: a round already prepared is not retrained, a submission
on chain is not repeated, states already uploaded are not uploaded again.

`cheat` makes a dishonest trainer for demos and tests: `poison` submits -4x its real update
(`trainer.cheats.poisoned_update`: a random one where training moved no weight, so it never equals the
honest update; the chain commitments stay consistent, the update does not match base - theta_H),
`forge-rewards` claims reward 1 for every rollout, `withhold` never uploads the picked states,
`nan-state` / `inf-state` write one NaN / +inf into every tensor of theta_H and submit the matching update
base - theta_H (fp32 updates only); from the cheat library (`protocol.cheats.node_edits`): `poison-step`
negates the LM head's EOS row after step 0 and trains on honestly (the step escapes re-execution unless the
seed picks it), `fabricate` replaces one rollout per step by "answer + EOS" with reward 1 and junk proofs and
trains on it, `stealthy` does both (the demo's cheater).

`bait_plan` makes the trainer one of the initiator's honeypot baits (`protocol.baits`, `--bait-secret`): it
cheats only in the rounds the plan picks for it (each is a honeypot the initiator committed to before the
round opened) and trains honestly in every other round, like any paid trainer. With `cheat="bait"` its
defect in each honeypot round is the one the plan's PRF picks (`protocol.baits.honeypot_defect`:
`every-step` or `every-rollout`, so that a validator skipping an expensive check cannot tell which honeypot
needs it); a fixed `--cheat` from `BAIT_DEFECTS` is allowed too (`poison` was the only one before). Every
other cheat is refused (`BAIT_CHEATS`): each defect is one that an exact check, run the same by every honest
validator on any hardware, rejects every time whatever the round's data (another
cheat can pass, or crash the bait, and a honeypot its honest validators accept catches nobody). In each
honeypot round it signs its consent to the reveal (`protocol.baits.write_consent`), without which the
registry refuses to name it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any, Literal, cast

from protocol.artifacts import (
    artifact_ref,
    parse_wire,
    proof_root,
    record_from_rollout,
    sign_bundle,
    state_root,
    upload_bytes,
    upload_json,
)
from protocol.baits import BAIT_DEFECTS, BaitPlan, RoundScope, honeypot_bait, honeypot_defect, write_consent
from protocol.cheats import NODE_CHEATS, RoundWork, node_edits
from protocol.contracts import Role, TaskState, TaskStatus, WorkSubmission
from protocol.display import duration, when
from protocol.errors import ConfigError, ContractRevert
from protocol.ipfs import canonical_json
from protocol.network import Session
from protocol.roles.base import Output, ParticipantNode, top_up, unavailable_margin
from protocol.roles.settle import Keeper
from protocol.wire import (
    ArtifactRef,
    RolloutBundle,
    UpdateManifest,
    bundle_size,
    bytes_to_hex,
    hex_to_bytes,
    picked_steps,
    required_states,
    sampled_rollouts,
)

__all__ = ["BAIT_CHEATS", "CHEATS", "Cheat", "TrainerNode", "bait_cheat_error"]

Cheat = Literal[
    "poison",
    "forge-rewards",
    "withhold",
    "nan-state",
    "inf-state",
    "poison-step",
    "fabricate",
    "stealthy",
    "every-step",
    "every-rollout",
    "bait",
]
BAIT = "bait"
"""A bait's cheat that rotates its defect per honeypot by the plan (`protocol.baits.honeypot_defect`)."""
CHEATS: tuple[str, ...] = (
    "poison", "forge-rewards", "withhold", "nan-state", "inf-state", *NODE_CHEATS, BAIT
)  # fmt: skip
POISON_SCALE = -4.0
BAIT_CHEATS: tuple[str, ...] = (BAIT, *BAIT_DEFECTS)
"""The cheats a honeypot bait may commit: the plan's rotation, or one of its defects, each rejected by an
exact check every time."""


def bait_cheat_error(cheat: str | None) -> str:
    """Why a bait with cheat `cheat` (or a non-bait with `--cheat bait`) is refused."""
    if cheat == BAIT:
        return "--cheat bait rotates a honeypot bait's defects: it needs the bait plan (--bait-secret)"
    return (
        f"a bait (--bait-secret) must cheat with {' or '.join(f'--cheat {c}' for c in BAIT_CHEATS)}, not "
        f"{'no cheat' if cheat is None else repr(cheat)}: only those are rejected by an exact check "
        "every time (another can be accepted, or crash the bait, and a honeypot its honest validators "
        "accept catches nobody); --cheat bait rotates them per honeypot by the plan (--cheat poison was "
        "the only one before)"
    )


def _write_durable(path: Path, data: bytes) -> None:
    """Write a file so that it survives a crash once this returns (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class TrainerNode(ParticipantNode):
    """A trainer of one task (see the module docstring)."""

    role_name = "trainer"
    join_as = Role.TRAINER

    def __init__(
        self,
        session: Session,
        task_id: int,
        *,
        out: Output | None = None,
        wait: bool = True,
        cheat: Cheat | None = None,
        keep_rounds: int = 1,
        bait_plan: BaitPlan | None = None,
    ) -> None:
        super().__init__(session, task_id, out=out, wait=wait)
        if cheat is not None and cheat not in CHEATS:
            raise ConfigError(f"unknown cheat {cheat!r}; known: {', '.join(CHEATS)}")
        if bait_plan is not None and self.me not in bait_plan.baits:
            raise ConfigError(
                f"this trainer ({self.me}) is not one of the bait plan's baits ({', '.join(bait_plan.baits)})"
            )
        if (bait_plan is not None and cheat not in BAIT_CHEATS) or (bait_plan is None and cheat == BAIT):
            raise ConfigError(bait_cheat_error(cheat))
        self.cheat = cheat
        self.bait_plan = bait_plan
        self.keep_rounds = keep_rounds
        self.keeper = Keeper(
            self.view, self.journal, self.out, settle_all=False, draw_seeds=True, finalize=False
        )

    def cheat_in(self, round_: int) -> Cheat | None:
        """The cheat this trainer commits in `round_`: always its cheat, or for a bait only in the honeypot
        rounds its plan picks for it (with `bait`, the defect the plan picks for the round)."""
        if self.bait_plan is None:
            return self.cheat
        if honeypot_bait(self.bait_plan, self._scope, round_) != self.me:
            return None
        if self.cheat == BAIT:
            return cast(Cheat, honeypot_defect(self.bait_plan, self._scope, round_))
        return self.cheat

    @property
    def _scope(self) -> RoundScope:
        return RoundScope(self.session.chain_id, self.session.config.deployment.task_escrow, self.task_id)

    def _poison_seed(self, round_: int) -> int:
        """The seed of a poisoned update's fallback direction: distinct per (chain, escrow, task, round,
        trainer), so no two poisoned updates share their bytes."""
        scope = self._scope
        text = f"trustrl poison|{scope.chain_id}|{scope.escrow}|{scope.task_id}|{round_}|{self.me}"
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")

    # ---------------------------------------------------------------------- the loop
    def act(self, state: TaskState, from_round: int) -> bool:
        """Do the next due action of this trainer in the active task (see the module docstring)."""
        view = self.view
        round_ = state.round
        freed = [e for e in view.events("task_escrow", "SeatFreed") if str(e["trainer"]) == self.me]
        if freed:
            self.out.status(
                f"this trainer's seat was freed in round {int(freed[0]['round'])} after "
                f"{int(freed[0]['missed'])} rounds missed in a row; it takes no further part"
            )
        elif round_ >= from_round:
            if self.submitted(round_):
                if state.seed_drawn and not self.journal.is_done("states", str(round_)):
                    self.upload_states(round_)
                    return True
                self.out.status(f"round {round_}: submitted; waiting for the seed and the verdicts")
            elif not self.journal.is_done("missed", str(round_)):
                now = view.now()
                if now < state.round_start:
                    self.out.status(f"round {round_} opens {when(state.round_start, now)}")
                elif now >= state.submit_end or state.seed_block != 0:
                    self.journal.done("missed", str(round_))
                    self.out.log(f"round {round_}: the submit phase closed before this trainer submitted")
                elif not self.allocation_ok(round_):
                    pass
                elif not self.journal.is_done("prepare", str(round_)):
                    self.prepare(round_)
                    return True
                else:
                    with self.until(state.submit_end):
                        self.submit(round_)
                    return True
        else:
            self.out.status(f"joined from round {from_round}; the task is in round {round_}")
        self.cleanup(round_)
        return self.upkeep()

    def pending(self) -> list[str]:
        """What this trainer must still do, with deadlines: a prepared round to submit, picked states to
        upload (else the submission is judged UNAVAILABLE and slashed), credit to claim."""
        lines = super().pending()
        view, proto = self.view, self.view.proto
        if not view.exists():
            return lines
        state, config, now = view.state(), view.config, view.now()
        active = state.status == TaskStatus.ACTIVE
        slash = f"{config.trainer_slash_bps / 100:g}% of this trainer's allocation is slashed"
        for entry in self.journal.entries("prepare"):
            round_ = int(entry.key)
            if not active or round_ != state.round or self.journal.is_done("missed", entry.key):
                continue  # only the current round can still be saved
            on_chain = self.journal.is_done("submit", entry.key) or any(
                s.trainer == self.me for s in view.submissions(round_)
            )
            if not on_chain:
                if state.seed_block == 0 and now < state.submit_end:
                    lines.append(
                        f"round {round_} is trained but not submitted; restart before "
                        f"{when(state.submit_end, now)} to submit it (else the round's reward is lost)"
                    )
                continue
            if self.journal.is_done("states", entry.key) or self.cheat_in(round_) == "withhold":
                continue
            margin = unavailable_margin(config.commit_duration)
            if state.seed_drawn:
                deadline = int(proto.ballot_of(self.task_id, round_).commit_end - margin)
                lines.append(
                    f"round {round_}'s picked states are not uploaded; restart before {when(deadline, now)} "
                    f"or the submission is judged UNAVAILABLE and {slash}"
                )
            else:
                lines.append(
                    f"round {round_}'s picked states are not uploaded and its seed is not drawn yet; restart "
                    f"within {duration(config.commit_duration - margin)} of the seed (submissions close "
                    f"{when(state.submit_end, now)}) or the submission is judged UNAVAILABLE and {slash}"
                )
        credit = proto.credit_of()
        if credit:
            lines.append(
                f"{self.session.tokens(credit)} tokens are credited and not claimed (no deadline: "
                "`trustrl claim`)"
            )
        return lines

    def allocation_ok(self, round_: int) -> bool:
        """Whether this trainer's allocation meets what a submission needs: the task's minimum for it and
        for each of its submissions not yet settled (topping it up from free stake when it can)."""
        unsettled = self.view.proto.unsettled_of(self.task_id)
        need = self.view.config.min_trainer_stake * (1 + unsettled)
        return top_up(self.view, need, self.journal, self.out, f"round {round_}")

    def round_dir(self, round_: int) -> Path:
        """Where this trainer keeps round `round_`'s states and artifacts."""
        return self.dir / f"round-{round_}"

    # ---------------------------------------------------------------------- 1. prepare
    def prepare(self, round_: int) -> None:
        """Train round `round_` from its base and publish the bundle, update and manifest (not the states)."""
        from trainer.cheats import poisoned_update
        from trainer.diloco import encode_update, load_global_checkpoint
        from trainer.inner import run_inner_loop
        from trainer.model import model_from_config

        view, session = self.view, self.session
        spec = view.spec
        env, tokenizer, hf = view.ml()
        base_hash = view.proto.base_model_of(self.task_id)
        weights, _ = load_global_checkpoint(view.checkpoint(base_hash), max_bytes=spec.limits.checkpoint)
        model = model_from_config(hf)
        rdir = self.round_dir(round_)
        shutil.rmtree(rdir, ignore_errors=True)
        states_dir = rdir / "states"
        states_dir.mkdir(parents=True)
        refs: dict[int, ArtifactRef] = {}
        steps = spec.inner.steps
        cheat = self.cheat_in(round_)
        with self.out.progress(
            f"round {round_}: generating rollouts and training, {steps} steps", steps
        ) as advance:

            def sink(j: int, data: bytes) -> None:
                _write_durable(states_dir / f"{j}.state", data)
                refs[j] = artifact_ref(data)
                if j > 0:
                    advance(1)

            work = RoundWork(hf, spec.inner, weights, self.task_id, round_, self.me)
            edit_rollouts, edit_step = node_edits(cheat or "", env, tokenizer, work)
            result = run_inner_loop(
                model,
                tokenizer,
                env,
                weights,
                spec.inner,
                task_id=self.task_id,
                round_=round_,
                trainer=self.me,
                state_sink=sink,
                edit_rollouts=edit_rollouts,
                edit_step=edit_step,
            )
        records = [record_from_rollout(r) for r in result.rollouts]
        if cheat == "forge-rewards":
            records = [r.model_copy(update={"reward": 1.0}) for r in records]
        delta = result.delta
        if cheat in ("nan-state", "inf-state"):
            delta = self._spoil_last_state(states_dir / f"{steps}.state", refs, weights, cheat == "nan-state")
        if cheat == "poison":
            delta = poisoned_update(delta, POISON_SCALE, seed=self._poison_seed(round_))
        if cheat is not None and self.bait_plan is not None:  # a honeypot round: consent to its reveal
            registry = session.config.deployment.honeypot_registry
            write_consent(self.bait_plan, self._scope, registry, round_, session.client.account)
        update = encode_update(delta, spec.inner.compression)
        deployment = session.config.deployment
        common = {
            "chain_id": session.chain_id,
            "escrow": deployment.task_escrow,
            "task_id": self.task_id,
            "round": round_,
            "trainer": self.me,
            "base_hash": bytes_to_hex(base_hash),
        }
        bundle = sign_bundle(RolloutBundle(**common, rollouts=records), session.client.account)
        bundle_bytes = canonical_json(bundle)
        state_refs = [refs[j] for j in range(steps + 1)]
        for what, size, limit in (
            ("rollout bundle", len(bundle_bytes), spec.limits.bundle),
            ("update", len(update), spec.limits.update),
            ("training state", max(r.size for r in state_refs), spec.limits.state),
        ):
            if size > limit:
                raise ConfigError(f"this round's {what} is {size} bytes, over the task's limit of {limit}")
        with self.out.progress(f"round {round_}: uploading bundle, update and manifest", 3) as advance:
            bundle_ref = upload_bytes(session.store, bundle_bytes)
            advance(1)
            update_ref = upload_bytes(session.store, update)
            advance(1)
            manifest = UpdateManifest(
                **common,
                bundle=bundle_ref,
                update=update_ref,
                states=state_refs,
                proof_root=bytes_to_hex(proof_root(records)),
                state_root=bytes_to_hex(state_root([r.digest for r in state_refs])),
                work_units=bundle_size(spec.inner),
            )
            manifest_ref = upload_json(session.store, manifest)
            advance(1)
        _write_durable(rdir / "bundle.json", bundle_bytes)
        _write_durable(rdir / "manifest.json", canonical_json(manifest))
        rewards = [r.reward for r in records]
        self.journal.done(
            "prepare",
            str(round_),
            base_hash=bytes_to_hex(base_hash),
            bundle=bundle_ref.model_dump(),
            manifest=manifest_ref.model_dump(),
            work_units=manifest.work_units,
        )
        self.out.log(
            f"round {round_}: {len(records)} rollouts, mean reward {sum(rewards) / len(rewards):.3f}, "
            f"{result.work_units} tokens; manifest {manifest_ref.cid}"
            + (f" [cheating: {cheat}]" if cheat else "")
        )

    def _spoil_last_state(
        self, path: Path, refs: dict[int, ArtifactRef], base: dict[str, Any], nan: bool
    ) -> Any:
        """The `nan-state` / `inf-state` cheat: theta_H rewritten with a NaN / +inf as the first element of
        every tensor (and its reference updated); returns base - theta_H."""
        from trainer.checkpoint import canonical_bytes, load_tensors
        from trainer.diloco import pseudo_gradient

        tensors = {k: v.clone() for k, v in load_tensors(path.read_bytes()).items()}
        for t in tensors.values():
            t.view(-1)[0] = float("nan") if nan else float("inf")
        data = canonical_bytes(tensors)
        _write_durable(path, data)
        refs[max(refs)] = artifact_ref(data)
        return pseudo_gradient(
            base, {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        )

    def _manifest(self, round_: int) -> UpdateManifest:
        return parse_wire(
            (self.round_dir(round_) / "manifest.json").read_bytes(), UpdateManifest, "own manifest"
        )

    # ---------------------------------------------------------------------- 2. submit
    def submitted(self, round_: int) -> bool:
        """Whether this trainer's submission for `round_` is on chain (reconciling the journal)."""
        if self.journal.is_done("submit", str(round_)):
            return True
        for sub in self.view.submissions(round_):
            if sub.trainer == self.me:
                prepared = self.journal.entry("prepare", str(round_))
                if prepared is not None and prepared.data.get("manifest", {}).get("cid") != sub.update_cid:
                    self.out.log(f"round {round_}: the submission on chain is not the one prepared locally")
                self.journal.done("submit", str(round_), index=sub.index, reconciled=True)
                return True
        return False

    def submit(self, round_: int) -> None:
        """Send `submitWork` for the prepared round."""
        entry = self.journal.entry("prepare", str(round_))
        assert entry is not None
        manifest = self._manifest(round_)
        manifest_ref = ArtifactRef.model_validate(entry.data["manifest"])
        work = WorkSubmission(
            bundle_hash=manifest.bundle.digest,
            bundle_cid=manifest.bundle.cid,
            update_hash=manifest_ref.digest,
            update_cid=manifest_ref.cid,
            proof_root=hex_to_bytes(manifest.proof_root),
            state_root=hex_to_bytes(manifest.state_root),
            work_units=manifest.work_units,
        )
        self.journal.intent("submit", str(round_), manifest=manifest_ref.cid)
        try:
            index = self.view.proto.submit_work(self.task_id, round_, work)
        except ContractRevert as exc:
            if exc.error == "AlreadySubmitted":
                self.journal.done("submit", str(round_), reconciled=True)
                return
            if exc.error in ("SubmitPhaseNotOpen", "WrongRound", "NotTrainer"):
                self.journal.done("missed", str(round_), error=exc.error)
                self.out.log(f"round {round_}: too late to submit ({exc.error})")
                return
            raise
        self.journal.done("submit", str(round_), index=index)
        self.out.log(f"round {round_}: submitted as #{index}")

    # ---------------------------------------------------------------------- 3. picked states
    def upload_states(self, round_: int) -> None:
        """Upload the training states the round's seed picked (each must land under its committed CID)."""
        spec = self.view.spec
        seed = self.view.proto.seed_of(self.task_id, round_)
        manifest = self._manifest(round_)
        bundle = parse_wire(
            (self.round_dir(round_) / "bundle.json").read_bytes(), RolloutBundle, "own bundle"
        )
        sampled = sampled_rollouts(seed, self.me, spec.sample_rollouts, len(bundle.rollouts))
        steps = picked_steps(seed, self.me, spec.sample_steps, spec.inner.steps)
        needed = required_states(spec.inner, [bundle.rollouts[i].step for i in sampled], steps)
        if self.cheat_in(round_) == "withhold":
            self.journal.done("states", str(round_), uploaded=[], withheld=needed)
            self.out.log(f"round {round_}: withholding the picked states {needed} [cheating]")
            return
        missing = []
        with self.out.progress(
            f"round {round_}: uploading {len(needed)} picked states", len(needed)
        ) as advance:
            for j in needed:
                path = self.round_dir(round_) / "states" / f"{j}.state"
                try:
                    data = path.read_bytes()
                except OSError:
                    missing.append(j)
                    continue
                upload_bytes(self.session.store, data, expected=manifest.states[j])
                advance(1)
        self.journal.done(
            "states", str(round_), uploaded=[j for j in needed if j not in missing], missing=missing
        )
        if missing:
            self.out.log(f"round {round_}: states {missing} are missing on local disk: they cannot be served")
        else:
            self.out.log(f"round {round_}: uploaded the picked states {needed}")

    def cleanup(self, current_round: int) -> None:
        """Remove the local states of rounds that are over (keeping `keep_rounds` of them)."""
        for path in self.dir.glob("round-*"):
            try:
                number = int(path.name.split("-", 1)[1])
            except ValueError:
                continue
            if number < current_round - self.keep_rounds + 1 and (path / "states").exists():
                shutil.rmtree(path / "states", ignore_errors=True)
