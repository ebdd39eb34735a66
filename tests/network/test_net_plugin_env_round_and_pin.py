"""An environment of one's own, registered by module path (`plugin_env:MaxDigit`, partial credit), on a real
network (anvil, js-ipfs, the role classes): one round is accepted, aggregated and audited with 0
discrepancies; a task whose spec pins the environment to another code hash is refused by a trainer, a
validator and the auditor, each with one line naming the package and both pins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from netharness import TINY_TASK, Net, drive, events, finished, joined

from protocol import wire
from protocol.audit.runner import audit, open_target
from protocol.contracts import Verdict
from protocol.errors import ConfigError
from protocol.ipfs import ArtifactStore
from protocol.roles.base import Output, RoleNode
from protocol.roles.initiator import InitiatorNode, TaskFile, create_task, make_initial_checkpoint
from protocol.roles.trainer import TrainerNode
from protocol.roles.validator import ValidatorNode
from protocol.wire import EnvChoice, EnvSpec
from trainer.envs import env_pin

pytestmark = [pytest.mark.chain, pytest.mark.ipfs]

ENV = "plugin_env:MaxDigit"
OTHER_HASH = "0x" + "ab" * 32


def _task(checkpoint: Path | None, description: str = "a plugin environment") -> TaskFile:
    initial: dict[str, Any] = (
        {"checkpoint": str(checkpoint)} if checkpoint is not None else TINY_TASK["initial"]
    )
    env = {"name": ENV, "params": {"length": 3}}
    data = {**TINY_TASK, "description": description, "env": env, "initial": initial}
    return TaskFile.model_validate(data)


def test_a_round_on_a_plugin_environment_is_accepted_and_audited(net: Net, tmp_path: Path) -> None:
    checkpoint = tmp_path / "initial.safetensors"
    checkpoint.write_bytes(make_initial_checkpoint(_task(None), Output("warm start")))
    task_id = create_task(net.session(17), _task(checkpoint), Output("initiator"))
    pin = env_pin(ENV)
    assert (pin.package, pin.version) == ("-", "-")  # a module on the path, in no distribution

    trainers = [TrainerNode(net.session(i), task_id, out=Output(f"trainer-{i}")) for i in (18, 19)]
    validators = [ValidatorNode(net.session(i), task_id, out=Output(f"validator-{i}")) for i in (20, 21)]
    roles: list[RoleNode] = [InitiatorNode(net.session(17), task_id), *trainers, *validators]
    assert trainers[0].view.spec.env == EnvSpec(
        name=ENV, params={"length": 3}, package="-", version="-", code_hash=pin.code_hash
    )
    drive(roles, joined([r for r in roles if not isinstance(r, InitiatorNode)]), timeout=60)
    net.warp_to_start(task_id)
    drive(roles, finished(roles), timeout=150)

    settled = events(net, net.deployment.task_escrow, "SubmissionSettled", taskId=task_id)
    assert sorted(Verdict(e["decision"]) for e in settled) == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert len(events(net, net.deployment.attestation_registry, "ModelAgreed", taskId=task_id)) == 1
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, net.deployment.addresses),
            task=task_id, store=store, gas=False, accuracy=False,
        )  # fmt: skip
    assert result.reverify is not None
    assert [c.auditor for c in result.reverify.submissions] == [Verdict.ACCEPT, Verdict.ACCEPT]
    assert result.discrepancies == [], [str(d) for d in result.discrepancies]

    # The same task with the environment pinned to other code: every node refuses it before doing anything.
    # (written as an initiator whose plugin_env.py differs would write it: its pin, not checked here)
    def other_code(self: EnvChoice) -> EnvSpec:
        return EnvSpec.model_construct(
            name=self.name, params=self.params, package="-", version="-", code_hash=OTHER_HASH
        )

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(EnvChoice, "pinned", other_code)
        patch.setattr(wire, "check_env", lambda spec, require_pin=True: None)
        other = create_task(net.session(17), _task(checkpoint, "other code"), Output("initiator"))
    expected = (
        f"environment {ENV!r} does not match the installed one: package - version - code_hash {OTHER_HASH} "
        f"expected, installed package - version - code_hash {pin.code_hash}"
    )
    for node in (
        TrainerNode(net.session(18), other, out=Output("trainer")),
        ValidatorNode(net.session(20), other, out=Output("validator")),
    ):
        with pytest.raises(ConfigError) as refused:
            node.step()
        assert expected in str(refused.value)
        assert "\n" not in str(refused.value)
        assert not node.journal.entries()  # refused before joining
    with ArtifactStore(net.ipfs.api_url, retries=1, find_timeout=1.0) as store:
        result = audit(
            open_target(net.anvil.rpc_url, net.deployment.addresses),
            task=other, store=store, gas=False, accuracy=False,
        )  # fmt: skip
    flagged = [d for d in result.discrepancies if d.subject == "task spec"]
    assert len(flagged) == 1
    assert expected in flagged[0].detail or expected in flagged[0].actual, flagged[0]
