"""`reasoning_gym`: the procedural, seeded, verifiable tasks of the `reasoning-gym` package as an environment.

    params   dataset (a reasoning-gym dataset name, e.g. basic_arithmetic), config (its keyword arguments),
             alphabet, max_prompt_len, max_answer_len
    problem  seed -> s = the first 63 bits drawn by `DeterministicRng(seed)`; the dataset made with
             `create_dataset(dataset, seed=s, size=TRIES, **config)`; its first entry i = 0, 1, ...
             whose question (the prompt) and answer use only `alphabet` and fit the length limits
             (`ConfigError` if none of the TRIES does)
    reward   the dataset's own `score_answer(answer, entry)`, partial credit allowed, where the answer is
             the completion with surrounding spaces stripped

The answer and the scorer need the dataset entry, not just the prompt text: `solve` and `reward` look the
entry up among the problems this environment object generated (the roles always generate a problem before
they score it). The pin covers `trainer.envs` and the `reasoning_gym` package, and names the
`reasoning-gym` distribution and version (optional extra `trustrl[envs]`).
"""

from __future__ import annotations

import string
from collections import OrderedDict
from typing import Any

from pydantic import Field

from trainer.derive import DeterministicRng
from trainer.envs.base import Environment, EnvParams, Problem
from trainer.errors import ConfigError, EnvironmentNotFoundError

__all__ = ["DEFAULT_ALPHABET", "TRIES", "ReasoningGym", "ReasoningGymParams"]

TRIES = 64
"""Entries tried per seed for one that fits the alphabet and the length limits."""
DEFAULT_ALPHABET = string.digits + string.ascii_letters + string.punctuation + " "
"""Printable ASCII (no tabs or newlines)."""
_CACHE = 1 << 16
"""Generated entries kept for `solve` and `reward` (far more than a round's prompts)."""

Scalar = int | float | str | bool


class ReasoningGymParams(EnvParams):
    dataset: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    """A reasoning-gym dataset name (`reasoning_gym.factory.DATASETS`), e.g. `basic_arithmetic`."""
    config: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    """The dataset's configuration (keyword arguments of its config class; not `seed` or `size`)."""
    alphabet: str = Field(DEFAULT_ALPHABET, min_length=1, max_length=512)
    """Characters a prompt or an answer may contain (the tokenizer's); other entries are skipped."""
    max_prompt_len: int = Field(64, ge=1, le=4096)
    """Longest prompt in characters; longer entries are skipped."""
    max_answer_len: int = Field(8, ge=1, le=1024)
    """Longest answer in characters; longer entries are skipped."""


class ReasoningGym(Environment):
    """A reasoning-gym dataset: its questions as prompts, its scorer as the reward."""

    name = "reasoning_gym"
    Params = ReasoningGymParams
    params: ReasoningGymParams
    code_roots = ("trainer.envs", "reasoning_gym")
    distribution = "reasoning-gym"

    def __init__(self, params: EnvParams) -> None:
        super().__init__(params)
        try:
            import reasoning_gym
        except ImportError:
            raise EnvironmentNotFoundError(
                "environment 'reasoning_gym' needs the reasoning-gym package: pip install 'trustrl[envs]'"
            ) from None
        for key in ("seed", "size"):
            if key in self.params.config:
                raise ConfigError(f"reasoning_gym: config.{key} is set by the environment, not the task")
        self._create = reasoning_gym.create_dataset
        self._entries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._dataset(0)  # an unknown dataset or a bad config fails here, not in the first round

    def _dataset(self, seed: int) -> Any:
        try:
            return self._create(self.params.dataset, seed=seed, size=TRIES, **self.params.config)
        except Exception as exc:
            raise ConfigError(f"reasoning_gym {self.params.dataset!r}: {type(exc).__name__}: {exc}") from None

    @property
    def alphabet(self) -> str:
        return self.params.alphabet

    @property
    def max_answer_len(self) -> int:
        return self.params.max_answer_len

    def _fits(self, entry: dict[str, Any]) -> bool:
        question, answer = entry.get("question"), entry.get("answer")
        if not isinstance(question, str) or not isinstance(answer, str):
            return False
        allowed = set(self.params.alphabet)
        return (
            1 <= len(question) <= self.params.max_prompt_len
            and 1 <= len(answer) <= self.params.max_answer_len
            and set(question + answer) <= allowed
        )

    def _prompt(self, rng: DeterministicRng) -> str:
        dataset = self._dataset(rng.randbelow(1 << 63))
        for i in range(TRIES):
            entry = dataset[i]
            if self._fits(entry):
                self._remember(entry)
                return str(entry["question"])
        raise ConfigError(
            f"reasoning_gym {self.params.dataset!r}: none of {TRIES} entries fits the alphabet, "
            f"max_prompt_len={self.params.max_prompt_len} and max_answer_len={self.params.max_answer_len}"
        )

    def _remember(self, entry: dict[str, Any]) -> None:
        self._entries[str(entry["question"])] = entry
        self._entries.move_to_end(str(entry["question"]))
        while len(self._entries) > _CACHE:
            self._entries.popitem(last=False)

    def _entry(self, prompt: str) -> dict[str, Any]:
        entry = self._entries.get(prompt)
        if entry is None:
            raise ConfigError(f"reasoning_gym: {prompt[:80]!r} is not a prompt this environment generated")
        return entry

    def solve(self, prompt: str) -> str:
        return str(self._entry(prompt)["answer"])

    def parse_answer(self, completion: str) -> str:
        return completion.strip(" ")

    def score(self, problem: Problem, answer: str) -> float:
        entry = self._entry(problem.prompt)
        dataset = self._dataset(0)
        try:
            value = dataset.score_answer(answer, entry)
        except Exception as exc:
            raise ConfigError(f"reasoning_gym {self.params.dataset!r} scorer failed: {exc}") from None
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
