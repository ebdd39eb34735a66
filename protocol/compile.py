"""Compile the project's Solidity sources with py-solc-x and cache the result.

Every `contracts/**/*.sol` file (test contracts in `contracts/test/` included) is compiled in one
standard-JSON run with solc 0.8.28, the optimizer on (200 runs) and EVM version `cancun`.
`@openzeppelin/` imports resolve to the npm package in `node_modules/`. The compiler is the `solc`
executable that `scripts/setup.sh` puts into `.venv/bin` (a native-CLI wrapper over solcjs), or
`$TRUSTRL_SOLC`, or a `solc` on PATH.

The output (ABI and creation bytecode per contract) is cached in
`build/contracts-<key>.json`, where the key hashes every source, the settings, the compiler version
and the OpenZeppelin version, so a test session compiles only when something changed.

    python -m protocol.compile [--force]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ProtocolError

__all__ = [
    "REPO_ROOT",
    "SOLC_VERSION",
    "CompileError",
    "CompiledContract",
    "compile_contracts",
    "find_solc",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
SOLC_VERSION = "0.8.28"
OPTIMIZER_RUNS = 200
EVM_VERSION = "cancun"
# Relative to the base path (the repo root): absolute paths would end up in the bytecode's
# metadata hash and make the bytecode differ between checkouts.
OZ_REMAPPING = "@openzeppelin/=node_modules/@openzeppelin/"
_CACHE_FORMAT = 1
_CACHE_KEEP = 6  # newest cache files kept in build/; older ones belong to sources that changed since


class CompileError(ProtocolError):
    """Solidity sources do not compile, or no usable compiler was found.

    `errors` lists one "file:line:col: message" entry per compiler error.
    """

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = list(errors or [])
        super().__init__(message)


@dataclass(frozen=True)
class CompiledContract:
    """One compiled contract: its name, ABI, creation bytecode (0x-hex; "0x" for interfaces and
    abstract contracts) and the source file it came from (relative to the contracts' parent dir)."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    source: str

    @property
    def deployable(self) -> bool:
        """Whether the contract has creation code (interfaces and abstract contracts have none)."""
        return len(self.bytecode) > 2

    @property
    def qualified_name(self) -> str:
        """`source:Name`, how solc names the contract (and the libraries a bytecode links to)."""
        return f"{self.source}:{self.name}"

    @property
    def unlinked(self) -> bool:
        """Whether the bytecode still holds the placeholder of an external library's address."""
        return "__$" in self.bytecode

    def linked(self, libraries: Mapping[str, str]) -> CompiledContract:
        """This contract with each library of `libraries` (qualified name -> address) linked: solc's
        placeholder `__$` + the first 34 hex digits of keccak256(qualified name) + `$__` replaced by the
        library's address."""
        from eth_utils.crypto import keccak

        bytecode = self.bytecode
        for name, address in libraries.items():
            placeholder = "__$" + keccak(text=name).hex()[:34] + "$__"
            bytecode = bytecode.replace(placeholder, address.lower().removeprefix("0x"))
        return CompiledContract(self.name, self.abi, bytecode, self.source)


def find_solc() -> Path:
    """Locate the solc executable: `$TRUSTRL_SOLC`, `<repo>/.venv/bin/solc`, then `solc` on PATH."""
    env = os.environ.get("TRUSTRL_SOLC")
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise CompileError(f"$TRUSTRL_SOLC={env} is not an executable file")
        return path
    venv = REPO_ROOT / ".venv" / "bin" / "solc"
    if venv.is_file() and os.access(venv, os.X_OK):
        return venv
    found = shutil.which("solc")
    if found:
        return Path(found)
    raise CompileError(
        f"no solc compiler found ({venv} is missing and there is no solc on PATH): run scripts/setup.sh"
    )


def _settings() -> dict[str, Any]:
    return {
        "remappings": [OZ_REMAPPING],
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "evmVersion": EVM_VERSION,
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
    }


def _collect_sources(contracts_dir: Path) -> dict[str, Path]:
    """Map source unit names (`contracts/<relative path>`) to files, sorted for a stable key."""
    if not contracts_dir.is_dir():
        raise CompileError(f"contracts directory {contracts_dir} does not exist")
    files = sorted(p for p in contracts_dir.rglob("*.sol") if p.is_file())
    return {f"contracts/{p.relative_to(contracts_dir).as_posix()}": p for p in files}


def _oz_version() -> str:
    package = REPO_ROOT / "node_modules" / "@openzeppelin" / "contracts" / "package.json"
    try:
        return str(json.loads(package.read_text()).get("version", "?"))
    except (OSError, ValueError):
        return "missing"


def _cache_key(contents: Mapping[str, str], settings: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    header = {"format": _CACHE_FORMAT, "solc": SOLC_VERSION, "oz": _oz_version(), "settings": settings}
    digest.update(json.dumps(header, sort_keys=True).encode())
    for name, text in contents.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(text.encode()).digest())
    return digest.hexdigest()[:16]


def _line_col(text: str, offset: int) -> tuple[int, int]:
    before = text[: max(0, offset)]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _format_errors(
    errors: list[dict[str, Any]], contents: Mapping[str, str], files: Mapping[str, Path]
) -> list[str]:
    out = []
    for err in errors:
        if err.get("severity") != "error":
            continue
        message = str(err.get("message", err.get("formattedMessage", "unknown error")))
        kind = str(err.get("type", "Error"))
        loc = err.get("sourceLocation") or {}
        unit = str(loc.get("file", ""))
        if unit:
            where = str(files.get(unit, unit))
            text = contents.get(unit)
            if text is None:
                path = REPO_ROOT / unit
                text = path.read_text(errors="replace") if path.is_file() else ""
            line, col = _line_col(text, int(loc.get("start", 0)))
            out.append(f"{where}:{line}:{col}: {kind}: {message}")
        else:
            out.append(f"{kind}: {message}")
    return out


@functools.lru_cache(maxsize=4)
def _solc_version(solc: str, mtime_ns: int) -> str:
    """The compiler's version, asked once per executable (and modification time) per process."""
    from solcx.exceptions import SolcError
    from solcx.wrapper import get_solc_version

    try:
        return str(get_solc_version(solc))
    except (OSError, ValueError, SolcError) as exc:
        raise CompileError(f"{solc} does not answer --version like solc: {exc}") from None


def _run_solc(
    sources: Mapping[str, str], files: Mapping[str, Path], settings: dict[str, Any]
) -> dict[str, Any]:
    import solcx
    from solcx.exceptions import SolcError

    solc = find_solc()
    version = _solc_version(str(solc), solc.stat().st_mtime_ns)
    if version != SOLC_VERSION:
        raise CompileError(
            f"{solc} is solc {version}; trustrl needs {SOLC_VERSION} "
            "(run scripts/setup.sh or set $TRUSTRL_SOLC)"
        )
    standard_input = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": settings,
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(
            standard_input,
            solc_binary=solc,
            base_path=REPO_ROOT,
            allow_paths=[REPO_ROOT, REPO_ROOT / "node_modules"],
            allow_empty=True,
        )
    except SolcError as exc:
        errors: list[dict[str, Any]] = list(exc.error_dict or [])
        lines = _format_errors(errors, sources, files) if errors else [str(exc.message).strip()]
        if not lines:
            lines = [f"solc failed (exit {exc.return_code}): {(exc.stderr_data or '').strip()}"]
        raise CompileError("Solidity compilation failed:\n  " + "\n  ".join(lines), lines) from None
    except (OSError, ValueError) as exc:
        raise CompileError(f"running {solc} failed: {exc}") from None
    return output


def _extract(output: Mapping[str, Any], units: Mapping[str, Path]) -> dict[str, CompiledContract]:
    result: dict[str, CompiledContract] = {}
    for unit in units:
        for name, data in (output.get("contracts", {}).get(unit) or {}).items():
            if name in result:
                raise CompileError(
                    f"contract name {name} is defined twice ({result[name].source} and {unit}); "
                    "contract names must be unique"
                )
            bytecode = str(data.get("evm", {}).get("bytecode", {}).get("object", ""))
            result[name] = CompiledContract(
                name=name, abi=list(data.get("abi", [])), bytecode="0x" + bytecode, source=unit
            )
    return result


def _load_cache(path: Path) -> dict[str, CompiledContract] | None:
    try:
        data = json.loads(path.read_text())
        return {
            name: CompiledContract(name=name, abi=c["abi"], bytecode=c["bytecode"], source=c["source"])
            for name, c in data["contracts"].items()
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged cache: recompile


def _write_cache(path: Path, contracts: Mapping[str, CompiledContract]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "contracts": {
            c.name: {"abi": c.abi, "bytecode": c.bytecode, "source": c.source} for c in contracts.values()
        }
    }
    # Write then rename, so concurrent test sessions never read a half-written cache.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".contracts-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _prune_cache(path.parent)


def _prune_cache(build_dir: Path) -> None:
    def mtime(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:
            return 0.0

    entries = sorted(build_dir.glob("contracts-*.json"), key=mtime, reverse=True)
    for old in entries[_CACHE_KEEP:]:
        with contextlib.suppress(OSError):  # another session may have removed it first
            old.unlink()


def compile_contracts(
    force: bool = False, *, contracts_dir: Path | None = None, build_dir: Path | None = None
) -> dict[str, CompiledContract]:
    """Compile every `*.sol` under `contracts_dir` (default `<repo>/contracts`) and return the
    contracts by name; served from `build_dir` (default `<repo>/build`) when nothing changed.

    `force` recompiles even when a cache entry exists. Raises `CompileError` with "file:line:col:
    message" entries when the sources do not compile or no solc is available.
    """
    contracts_dir = (contracts_dir or REPO_ROOT / "contracts").resolve()
    build_dir = (build_dir or REPO_ROOT / "build").resolve()
    files = _collect_sources(contracts_dir)
    if not files:
        raise CompileError(f"no .sol files under {contracts_dir}")
    sources = {unit: path.read_text() for unit, path in files.items()}
    settings = _settings()
    cache = build_dir / f"contracts-{_cache_key(sources, settings)}.json"
    if not force and cache.is_file():
        cached = _load_cache(cache)
        if cached is not None:
            cache.touch()  # most recently used: the last to be pruned
            return cached
    contracts = _extract(_run_solc(sources, files, settings), files)
    _write_cache(cache, contracts)
    return contracts


def main(argv: list[str] | None = None) -> int:
    """Compile the project's contracts and print a summary (name, source, bytecode size)."""
    parser = argparse.ArgumentParser(prog="python -m protocol.compile", description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="recompile even if a cached build exists")
    args = parser.parse_args(argv)
    try:
        contracts = compile_contracts(force=args.force)
    except CompileError as exc:
        print(exc, file=sys.stderr)
        return 1
    width = max(len(n) for n in contracts)
    for name in sorted(contracts):
        c = contracts[name]
        size = (len(c.bytecode) - 2) // 2
        kind = f"{size:6d} bytes" if size else "  (no code)"
        print(f"{name:<{width}}  {kind}  {c.source}")
    print(f"{len(contracts)} contracts (solc {SOLC_VERSION}, optimizer {OPTIMIZER_RUNS} runs, {EVM_VERSION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
