"""A test-only environment registered by module path (`plugin_env:MaxDigit`): it stands for a user's own
environment, installed locally and named in a task spec, with partial credit and answer parsing."""

from __future__ import annotations

from pydantic import Field

from trainer.derive import DeterministicRng
from trainer.envs import Environment, EnvParams, Problem
from trainer.errors import ConfigError


class MaxDigitParams(EnvParams):
    length: int = Field(3, ge=1, le=9)
    """Digits in a prompt."""


class MaxDigit(Environment):
    """`471?` -> `7`; half credit for another digit of the prompt; surrounding spaces are ignored."""

    name = "max_digit"
    Params = MaxDigitParams
    params: MaxDigitParams

    @property
    def alphabet(self) -> str:
        return "0123456789? "

    @property
    def max_answer_len(self) -> int:
        return 1

    def _prompt(self, rng: DeterministicRng) -> str:
        return "".join(str(rng.randbelow(10)) for _ in range(self.params.length)) + "?"

    def solve(self, prompt: str) -> str:
        body = prompt[:-1] if prompt.endswith("?") else ""
        if not body or not (body.isdigit() and body.isascii()):
            raise ConfigError(f"not a max_digit prompt: {prompt!r}")
        return max(body)

    def parse_answer(self, completion: str) -> str:
        return completion.strip(" ")

    def score(self, problem: Problem, answer: str) -> float:
        if answer == problem.answer:
            return 1.0
        return 0.5 if len(answer) == 1 and answer in problem.prompt[:-1] else 0.0
