"""Errors of the network side: chain, contracts, IPFS, wire data and roles.

All derive from `trainer.errors.TrustrlError`, the project's single root exception.
"""

from __future__ import annotations

from trainer.errors import TrustrlError

__all__ = [
    "ArtifactError",
    "ChainError",
    "ConfigError",
    "ContractRevert",
    "IpfsError",
    "ProtocolError",
    "TrustrlError",
    "WireFormatError",
]


class ProtocolError(TrustrlError):
    """An error on the network side."""


class ConfigError(ProtocolError, ValueError):
    """A network, account or task configuration is missing or malformed."""


class ChainError(ProtocolError):
    """The chain could not be reached or a transaction failed for a reason other than a revert."""


class ContractRevert(ChainError):
    """A contract call reverted. `error` is the custom error's name, `args` its decoded values."""

    def __init__(self, error: str, args: dict[str, object] | None = None, *, tx: str | None = None,
                 raw: bytes = b"") -> None:
        self.error = error
        self.values: dict[str, object] = dict(args or {})
        self.tx = tx
        self.raw = raw
        shown = ", ".join(f"{k}={v!r}" for k, v in self.values.items())
        where = f" (tx {tx})" if tx else ""
        super().__init__(f"{error}({shown}){where}")


class IpfsError(ProtocolError):
    """The IPFS daemon is unreachable or refused a request."""


class ArtifactError(ProtocolError, ValueError):
    """An artifact is missing, too large, or its content does not match its CID or hash."""


class WireFormatError(ProtocolError, ValueError):
    """Wire data (task spec, bundle, manifest, report) does not validate."""
