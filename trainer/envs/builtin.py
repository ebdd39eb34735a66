"""The built-in environments: addition, reverse, sort_digits.

Each one's answer is a pure function of its prompt (`solve`), so anybody can re-check a reward from the
prompt text alone. The reward is 1.0 when the completion (text before EOS) equals the answer exactly and
0.0 otherwise: exact match trained better than per-digit partial credit (DESIGN.md).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from trainer.derive import DeterministicRng
from trainer.envs.base import Environment, EnvParams
from trainer.errors import ConfigError

__all__ = [
    "BUILTIN_ROOTS",
    "Addition",
    "AdditionParams",
    "ReverseParams",
    "ReverseString",
    "SortDigits",
    "SortParams",
]

BUILTIN_ROOTS = ("trainer.envs",)
"""The built-ins' code, for their pin: the `trainer.envs` package (this interface, the registry, the
adapters), not the rest of trainer."""


class AdditionParams(EnvParams):
    digits: int = Field(2, ge=1, le=9)
    """Each operand is uniform in [0, 10**digits)."""


class Addition(Environment):
    """`a+b=` -> decimal a+b, e.g. `47+85=` -> `132`."""

    name = "addition"
    code_roots = BUILTIN_ROOTS
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


class ReverseParams(EnvParams):
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
    code_roots = BUILTIN_ROOTS
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


class SortParams(EnvParams):
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
    code_roots = BUILTIN_ROOTS
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
