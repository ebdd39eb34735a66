"""The trustrl auditor: replay a deployment's history from its events, re-verify the work from IPFS, and
report every discrepancy (`docs/audit.md`)."""

from protocol.audit.discrepancy import Discrepancy, Kind

__all__ = ["Discrepancy", "Kind"]
