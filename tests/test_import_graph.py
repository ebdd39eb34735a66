"""The import graph of `protocol` and `trainer`, read from the source files with `ast` (nothing is imported):
no cycle inside `protocol`, `trainer` never imports `protocol`, and each layer of `protocol` imports only
the layers below it (docs/code-map.md). Every import counts: at the top of a module, inside a function, and
under `if TYPE_CHECKING:`.

    core    every module directly under protocol/ but demo and cli (chain, contracts, ipfs, wire, ...)
    roles   protocol.roles.*        core
    audit   protocol.audit.*        core
    apps    protocol.demo, .cli     everything
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN = {
    "core": ("roles", "audit", "apps"),
    "roles": ("audit", "apps"),
    "audit": ("roles", "apps"),
    "apps": (),
}
"""Layer -> the layers it must not import."""


def _modules(package: str) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of `package`."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = {**_modules("protocol"), **_modules("trainer")}


def _imports(module: str, path: Path) -> set[str]:
    """The modules `module` imports: `from a import b` is module `a.b` when that is a module, else `a`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = str(node.module)
            for alias in node.names:
                name = f"{source}.{alias.name}"
                out.add(name if name in MODULES else source)
    return out


GRAPH = {module: _imports(module, path) - {module} for module, path in MODULES.items()}


def _layer(module: str) -> str:
    if module.startswith("protocol.roles"):
        return "roles"
    if module.startswith("protocol.audit"):
        return "audit"
    if module in ("protocol.demo", "protocol.cli"):
        return "apps"
    return "core"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (a path that ends where it starts), or None (depth-first search)."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph.get(node, ())):
            found = visit(target)
            if found is not None:
                return found
        path.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start)
        if found is not None:
            return found
    return None


def test_the_graph_is_read_from_every_source_file() -> None:
    assert "protocol.audit.books.state" in GRAPH["protocol.audit.ledger"]
    assert "protocol.contracts" in GRAPH["protocol.roles.settle"]
    assert len(GRAPH) > 40


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None


def test_protocol_has_no_import_cycle() -> None:
    protocol = {
        m: {t for t in targets if t.startswith("protocol")}
        for m, targets in GRAPH.items()
        if m.startswith("protocol")
    }
    cycle = _cycle(protocol)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_trainer_never_imports_protocol() -> None:
    bad = sorted(
        f"{m} imports {t}"
        for m, targets in GRAPH.items()
        if m.startswith("trainer")
        for t in targets
        if t == "protocol" or t.startswith("protocol.")
    )
    assert bad == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_the_layers_it_may(layer: str) -> None:
    bad = sorted(
        f"{m} ({layer}) imports {t} ({_layer(t)})"
        for m, targets in GRAPH.items()
        if m.startswith("protocol") and _layer(m) == layer
        for t in targets
        if t.startswith("protocol.") and _layer(t) in FORBIDDEN[layer]
    )
    assert bad == []
