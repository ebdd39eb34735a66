"""The wire models and configs load without torch, so CLI commands that only read a spec stay fast."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["trainer.config", "protocol.wire", "protocol.cli"])
def test_module_does_not_import_torch(module: str) -> None:
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]", f"{module} pulls in {out.stdout.strip()}"
