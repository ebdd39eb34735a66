"""The environment interface: what a task's environment must provide, built-in or plugin.

An environment is a task family with verifiable rewards:

    problem(seed)          a deterministic `Problem` (prompt, answer) per 32-byte seed, on any machine
    reward(problem, text)  the score in [0, 1] of a completion's text (the text before EOS): `score` of the
                           answer `parse_answer(text)`; a value outside [0, 1] (or NaN) is a `ConfigError`
    solve(prompt)          the answer of a prompt this environment generated (validators recompute rewards
                           from a rollout's prompt text)
    alphabet               every character a prompt or an answer can contain (the character tokenizer's)
    max_answer_len         the longest answer in characters (the generation budget is this + 1 for EOS)
    Params                 a pydantic model of its parameters (`extra="forbid"`), what a task spec stores

Subclasses implement `_prompt`, `solve`, `alphabet` and `max_answer_len`; they may override `parse_answer`
(default: the text itself) and `score` (default: exact match, 1.0 or 0.0), or `problem` when a problem is
not a function of a `DeterministicRng` draw. docs/environments.md describes how to register one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from trainer.derive import DeterministicRng
from trainer.errors import ConfigError

__all__ = ["EnvParams", "Environment", "Problem"]


@dataclass(frozen=True)
class Problem:
    """A prompt and its one correct answer."""

    prompt: str
    answer: str


class EnvParams(BaseModel):
    """Base of every environment's parameters: frozen, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Environment(ABC):
    """A task family: prompts from seeds, a deterministic reward in [0, 1]."""

    name: ClassVar[str]
    Params: ClassVar[type[EnvParams]]
    code_roots: ClassVar[tuple[str, ...]] = ()
    """Modules (packages: every file under their directory) whose files are this environment's code for its
    pin (`trainer.envs.registry.code_hash`); empty: the top-level package of the class's module."""
    distribution: ClassVar[str | None] = None
    """The installed distribution the pin names; None: the one that provides the class's top-level module."""

    def __init__(self, params: EnvParams) -> None:
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

    def parse_answer(self, completion: str) -> str:
        """The answer a completion gives (default: the completion text itself)."""
        return completion

    def score(self, problem: Problem, answer: str) -> float:
        """The credit of `answer` in [0, 1] (default: 1.0 if it is exactly the problem's answer, else 0.0)."""
        return 1.0 if answer == problem.answer else 0.0

    def reward(self, problem: Problem, completion: str) -> float:
        """`score(problem, parse_answer(completion))`, checked to be a finite number in [0, 1]."""
        value = self.score(problem, self.parse_answer(completion))
        if not isinstance(value, float | int) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"environment {self.name!r} scored {value!r}: a reward must be in [0, 1]")
        return float(value)

    def spec(self) -> dict[str, Any]:
        """{"name": ..., "params": {...}}, what a task spec stores."""
        return {"name": self.name, "params": self.params.model_dump()}
