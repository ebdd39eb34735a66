"""ape-config.yaml: `ape compile` builds the project's contracts with ape-solidity, and ape-foundry
starts anvil for `ethereum:local:foundry`. Runs on a temporary copy of the project, with a private
HOME, so neither the tree nor ~/.ape is touched. ape is the optional `ape` extra (nothing else in the
project uses it): `scripts/setup.sh --test` installs it; without it these tests are skipped."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.compile import REPO_ROOT, CompiledContract

VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ape") is None,
    reason="eth-ape is not installed: it is the optional `ape` extra (`scripts/setup.sh --test`, or "
    "`pip install -c constraints.txt -e '.[ape]'`)",
)


@pytest.fixture(scope="module")
def ape_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ape-project")
    shutil.copytree(REPO_ROOT / "contracts", root / "contracts")
    shutil.copy(REPO_ROOT / "ape-config.yaml", root / "ape-config.yaml")
    (root / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    return root


def _env(project: Path) -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        SOLCX_BINARY_PATH=str(REPO_ROOT / ".solcx"),
        HOME=str(project / "home"),
        SEPOLIA_RPC_URL="https://sepolia.example.invalid/v1",
    )


def _run(project: Path, *args: str, timeout: float = 120) -> str:
    proc = subprocess.run(args, cwd=project, env=_env(project), capture_output=True, text=True,
                          timeout=timeout, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow  # ~7 s on an idle 2-core machine, but it compiles every contract once more
def test_ape_compile_builds_every_contract(ape_project: Path, compiled: dict[str, CompiledContract]) -> None:
    output = _run(ape_project, str(VENV_BIN / "ape"), "compile")
    assert "compiled" in output
    manifest = json.loads((ape_project / ".build" / "__local__.json").read_text())
    types = manifest["contractTypes"]
    # A contract that links to an external library (the TaskEscrow to TaskRules) needs the library's
    # address first (`compiler.solidity.add_library`): ape leaves it out of a plain compile and says so.
    linking = {name for name, c in compiled.items() if c.unlinked}
    assert linking == {"TaskEscrow"}
    assert "Unable to compile TaskEscrow - missing libraries" in output
    assert set(types) == set(compiled) - linking
    compiled = {name: c for name, c in compiled.items() if name not in linking}
    for name, ours in compiled.items():
        # Same sources and settings as protocol/compile.py: same interface, same code presence.
        assert types[name]["abi"] == ours.abi, name
        assert (len(types[name]["deploymentBytecode"].get("bytecode") or "0x") > 2) == ours.deployable, name
    (compiler,) = manifest["compilers"]
    assert compiler["version"].startswith("0.8.28")
    assert compiler["settings"]["evmVersion"] == "cancun"
    assert compiler["settings"]["optimizer"] == {"enabled": True, "runs": 200}


@pytest.mark.chain
def test_ape_networks_foundry_and_testnet(ape_project: Path) -> None:
    script = (
        "from ape import accounts, config, networks\n"
        "print('sepolia', config.get_config('node').ethereum.sepolia['uri'])\n"
        "with networks.parse_network_choice('ethereum:local:foundry') as p:\n"
        "    test = accounts.test_accounts\n"
        "    print('local', p.name, p.chain_id, len(test), test[0].address)\n"
    )
    output = _run(ape_project, sys.executable, "-c", script, timeout=60)
    assert "sepolia https://sepolia.example.invalid/v1" in output
    assert "local foundry 31337 20 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" in output
