"""Choosing the statistics' period (relying_parties.statistics.choose_period)."""

from __future__ import annotations

import datetime as dt

import pytest

from relying_parties.interfaces import StatisticsPeriodInvalid
from relying_parties.statistics import choose_period, today

TODAY = dt.date(2026, 12, 5)


def test_no_days_chosen_is_the_last_30_days_today_included() -> None:
    period = choose_period(None, "", today=TODAY)
    assert (period.first, period.last) == (dt.date(2026, 11, 6), TODAY)
    assert len(period.days()) == 30


def test_a_last_day_alone_ends_a_30_day_period_and_a_first_day_alone_runs_to_today() -> None:
    period = choose_period(None, "2026-06-30", today=TODAY)
    assert (period.first, period.last) == (dt.date(2026, 6, 1), dt.date(2026, 6, 30))
    period = choose_period(" 2026-12-01 ", None, today=TODAY)
    assert (period.first, period.last) == (dt.date(2026, 12, 1), TODAY)


def test_a_period_is_whole_days_in_taiwan() -> None:
    period = choose_period("2026-12-01", "2026-12-01", today=TODAY)
    assert period.start == dt.datetime(2026, 11, 30, 16, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 12, 1, 16, tzinfo=dt.UTC)
    assert today(dt.datetime(2026, 12, 4, 16, tzinfo=dt.UTC)) == TODAY


@pytest.mark.parametrize(
    ("first", "last", "field", "reason"),
    [
        ("2026-02-30", None, "from", "not_a_date"),
        ("2026-12-01", "12/05/2026", "to", "not_a_date"),
        ("2026-12-06", None, "from", "order"),
        ("2025-12-04", "2026-12-05", "from", "too_long"),
    ],
)
def test_a_wrong_period_names_the_field_and_the_reason(first: str, last: str | None, field: str, reason: str) -> None:
    with pytest.raises(StatisticsPeriodInvalid) as raised:
        choose_period(first, last, today=TODAY)
    assert (raised.value.field, raised.value.reason) == (field, reason)
    assert raised.value.status == 400


def test_a_year_with_a_leap_day_fits() -> None:
    period = choose_period("2027-03-01", "2028-02-29", today=TODAY)
    assert len(period.days()) == 366
