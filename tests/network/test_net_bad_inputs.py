"""Bad inputs give a clear error or verdict and lose nothing: corrupted, too large and missing artifacts in
submissions, a malformed task spec on IPFS, a spec that disagrees with the chain, and an RPC that goes away
in the middle of a round."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from typing import Any

import pytest
from netharness import Net, drive, events, finished, joined

from protocol.artifacts import artifact_ref, upload_bytes, upload_json
from protocol.contracts import Role, TaskParams, Verdict, WorkSubmission
from protocol.errors import ChainError, ConfigError
from protocol.journal import Journal
from protocol.network import TaskView
from protocol.roles.base import Output, RoleNode, ensure_joined
from protocol.roles.initiator import InitiatorNode
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.wire import UpdateManifest, bytes_to_hex

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]


def _manifest(view: TaskView, trainer: str, bundle_data: bytes, **overrides: Any) -> UpdateManifest:
    """A well-formed manifest of `trainer` for round 0 naming `bundle_data` as its bundle."""
    from protocol.artifacts import state_root

    spec = view.spec
    states = [artifact_ref(f"state {j} of {trainer}".encode()) for j in range(spec.inner.steps + 1)]
    fields: dict[str, Any] = {
        "chain_id": view.session.chain_id,
        "escrow": view.session.config.deployment.task_escrow,
        "task_id": view.task_id,
        "round": 0,
        "trainer": trainer,
        "base_hash": bytes_to_hex(view.proto.base_model_of(view.task_id)),
        "bundle": artifact_ref(bundle_data),
        "update": artifact_ref(b"update of " + trainer.encode()),
        "states": states,
        "proof_root": bytes_to_hex(hashlib.sha256(b"proofs").digest()),
        "state_root": bytes_to_hex(state_root([s.digest for s in states])),
        "work_units": 7,
    }
    fields.update(overrides)
    return UpdateManifest(**fields)


def _submit(view: TaskView, manifest: UpdateManifest, manifest_hash: bytes, manifest_cid: str) -> None:
    view.proto.submit_work(
        view.task_id,
        0,
        WorkSubmission(
            bundle_hash=manifest.bundle.digest,
            bundle_cid=manifest.bundle.cid,
            update_hash=manifest_hash,
            update_cid=manifest_cid,
            proof_root=bytes.fromhex(manifest.proof_root[2:]),
            state_root=bytes.fromhex(manifest.state_root[2:]),
            work_units=manifest.work_units,
        ),
    )


@pytest.mark.slow
def test_corrupted_oversized_and_missing_artifacts(net: Net) -> None:
    task_id = net.create_task(17, commit_duration=20)
    honest = TrainerNode(net.session(18), task_id, out=Output("honest"))
    validators = [
        ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}"), unavailable_margin=14)
        for i in (19, 20)
    ]
    bad = {
        name: TaskView(net.session(i), task_id)
        for name, i in (("corrupt", 21), ("large", 22), ("missing", 23))
    }
    for view in bad.values():
        ensure_joined(view, Role.TRAINER, Journal(net.home / f"{view.proto.address}.jsonl"), Output("bad"))
    roles: list[RoleNode] = [honest, *validators]
    drive(roles, joined(roles), timeout=60)
    net.warp_to_start(task_id)
    store = net.session(18).store

    # Corrupted: the manifest on IPFS is not the one whose hash was committed.
    view = bad["corrupt"]
    manifest = _manifest(view, view.proto.address, b"a bundle")
    ref = upload_json(store, manifest)
    _submit(view, manifest, hashlib.sha256(b"what was really committed").digest(), ref.cid)
    # Too large: the bundle the manifest names is over the task's bundle limit (refused before download).
    view = bad["large"]
    big = os.urandom(view.spec.limits.bundle + 1000)
    upload_bytes(store, big)
    manifest = _manifest(view, view.proto.address, big)
    ref = upload_json(store, manifest)
    _submit(view, manifest, ref.digest, ref.cid)
    # Missing: the manifest's CID exists nowhere.
    view = bad["missing"]
    manifest = _manifest(view, view.proto.address, b"never uploaded either")
    never = artifact_ref(b"never uploaded " + os.urandom(8))
    _submit(view, manifest, never.digest, never.cid)

    keeper = InitiatorNode(net.session(17), task_id)
    roles = [honest, *validators, keeper]
    drive(roles, finished(roles), timeout=150)

    settled = {
        e["trainer"]: e for e in events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    }
    assert Verdict(settled[honest.me]["decision"]) == Verdict.ACCEPT
    assert settled[honest.me]["reward"] > 0
    assert Verdict(settled[bad["corrupt"].proto.address]["decision"]) == Verdict.REJECT
    assert Verdict(settled[bad["large"].proto.address]["decision"]) == Verdict.REJECT
    assert Verdict(settled[bad["missing"].proto.address]["decision"]) == Verdict.UNAVAILABLE
    assert all(settled[v.proto.address]["slashed"] > 0 for v in bad.values())
    reasons = {}
    for path in (validators[0].dir / "round-0").glob("verdict-*.json"):
        item = json.loads(path.read_text())
        reasons[item["trainer"]] = " ".join(item["reasons"])
    assert "was committed" in reasons[bad["corrupt"].proto.address]
    assert "over the limit" in reasons[bad["large"].proto.address]
    assert "not found" in reasons[bad["missing"].proto.address]
    assert net.session(17).proto.funds_of(task_id) == (0, 0)


def test_malformed_spec_and_mismatched_spec_are_refused(net: Net) -> None:
    session = net.session(1)
    proto = session.proto
    checkpoint = upload_bytes(session.store, b"not really a checkpoint")

    def create(spec_bytes: bytes, sample_rollouts: int) -> int:
        spec = upload_bytes(session.store, spec_bytes)
        params = TaskParams(
            spec_hash=spec.digest,
            spec_cid=spec.cid,
            initial_model_hash=checkpoint.digest,
            initial_model_cid=checkpoint.cid,
            num_rounds=1,
            reward_per_round=10**18,
            validator_share_bps=0,
            min_trainer_stake=0,
            min_validator_stake=0,
            quorum=1,
            max_trainers=2,
            max_validators=2,
            submit_duration=60,
            commit_duration=60,
            reveal_duration=60,
            vote_duration=60,
            seed_delay=1,
            sample_rollouts=sample_rollouts,
            sample_steps=1,
            trainer_slash_bps=0,
            validator_slash_bps=0,
            max_empty_rounds=0,
            start_time=session.client.timestamp() + 600,
        )
        proto.approve(proto.escrow.address, params.deposit)
        return proto.create_task(params)

    malformed = create(b'{"version": 1, "env": {"name": "addition"}, "surprise": true}', 2)
    with pytest.raises(ConfigError, match=f"refusing task {malformed}: .*not a valid TaskSpec"):
        _ = TaskView(session, malformed).spec
    # A well-formed spec whose sample sizes differ from the task's on-chain parameters.
    good = TaskView(session, net.create_task(2)).spec
    mismatched = create(json.dumps(good.model_dump(mode="json")).encode(), good.sample_rollouts + 1)
    n = good.sample_rollouts
    with pytest.raises(ConfigError, match=f"sample_rollouts is {n} in the spec, {n + 1} on chain"):
        _ = TaskView(session, mismatched).spec
    # Through the CLI: one line, no traceback, exit status 1.
    result = net.cli("validate", "--task", str(malformed), *net.common(3, net.home))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: refusing task"), result.stderr
    assert "Traceback" not in result.stderr + result.stdout


class Switch:
    """A TCP proxy to anvil that can be turned off (open connections cut, new ones refused) and on again."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.on = threading.Event()
        self.on.set()
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def off(self) -> None:
        self.on.clear()
        with self.lock:
            for s in self.open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self.open.clear()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            if not self.on.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):  # no Nagle delay on the small JSON-RPC messages
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()


