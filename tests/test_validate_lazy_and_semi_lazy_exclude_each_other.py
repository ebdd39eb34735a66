"""`trustrl validate` takes `--lazy` or `--semi-lazy` (the two dishonest check profiles measured against
honeypots), never both: refused with one line before anything is read or sent."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from protocol.cli import app
from protocol.errors import ConfigError


def test_both_flags_are_refused_with_one_line(tmp_path: Path) -> None:
    env = {"TRUSTRL_NETWORK": str(tmp_path / "none.json"), "TRUSTRL_KEYSTORE": str(tmp_path / "none.key")}
    result = CliRunner().invoke(app, ["validate", "--task", "1", "--lazy", "--semi-lazy"], env=env)
    assert isinstance(result.exception, ConfigError), result.output
    assert "\n" not in str(result.exception)
    assert "--lazy and --semi-lazy" in str(result.exception)


def test_semi_lazy_alone_gets_past_the_flags(tmp_path: Path) -> None:
    env = {"TRUSTRL_NETWORK": str(tmp_path / "none.json"), "TRUSTRL_KEYSTORE": str(tmp_path / "none.key")}
    result = CliRunner().invoke(app, ["validate", "--task", "1", "--semi-lazy"], env=env)
    assert result.exception is not None
    assert "--network" in str(result.exception)  # stopped later: no network file here
