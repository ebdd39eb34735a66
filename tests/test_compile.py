"""protocol.compile: the project's contracts, the build cache and compiler errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import protocol.compile as pc
from protocol.compile import CompiledContract, CompileError, compile_contracts

GOOD = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
import {Hashes} from "@openzeppelin/contracts/utils/cryptography/Hashes.sol";
import {Base} from "./lib/Base.sol";
contract Good is Base {
    function pair(bytes32 a, bytes32 b) external pure returns (bytes32) {
        return Hashes.commutativeKeccak256(a, b);
    }
}
"""
BASE = """// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;
abstract contract Base { error Oops(uint256 x); }
interface IThing { function thing() external; }
"""


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "contracts"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_project_contracts_compile(compiled: dict[str, CompiledContract]) -> None:
    probe = compiled["RevertProbe"]
    assert probe.source == "contracts/test/RevertProbe.sol"
    assert probe.bytecode.startswith("0x6080")
    assert probe.deployable
    assert {e["name"] for e in probe.abi if e["type"] == "error"} == {"TooSmall", "NotAllowed", "Bare"}
    assert compiled["MerkleHarness"].deployable


def test_temp_project_compiles_and_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contracts = _project(tmp_path, {"Good.sol": GOOD, "lib/Base.sol": BASE})
    build = tmp_path / "build"
    first = compile_contracts(contracts_dir=contracts, build_dir=build)
    assert set(first) == {"Good", "Base", "IThing"}
    assert first["Good"].deployable
    assert not first["IThing"].deployable
    assert first["Good"].source == "contracts/Good.sol"
    assert any(e.get("name") == "Oops" for e in first["Good"].abi)  # inherited errors are in the ABI
    assert len(list(build.glob("contracts-*.json"))) == 1

    calls: list[int] = []
    real = pc._run_solc

    def counting(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(pc, "_run_solc", counting)
    assert compile_contracts(contracts_dir=contracts, build_dir=build) == first
    assert calls == []  # served from the cache
    (cache,) = build.glob("contracts-*.json")
    cache.write_text("{truncated")
    assert compile_contracts(contracts_dir=contracts, build_dir=build) == first
    assert calls == [1]  # a damaged cache is rebuilt
    assert compile_contracts(force=True, contracts_dir=contracts, build_dir=build) == first
    assert calls == [1, 1]
    (contracts / "Good.sol").write_text(GOOD.replace("pair(", "pair2("))
    changed = compile_contracts(contracts_dir=contracts, build_dir=build)
    assert calls == [1, 1, 1]
    assert any(e.get("name") == "pair2" for e in changed["Good"].abi)
    assert len(list(build.glob("contracts-*.json"))) == 2
    for i in range(pc._CACHE_KEEP + 2):  # stale entries of older sources are pruned
        (build / f"contracts-old{i}.json").write_text("{}")
        os.utime(build / f"contracts-old{i}.json", (1000 + i, 1000 + i))
    (contracts / "Good.sol").write_text(GOOD)
    assert compile_contracts(contracts_dir=contracts, build_dir=build) == first
    assert calls == [1, 1, 1]  # the first version's cache was still there
    pc._write_cache(build / "contracts-newest.json", first)
    left = {p.name for p in build.glob("contracts-*.json")}
    assert len(left) == pc._CACHE_KEEP
    assert "contracts-old0.json" not in left


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    bad = "// SPDX-License-Identifier: MIT\npragma solidity 0.8.28;\ncontract Bad {\n    uint256 x = ;\n}\n"
    contracts = _project(tmp_path, {"Bad.sol": bad})
    with pytest.raises(CompileError) as info:
        compile_contracts(contracts_dir=contracts, build_dir=tmp_path / "build")
    assert len(info.value.errors) == 1
    assert info.value.errors[0].startswith(f"{contracts / 'Bad.sol'}:4:")
    assert "ParserError" in str(info.value)
    assert not (tmp_path / "build").exists()


def test_missing_import_and_duplicate_names(tmp_path: Path) -> None:
    missing = 'pragma solidity 0.8.28;\nimport "./Nope.sol";\ncontract A {}\n'
    broken = _project(tmp_path / "m", {"A.sol": missing})
    with pytest.raises(CompileError, match=r"A\.sol:2:.*Nope\.sol"):
        compile_contracts(contracts_dir=broken, build_dir=tmp_path / "b")
    twice = "pragma solidity 0.8.28;\ncontract Same {}\n"
    dup = _project(tmp_path / "d", {"One.sol": twice, "sub/Two.sol": twice})
    with pytest.raises(CompileError, match="Same is defined twice"):
        compile_contracts(contracts_dir=dup, build_dir=tmp_path / "b")


def test_no_sources_and_no_compiler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompileError, match=r"no \.sol files"):
        compile_contracts(contracts_dir=tmp_path / "empty")
    with pytest.raises(CompileError, match="does not exist"):
        compile_contracts(contracts_dir=tmp_path / "absent")
    monkeypatch.setenv("TRUSTRL_SOLC", str(tmp_path / "solc"))
    with pytest.raises(CompileError, match="TRUSTRL_SOLC"):
        pc.find_solc()
    fake = tmp_path / "solc-old"
    fake.write_text("#!/bin/sh\necho 'Version: 0.8.20+commit.a1b79de6.Linux.g++'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("TRUSTRL_SOLC", str(fake))
    (tmp_path / "empty" / "A.sol").write_text("pragma solidity ^0.8.0;\ncontract A {}\n")
    with pytest.raises(CompileError, match=r"solc 0\.8\.20; trustrl needs 0\.8\.28"):
        compile_contracts(contracts_dir=tmp_path / "empty", build_dir=tmp_path / "b")
    monkeypatch.delenv("TRUSTRL_SOLC")
    monkeypatch.setattr(pc, "REPO_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CompileError, match=r"run scripts/setup\.sh"):
        pc.find_solc()


def test_cli_lists_contracts(
    capsys: pytest.CaptureFixture[str], compiled: dict[str, CompiledContract]
) -> None:
    assert pc.main([]) == 0
    out = capsys.readouterr().out
    assert "RevertProbe" in out
    assert "contracts/test/RevertProbe.sol" in out
    assert f"{len(compiled)} contracts (solc 0.8.28" in out
