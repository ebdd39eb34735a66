"""Finding an environment by name, and its pin (package, version, code hash).

A task spec names its environment in one of three ways, resolved in this order:

    "pkg.module:Factory"   a module path: the class `Factory` of the locally installed module `pkg.module`
    "addition", ...        a built-in (`BUILTIN`: addition, reverse, sort_digits, reasoning_gym)
    "my_env"               an entry point of the group `trustrl.envs` of an installed distribution, whose
                           value is a module path (`my_env = "my_pkg.envs:MyEnv"` in its pyproject.toml)

The factory must be a subclass of `trainer.envs.base.Environment`. Nothing is fetched: an environment is
code installed on this machine, never code from a spec or from IPFS. A module path may not name a module of
the standard library, and an entry point may not shadow a built-in; two distributions registering the same
name are refused as ambiguous.

The pin of an environment (`env_pin`): the distribution that provides it (the entry point's, the class's
`distribution`, or the one that installed the class's top-level package; "-" for none), its installed
version ("-" for none) and `code_hash` over its `code_roots` (default: the class's top-level package):

    files(root)  a package: every regular file under its directory (recursively), except `__pycache__`
                 directories and .pyc/.pyo files, keyed "<root>/<path relative to the directory>" (POSIX);
                 a single-file module: that file, keyed "<root><suffix>" (e.g. "my_env.py")
    code_hash    sha256 over the files of all roots sorted by key, each as
                 u32be(len(key)) || key (UTF-8) || u64be(len(content)) || content

It is computed once per process and root (the code that runs is the code imported at start).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from trainer.envs.base import Environment
from trainer.errors import ConfigError, EnvironmentNotFoundError

__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "LEGACY_UNPINNED",
    "EnvPin",
    "code_hash",
    "env_class",
    "env_pin",
    "get_env",
    "known_envs",
]

ENTRY_POINT_GROUP = "trustrl.envs"
BUILTIN: dict[str, str] = {
    "addition": "trainer.envs.builtin:Addition",
    "reverse": "trainer.envs.builtin:ReverseString",
    "sort_digits": "trainer.envs.builtin:SortDigits",
    "reasoning_gym": "trainer.envs.rgym:ReasoningGym",
}
"""Built-in name -> module path."""
LEGACY_UNPINNED = frozenset({"addition", "reverse", "sort_digits"})
"""Environments a spec may name without a pin (specs written before pins existed)."""

_MODULE_PATH = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


@dataclass(frozen=True)
class EnvPin:
    """What a task spec pins of its environment's code."""

    package: str
    """The distribution that provides it ("-": none, e.g. a module on PYTHONPATH)."""
    version: str
    """Its installed version ("-": none)."""
    code_hash: str
    """0x + sha256 hex of its code (`code_hash`)."""


def _entry_points(name: str) -> list[importlib.metadata.EntryPoint]:
    return [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]


def _reference(name: str) -> tuple[str, str | None]:
    """(module path, distribution of the entry point or None) of an environment name."""
    if ":" in name:
        if not _MODULE_PATH.match(name):
            raise EnvironmentNotFoundError(
                f"environment {name!r} is not a module path (package.module:Class)"
            )
        top = name.split(".", 1)[0].split(":", 1)[0]
        if top in sys.stdlib_module_names:
            raise EnvironmentNotFoundError(f"environment {name!r}: {top} is a standard library module")
        return name, None
    if name in BUILTIN:
        return BUILTIN[name], None
    points = _entry_points(name)
    values = {ep.value for ep in points}
    if len(values) > 1:
        owners = sorted(ep.dist.name if ep.dist is not None else "?" for ep in points)
        raise EnvironmentNotFoundError(
            f"environment {name!r} is registered by several distributions: {', '.join(owners)}"
        )
    if points:
        ep = points[0]
        if not _MODULE_PATH.match(f"{ep.module}:{ep.attr}"):
            raise EnvironmentNotFoundError(f"entry point {name!r} = {ep.value!r} is not package.module:Class")
        return f"{ep.module}:{ep.attr}", ep.dist.name if ep.dist is not None else None
    raise EnvironmentNotFoundError(
        f"unknown environment {name!r}; known: {', '.join(known_envs())} (or a module path pkg.mod:Class)"
    )


def known_envs() -> list[str]:
    """Names of the built-in environments and of those registered by entry points."""
    names = set(BUILTIN)
    names.update(ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def env_class(name: str) -> type[Environment]:
    """The environment class a name resolves to (`EnvironmentNotFoundError` if none)."""
    reference, _ = _reference(name)
    module_name, attr = reference.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EnvironmentNotFoundError(f"environment {name!r}: cannot import {module_name}: {exc}") from None
    cls = getattr(module, attr, None)
    if not (isinstance(cls, type) and issubclass(cls, Environment)):
        raise EnvironmentNotFoundError(f"environment {name!r}: {reference} is not an Environment class")
    return cls


def get_env(name: str, params: Mapping[str, Any] | None = None) -> Environment:
    """The environment `name` with `params`.

    Unknown name -> `EnvironmentNotFoundError` (listing the known ones); bad params -> `ConfigError`.
    """
    cls = env_class(name)
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"environment parameters must be a mapping, got {type(params).__name__}")
    try:
        parsed = cls.Params.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid parameters for environment {name!r}: {exc}") from None
    return cls(parsed)


@cache
def _distribution_of(top: str) -> str | None:
    owners = importlib.metadata.packages_distributions().get(top)
    return sorted(owners)[0] if owners else None


def _root_files(root: str) -> list[tuple[str, Path]]:
    try:
        spec = importlib.util.find_spec(root)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise EnvironmentNotFoundError(f"cannot find the module {root} to hash its code")
    if spec.submodule_search_locations:
        out = []
        for location in spec.submodule_search_locations:
            base = Path(location)
            for path in base.rglob("*"):
                rel = path.relative_to(base)
                if path.is_file() and "__pycache__" not in rel.parts and path.suffix not in (".pyc", ".pyo"):
                    out.append((f"{root}/{rel.as_posix()}", path))
        return out
    if spec.origin is None or not Path(spec.origin).is_file():
        raise EnvironmentNotFoundError(f"the module {root} has no source file to hash")
    return [(root + Path(spec.origin).suffix, Path(spec.origin))]


@cache
def _code_hash(roots: tuple[str, ...]) -> bytes:
    digest = hashlib.sha256()
    files = sorted({key: path for root in roots for key, path in _root_files(root)}.items())
    for key, path in files:
        raw_key, content = key.encode(), path.read_bytes()
        digest.update(len(raw_key).to_bytes(4, "big") + raw_key + len(content).to_bytes(8, "big") + content)
    return digest.digest()


def code_hash(roots: Iterable[str]) -> bytes:
    """sha256 of the code of the modules `roots` (the module docstring defines it)."""
    return _code_hash(tuple(sorted(set(roots))))


def env_pin(name: str) -> EnvPin:
    """The pin of the installed environment `name`."""
    cls = env_class(name)
    _, entry_dist = _reference(name)
    top = cls.__module__.split(".", 1)[0]
    dist = cls.distribution or entry_dist or _distribution_of(top)
    version = "-"
    if dist is not None:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise EnvironmentNotFoundError(f"environment {name!r}: package {dist} is not installed") from None
    digest = code_hash(cls.code_roots or (top,))
    return EnvPin(package=dist or "-", version=version, code_hash="0x" + digest.hex())
