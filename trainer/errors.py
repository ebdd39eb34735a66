"""The project's exception hierarchy.

`TrustrlError` is the one root type of every error trustrl raises on purpose, on both sides of the
project: `trainer` (the ML) defines it here because it must not import `protocol`; `protocol`
re-exports it and derives its own domain errors from it. Where it helps callers, errors also inherit
the matching built-in (`ValueError`), as web3.py does.
"""

from __future__ import annotations


class TrustrlError(Exception):
    """Root of every error raised on purpose by trustrl."""


class TrainerError(TrustrlError):
    """An error in the ML side (models, rollouts, training, verification)."""


class ConfigError(TrainerError, ValueError):
    """A configuration or task parameter is malformed or out of range."""


class CheckpointError(TrainerError, ValueError):
    """A checkpoint or training-state blob is corrupt, too large or does not match its description."""


class AbsurdValueError(CheckpointError):
    """A tensor holds NaN, an infinity or a magnitude beyond `trainer.checkpoint.MAX_ABS`."""


class ProofFormatError(TrainerError, ValueError):
    """TOPLOC proof bytes are malformed (wrong size, bad modulus, wrong count for the completion)."""


class EnvironmentNotFoundError(ConfigError, KeyError):
    """A task names an environment that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class HiddenStateError(TrainerError, ValueError):
    """Hidden states cannot be proven (wrong shape, non-finite values after the bf16 cast)."""
