"""How amounts and times read (`protocol.display`): amounts in the token's own decimals, rounded for people
with a mark when rounding changed them; chain times in UTC with how far away they are (no chain)."""

from __future__ import annotations

import pytest

from protocol.display import amount, duration, to_units, utc, when
from protocol.errors import ConfigError


@pytest.mark.parametrize(
    ("typed", "decimals", "units"),
    [
        ("1", 18, 10**18),
        ("0.5", 18, 5 * 10**17),
        (100, 18, 100 * 10**18),
        ("100", 6, 100_000_000),
        ("0.000001", 6, 1),
        ("12.5", 0, None),
        ("7", 0, 7),
    ],
)
def test_typed_tokens_scale_by_the_tokens_decimals(typed: object, decimals: int, units: int | None) -> None:
    if units is None:
        with pytest.raises(ConfigError, match="at most 0 decimals"):
            to_units(typed, decimals)  # type: ignore[arg-type]
    else:
        assert to_units(typed, decimals) == units  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["1e-19", "-1", "lots", "nan", "inf", "0.0000001"])
def test_malformed_or_too_precise_amounts_are_refused(bad: str) -> None:
    with pytest.raises(ConfigError):
        to_units(bad, 18 if bad != "0.0000001" else 6)


@pytest.mark.parametrize(
    ("units", "decimals", "shown"),
    [
        (79_999_999_999_999_999_062, 18, "~80"),
        (100_000_000_000_000_000_919, 18, "~100"),
        (4_900_000_000_000_000_000, 18, "4.9"),
        (33_333_333_333_333_333_333, 18, "~33.3333"),
        (1_234_567 * 10**18, 18, "1,234,567"),
        (100_000_000, 6, "100"),
        (1, 6, "0.000001"),
        (868, 18, "0.000000000000000868"),
        (15, 1, "1.5"),
        (0, 18, "0"),
    ],
)
def test_amounts_show_four_decimals_marked_when_rounded(units: int, decimals: int, shown: str) -> None:
    assert amount(units, decimals) == shown


def test_tables_show_dust_as_about_zero() -> None:
    assert amount(418, 18, dust=False) == "~0"
    assert amount(0, 18, dust=False) == "0"


def test_times_are_utc_with_how_far_away() -> None:
    now = 1_796_468_504  # 2026-12-05 11:01:44 UTC
    assert when(now + 21, now) == "11:02:05 UTC (in 21 s)"
    assert when(now - 90, now) == "11:00:14 UTC (90 s ago)"
    assert when(now, now) == "11:01:44 UTC (now)"
    assert when(now + 2 * 86_400, now) == "2026-12-07 11:01:44 UTC (in 2 d)"
    assert utc(now) == "2026-12-05 11:01:44 UTC"
    assert [duration(s) for s in (0, 119, 120, 3_600, 3_660, 7 * 86_400 + 3_600)] == [
        "0 s",
        "119 s",
        "2 min",
        "1 h",
        "1 h 1 min",
        "7 d 1 h",
    ]