def test_rpc_that_goes_away_mid_round(net: Net) -> None:
    from protocol.network import NetworkConfig, connect

    task_id = net.create_task(2)
    switch = Switch(net.anvil.port)
    config = NetworkConfig.model_validate(
        {**net.config.model_dump(), "rpc_url": f"http://127.0.0.1:{switch.port}"}
    )
    sessions = [connect(config, net.anvil.accounts[i][1], net.home) for i in (3, 4, 5, 6)]
    trainers = [TrainerNode(s, task_id, out=Output(f"trainer-{i}")) for i, s in enumerate(sessions[:2])]
    validators = [ValidatorNode(s, task_id, out=Output(f"validator-{i}")) for i, s in enumerate(sessions[2:])]
    roles: list[RoleNode] = [*trainers, *validators]
    drive(roles, joined(roles), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, lambda: all(t.journal.is_done("submit", "0") for t in trainers), timeout=60)
    switch.off()  # the RPC goes away
    errors: list[Exception] = []
    drive(roles, lambda: len(errors) >= len(roles), timeout=60, on_error=lambda r, e: errors.append(e))
    assert all(isinstance(e, ChainError) and "unreachable" in str(e) for e in errors), errors
    switch.on.set()  # and comes back
    roles.append(InitiatorNode(net.session(2), task_id))
    drive(roles, finished(roles), timeout=120)
    settled = events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    assert sorted(Verdict(e["decision"]) for e in settled) == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert len(events(net, net.deployment.task_escrow, "WorkSubmitted", taskId=task_id)) == 2
    switch.server.close()
