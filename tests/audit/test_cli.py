"""`trustrl audit` as a command: exit status 0 on a clean history, 3 when something disagrees, 1 with one
line on a bad task; the JSON and the HTML report are written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from audit_histories import simple_round
from chainworld import World
from typer.testing import CliRunner

from protocol.audit.cli import EXIT_DISCREPANCIES, register_audit

pytestmark = pytest.mark.chain


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for the trustrl app."""

    register_audit(app)
    return app


def test_audit_command_exit_status_and_outputs(world: World, tmp_path: Path) -> None:
    task_id = simple_round(world, reject_second=True)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(world.deployment.addresses.model_dump_json())
    out_json, out_html = tmp_path / "audit.json", tmp_path / "audit.html"
    args = ["audit", "--task", str(task_id), "--network", world.chain.rpc_url,
            "--deployment", str(deployment), "--no-reverify",
            "--json", str(out_json), "--report", str(out_html)]  # fmt: skip
    runner = CliRunner()
    clean = runner.invoke(_app(), args)
    assert clean.exit_code == 0, clean.output
    assert "NO DISCREPANCY" in clean.output
    data = json.loads(out_json.read_text())
    assert (data["discrepancies"], data["ok"], data["task"]) == ([], True, task_id)
    assert data["tasks"][0]["rounds"][0]["decisions"] == ["ACCEPT", "REJECT", "ACCEPT"]
    assert out_html.read_text().startswith("<!DOCTYPE html>")

    # Tokens sent straight to the RewardDistributor: the events do not explain them.
    world.initiator.client.transact(
        world.deployment.token.functions.transfer(world.deployment.reward_distributor.address, 1)
    )
    dirty = runner.invoke(_app(), args)
    assert dirty.exit_code == EXIT_DISCREPANCIES, dirty.output
    data = json.loads(out_json.read_text())
    assert [d["kind"] for d in data["discrepancies"]] == ["balance"]
    assert "1 DISCREPANCIES" in dirty.output

    unknown = runner.invoke(_app(), [*args[:2], "99", *args[3:]])
    assert unknown.exit_code != 0
    assert "task 99" in str(unknown.exception)
