"""Environments of one's own: registered by an entry point of `trustrl.envs` (a real dist-info on sys.path,
found by importlib.metadata) or by a module path; their pin (distribution, version, code hash) as
trainer/envs/registry.py defines it; references that are refused; rewards outside [0, 1] refused."""

from __future__ import annotations

import hashlib
import importlib.metadata
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trainer.envs import EnvPin, Problem, code_hash, env_pin, get_env, known_envs
from trainer.envs.builtin import Addition
from trainer.errors import ConfigError, EnvironmentNotFoundError

ENV_SOURCE = '''
from trainer.derive import DeterministicRng
from trainer.envs import EnvParams, Environment, Problem


class Echo(Environment):
    """`ab.` -> `ab`; `score` returns SCORE when it is set."""

    name = "echo"
    Params = EnvParams
    SCORE = None

    @property
    def alphabet(self) -> str:
        return "ab."

    @property
    def max_answer_len(self) -> int:
        return 2

    def _prompt(self, rng: DeterministicRng) -> str:
        return rng.choice("ab") + rng.choice("ab") + "."

    def solve(self, prompt: str) -> str:
        return prompt[:-1]

    def score(self, problem: Problem, answer: str) -> float:
        if self.SCORE is not None:
            return self.SCORE
        return 1.0 if answer == problem.answer else (0.5 if answer[:1] == problem.answer[:1] else 0.0)


def not_an_env() -> None:
    pass
'''


def _expected_hash(files: dict[str, bytes]) -> str:
    digest = hashlib.sha256()
    for key in sorted(files):
        raw = key.encode()
        digest.update(len(raw).to_bytes(4, "big") + raw + len(files[key]).to_bytes(8, "big") + files[key])
    return "0x" + digest.hexdigest()


def _dist(site: Path, name: str, version: str, entry_points: dict[str, str], top: str) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[trustrl.envs]\n{lines}")
    (info / "top_level.txt").write_text(f"{top}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory on sys.path; the modules imported from it are forgotten afterwards."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith(("epenv_", "mpenv_", "hashenv_")):
            del sys.modules[name]


def test_an_entry_point_registers_an_environment(site: Path) -> None:
    package = site / "epenv_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(ENV_SOURCE)
    (package / "words.txt").write_text("data counts as code\n")
    _dist(site, "epenv-pkg", "1.2.3", {"ep_echo": "epenv_pkg:Echo"}, "epenv_pkg")

    assert "ep_echo" in known_envs()
    env = get_env("ep_echo")
    assert type(env).__module__ == "epenv_pkg"
    problem = env.problem(b"\x01" * 32)
    assert env.reward(problem, problem.answer) == 1.0
    files = {"epenv_pkg/__init__.py": ENV_SOURCE.encode(), "epenv_pkg/words.txt": b"data counts as code\n"}
    assert env_pin("ep_echo") == EnvPin("epenv-pkg", "1.2.3", _expected_hash(files))


def test_a_module_path_registers_an_environment(site: Path) -> None:
    (site / "mpenv_single.py").write_text(ENV_SOURCE)
    env = get_env("mpenv_single:Echo")
    assert env.name == "echo"
    assert env_pin("mpenv_single:Echo") == EnvPin(
        "-", "-", _expected_hash({"mpenv_single.py": ENV_SOURCE.encode()})
    )
    # installed by a distribution (found through top_level.txt): the pin names it
    (site / "mpenv_owned.py").write_text(ENV_SOURCE)
    _dist(site, "owned-env", "0.4", {}, "mpenv_owned")
    pin = env_pin("mpenv_owned:Echo")
    assert (pin.package, pin.version) == ("owned-env", "0.4")


def test_the_code_hash_covers_every_file_of_the_package_but_caches(site: Path) -> None:
    for name, extra in (("hashenv_a", b"x = 1\n"), ("hashenv_b", b"x = 2\n")):
        (site / name / "sub" / "__pycache__").mkdir(parents=True)
        (site / name / "__init__.py").write_text("")
        (site / name / "sub" / "mod.py").write_bytes(extra)
        (site / name / "sub" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"ignored")
        (site / name / "stale.pyc").write_bytes(b"ignored too")
    a = code_hash(["hashenv_a"])
    assert "0x" + a.hex() == _expected_hash(
        {"hashenv_a/__init__.py": b"", "hashenv_a/sub/mod.py": b"x = 1\n"}
    )
    assert a != code_hash(["hashenv_b"])  # one byte differs
    assert code_hash(["hashenv_a", "hashenv_b"]) == code_hash(["hashenv_b", "hashenv_a", "hashenv_a"])


def test_the_builtins_pin_trustrl_and_the_envs_package() -> None:
    expected = EnvPin(
        "trustrl", importlib.metadata.version("trustrl"), "0x" + code_hash(["trainer.envs"]).hex()
    )
    for name in ("addition", "reverse", "sort_digits"):
        assert env_pin(name) == expected


def test_an_entry_point_cannot_shadow_a_builtin_and_two_are_ambiguous(site: Path) -> None:
    package = site / "epenv_dup"
    package.mkdir()
    (package / "__init__.py").write_text(ENV_SOURCE)
    _dist(site, "dup-one", "1", {"addition": "epenv_dup:Echo", "twice": "epenv_dup:Echo"}, "epenv_dup")
    _dist(site, "dup-two", "1", {"twice": "epenv_dup:Other"}, "epenv_dup")
    assert isinstance(get_env("addition"), Addition)
    with pytest.raises(
        EnvironmentNotFoundError, match="'twice' is registered by several distributions: dup-one, dup-two"
    ):
        get_env("twice")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("os:path", "os is a standard library module"),
        ("importlib.metadata:EntryPoint", "importlib is a standard library module"),
        ("mpenv_refs:not_an_env", "mpenv_refs:not_an_env is not an Environment class"),
        ("mpenv_refs:Absent", "is not an Environment class"),
        ("mpenv_absent_module:Echo", "cannot import mpenv_absent_module"),
        ("a:b:c", "is not a module path"),
        ("a b:C", "is not a module path"),
        ("chess", "unknown environment 'chess'; known: addition, "),
    ],
)
def test_refused_references(site: Path, name: str, message: str) -> None:
    (site / "mpenv_refs.py").write_text(ENV_SOURCE)
    with pytest.raises(EnvironmentNotFoundError) as refused:
        get_env(name)
    assert message in str(refused.value)


@pytest.mark.parametrize("score", [float("nan"), float("inf"), 1.5, -0.1, True])
def test_a_reward_outside_0_1_is_refused(site: Path, score: float) -> None:
    (site / "mpenv_score.py").write_text(ENV_SOURCE)
    env = get_env("mpenv_score:Echo")
    problem = Problem("ab.", "ab")
    assert env.reward(problem, "ax") == 0.5  # partial credit passes
    type(env).SCORE = score  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="a reward must be in"):
        env.reward(problem, "ab")
