"""The HTML report in a real headless browser (Debian chromium): every chart renders (its colours appear
in the screenshot) and the page is self-contained (no network, no script). Plus the JSON and the
terminal summary of the same audit."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from audit_histories import rich_history
from chainworld import World
from pngread import decode

from protocol.audit.report import COLORS, render_terminal, summarize, write_html, write_json
from protocol.audit.runner import audit, open_target

if TYPE_CHECKING:
    from protocol.chain import ChainClient
    from protocol.compile import CompiledContract

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")  # fmt: skip


def _rgb(color: str) -> tuple[int, int, int]:
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


@pytest.fixture(scope="module")
def history(world: World, chain: ChainClient, compiled: dict[str, CompiledContract]) -> dict[str, Any]:
    """The audit summary of the rich history (made once for the module), restricted to its main task."""
    task_id = rich_history(world)
    target = open_target(chain.rpc_url, world.deployment.addresses, compiled=compiled)
    found = summarize(audit(target, task=task_id))
    assert found["ok"], found["discrepancies"]
    return found


@pytest.fixture
def summary(history: dict[str, Any]) -> dict[str, Any]:
    """A copy of the module's summary that a test may change."""
    return copy.deepcopy(history)


@pytest.mark.chain
def test_json_and_terminal_summaries(summary: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "audit.json"
    write_json(summary, path)
    data = json.loads(path.read_text())
    assert data["discrepancies"] == []
    assert data["verified"]["finalizations"] == 4
    (task,) = data["tasks"]
    assert [r["decisions"] for r in task["rounds"][:2]] == [
        ["ACCEPT", "REJECT", "UNAVAILABLE"],
        ["ACCEPT", "NONE"],
    ]
    assert task["status"] == "CANCELLED"
    # Every token of the deposit reached a trainer, a validator or (refunds) the initiator.
    assert (
        task["trainer_rewards"] + task["validator_rewards"] + task["refund_credits_to_initiator"]
        == task["deposit"]
    )
    from rich.console import Console

    console = Console(record=True, width=160)
    render_terminal(data, console)
    text = console.export_text()
    assert "NO DISCREPANCY" in text
    assert f"task {task['id']} participants" in text


@pytest.mark.chain
@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"
)
def test_html_report_renders_its_charts_in_chromium(summary: dict[str, Any], tmp_path: Path) -> None:
    # The ledger-only history has no model to evaluate: give the accuracy chart a curve to draw.
    (task,) = summary["tasks"]
    task["heldout_accuracy"] = [0.2 + 0.1 * k for k in range(len(task["rounds"]) + 1)]
    page = tmp_path / "report.html"
    write_html(summary, page)
    html = page.read_text()
    assert not re.search(r"<script|<link|https?://(?!www\.w3\.org/2000/svg)", html), (
        "the page must load nothing"
    )
    assert html.count("<svg") == 4

    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1200,1600", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert shot.exists(), f"chromium wrote no screenshot (exit {result.returncode}): {result.stderr[-2000:]}"
    image = decode(shot.read_bytes())
    assert (image.width, image.height) == (1200, 1600)
    colors = image.colors()
    white = colors[(255, 255, 255)] + colors[(250, 250, 250)]
    assert white < 0.97 * image.width * image.height, "the screenshot is blank"
    # Each chart draws in its own colours: bars fill many pixels, the accuracy line fewer.
    wanted = {"accuracy": 150, "accept": 400, "reject": 100, "unavailable": 100, "reward": 100, "slash": 50,
              "gas": 800}  # fmt: skip
    for name, least in wanted.items():
        assert colors[_rgb(COLORS[name])] >= least, f"{name} chart: {colors[_rgb(COLORS[name])]} pixels"
    shutil.copy(shot, tmp_path / "kept.png")
