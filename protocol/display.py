"""How amounts, times and rounds are shown to people (no chain, no torch: the CLI imports it at once).

Amounts live on chain as integers in the token's base units; a person types and reads them in tokens, with
the token's own `decimals()` (18 for the test token, 6 for USDC-like tokens). Shown amounts are rounded to
`PLACES` decimals and marked `~` when the rounding changed them; `--json` output keeps the exact base units.

Times on chain are unix seconds of the chain's clock (the latest block's timestamp). They are shown in UTC
with how far away they are on the chain's clock: `14:02:10 UTC (in 35 s)`, with the date when it is not
the chain's today. Rounds are numbered from 0, as on chain, everywhere.
"""

from __future__ import annotations

import datetime as _dt
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from protocol.errors import ConfigError

__all__ = ["PLACES", "ago_or_in", "amount", "duration", "to_units", "utc", "when"]

PLACES = 4
"""Decimals shown for an amount (exact base units are in `--json`)."""


def to_units(value: Decimal | int | str, decimals: int) -> int:
    """Tokens typed by a person (a decimal number with at most `decimals` decimals) as base units."""
    try:
        scaled = Decimal(str(value)) * (Decimal(10) ** decimals)
    except InvalidOperation:
        raise ConfigError(f"not a token amount: {value!r}") from None
    if not scaled.is_finite() or scaled != scaled.to_integral_value() or scaled < 0:
        raise ConfigError(
            f"token amount {value} must be a number >= 0 with at most {decimals} decimals "
            f"(the token's decimals)"
        )
    return int(scaled)


def amount(units: int, decimals: int, *, places: int = PLACES, dust: bool = True) -> str:
    """Base units as tokens with thousands separators and at most `places` decimals, trailing zeros
    trimmed; `~` in front when rounding changed the value (`~80` for 79.999999999999999062). Dust that
    would round to 0 is shown exactly (`0.000000000000000868`), or as `~0` without `dust` (tables)."""
    exact = Decimal(int(units)).scaleb(-decimals)
    shown = exact.quantize(Decimal(1).scaleb(-min(places, decimals)), rounding=ROUND_HALF_EVEN)
    if dust and shown == 0 and exact != 0:
        shown = exact
    whole, _, frac = f"{abs(shown):f}".partition(".")
    frac = frac.rstrip("0")
    text = f"{int(whole):,}" + (f".{frac}" if frac else "")
    if shown < 0:
        text = "-" + text
    return text if shown == exact else "~" + text


def utc(timestamp: int, *, today: int | None = None) -> str:
    """Unix seconds as `HH:MM:SS UTC`, with the date in front unless it is the same day as `today`."""
    moment = _dt.datetime.fromtimestamp(int(timestamp), _dt.UTC)
    if today is not None and _dt.datetime.fromtimestamp(int(today), _dt.UTC).date() == moment.date():
        return moment.strftime("%H:%M:%S UTC")
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """A span of time, coarsened for reading: `35 s`, `12 min 5 s`, `3 h 20 min`, `2 d 4 h`."""
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    minutes, s = divmod(s, 60)
    if minutes < 60:
        return f"{minutes} min {s} s" if s else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def ago_or_in(timestamp: int, now: int) -> str:
    """`in 35 s`, `now`, or `12 s ago`, on the chain's clock."""
    delta = int(timestamp) - int(now)
    if delta == 0:
        return "now"
    return f"in {duration(delta)}" if delta > 0 else f"{duration(-delta)} ago"


def when(timestamp: int, now: int) -> str:
    """A chain time for people: `14:02:10 UTC (in 35 s)`."""
    return f"{utc(timestamp, today=now)} ({ago_or_in(timestamp, now)})"
