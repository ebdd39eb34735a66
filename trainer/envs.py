"""Environments with verifiable rewards: a deterministic problem per seed, an exact-match reward.

Each environment's answer is a pure function of its prompt (`solve`), so anybody can re-check a reward
from the prompt text alone. The reward is 1.0 when the completion (text before EOS) equals the answer
exactly and 0.0 otherwise: exact match trained better than per-digit partial credit (DESIGN.md).

`get_env(name, params)` builds one from a task spec; parameters are validated by a pydantic model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainer.derive import DeterministicRng
from trainer.errors import ConfigError, EnvironmentNotFoundError

__all__ = [
    "Addition",
    "Environment",
    "Problem",
    "ReverseString",
    "SortDigits",
    "get_env",
    "known_envs",
]


@dataclass(frozen=True)
class Problem:
    """A prompt and its one correct answer."""

    prompt: str
    answer: str


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(ABC):
    """A task family: prompts from seeds, a deterministic reward."""

    name: ClassVar[str]
    Params: ClassVar[type[_Params]]

    def __init__(self, params: _Params) -> None:
        self.params = params

    @property
    @abstractmethod
    def alphabet(self) -> str:
        """Every character a prompt or an answer can contain."""

    @property
    @abstractmethod
    def max_answer_len(self) -> int:
        """Longest answer, in characters (generation budget is this + 1 for EOS)."""

    @abstractmethod
    def _prompt(self, rng: DeterministicRng) -> str: ...

    @abstractmethod
    def solve(self, prompt: str) -> str:
        """The answer to a well-formed prompt of this environment; `ConfigError` otherwise."""

    def problem(self, seed: bytes) -> Problem:
        """The problem of a seed (deterministic: same seed, same problem, on any machine)."""
        prompt = self._prompt(DeterministicRng(seed))
        return Problem(prompt=prompt, answer=self.solve(prompt))

    def reward(self, problem: Problem, completion: str) -> float:
        """1.0 if the completion text is exactly the answer, else 0.0."""
        return 1.0 if completion == problem.answer else 0.0

    def spec(self) -> dict[str, Any]:
        """{"name": ..., "params": {...}}, what a task spec stores."""
        return {"name": self.name, "params": self.params.model_dump()}


class AdditionParams(_Params):
    digits: int = Field(2, ge=1, le=9)
    """Each operand is uniform in [0, 10**digits)."""


class Addition(Environment):
    """`a+b=` -> decimal a+b, e.g. `47+85=` -> `132`."""

    name = "addition"
    Params = AdditionParams
    params: AdditionParams

    @property
    def alphabet(self) -> str:
        return "0123456789+="

    @property
    def max_answer_len(self) -> int:
        return self.params.digits + 1

    def _prompt(self, rng: DeterministicRng) -> str:
        bound = 10**self.params.digits
        a, b = rng.randbelow(bound), rng.randbelow(bound)
        return f"{a}+{b}="

    def solve(self, prompt: str) -> str:
        body = prompt[:-1] if prompt.endswith("=") else ""
        parts = body.split("+")
        if len(parts) != 2 or not all(p.isdigit() and p.isascii() for p in parts):
            raise ConfigError(f"not an addition prompt: {prompt!r}")
        return str(int(parts[0]) + int(parts[1]))


class ReverseParams(_Params):
    min_len: int = Field(2, ge=1, le=64)
    """Shortest string."""
    max_len: int = Field(5, ge=1, le=64)
    """Longest string."""
    letters: str = Field("abcde", min_length=2, max_length=26, pattern="^[a-z]+$")
    """Characters the string is drawn from."""

    @model_validator(mode="after")
    def _check(self) -> ReverseParams:
        if self.min_len > self.max_len:
            raise ValueError(f"min_len={self.min_len} > max_len={self.max_len}")
        if len(set(self.letters)) != len(self.letters):
            raise ValueError(f"letters has repeated characters: {self.letters!r}")
        return self


class ReverseString(Environment):
    """`abc>` -> `cba`."""

    name = "reverse"
    Params = ReverseParams
    params: ReverseParams

    @property
    def alphabet(self) -> str:
        return self.params.letters + ">"

    @property
    def max_answer_len(self) -> int:
        return self.params.max_len

    def _prompt(self, rng: DeterministicRng) -> str:
        n = rng.randint(self.params.min_len, self.params.max_len)
        return "".join(rng.choice(self.params.letters) for _ in range(n)) + ">"

    def solve(self, prompt: str) -> str:
        body = prompt[:-1] if prompt.endswith(">") else ""
        if not body or any(c not in self.params.letters for c in body):
            raise ConfigError(f"not a reverse prompt: {prompt!r}")
        return body[::-1]


class SortParams(_Params):
    min_len: int = Field(2, ge=1, le=64)
    """Fewest digits."""
    max_len: int = Field(5, ge=1, le=64)
    """Most digits."""

    @model_validator(mode="after")
    def _check(self) -> SortParams:
        if self.min_len > self.max_len:
            raise ValueError(f"min_len={self.min_len} > max_len={self.max_len}")
        return self


class SortDigits(Environment):
    """`3142:` -> `1234`."""

    name = "sort_digits"
    Params = SortParams
    params: SortParams

    @property
    def alphabet(self) -> str:
        return "0123456789:"

    @property
    def max_answer_len(self) -> int:
        return self.params.max_len

    def _prompt(self, rng: DeterministicRng) -> str:
        n = rng.randint(self.params.min_len, self.params.max_len)
        return "".join(str(rng.randbelow(10)) for _ in range(n)) + ":"

    def solve(self, prompt: str) -> str:
        body = prompt[:-1] if prompt.endswith(":") else ""
        if not body or not (body.isdigit() and body.isascii()):
            raise ConfigError(f"not a sort_digits prompt: {prompt!r}")
        return "".join(sorted(body))


_REGISTRY: dict[str, type[Environment]] = {cls.name: cls for cls in (Addition, ReverseString, SortDigits)}


def known_envs() -> list[str]:
    """Names of the registered environments."""
    return sorted(_REGISTRY)


def get_env(name: str, params: Mapping[str, Any] | None = None) -> Environment:
    """The environment `name` with `params`.

    Unknown name -> `EnvironmentNotFoundError` (listing the known ones); bad params -> `ConfigError`.
    """
    cls = _REGISTRY.get(name)
    if cls is None:
        raise EnvironmentNotFoundError(f"unknown environment {name!r}; known: {', '.join(known_envs())}")
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"environment parameters must be a mapping, got {type(params).__name__}")
    try:
        parsed = cls.Params.model_validate(dict(params or {}))
    except ValidationError as exc:
        raise ConfigError(f"invalid parameters for environment {name!r}: {exc}") from None
    return cls(parsed)
