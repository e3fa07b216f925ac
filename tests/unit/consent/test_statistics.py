"""The platform's statistics from the ledger (consent.statistics): each figure of a seeded set of transactions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask import Flask

from consent.statistics import Period, ledger_statistics, nearest_rank
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from tests.factories.transactions import seed_transactions

pytestmark = pytest.mark.db


@pytest.fixture
def uow(app: Flask) -> Iterator[UnitOfWork]:
    with app.app_context(), get_db().unit_of_work() as unit:
        key_store(unit).rotate()
        yield unit


@pytest.fixture
def first_day(uow: UnitOfWork, clock: FrozenClock) -> dt.date:
    return seed_transactions(uow, clock)


def both_days(first_day: dt.date) -> Period:
    return Period(first_day, first_day + dt.timedelta(days=1))


def test_transactions_are_counted_per_day_with_every_day_of_the_period(uow: UnitOfWork, first_day: dt.date) -> None:
    week = Period(first_day - dt.timedelta(days=2), first_day + dt.timedelta(days=4))
    figures = ledger_statistics(uow, week)
    assert figures.transactions == 7
    assert len(figures.per_day) == 7
    assert dict(figures.per_day) == {
        first_day - dt.timedelta(days=2): 0,
        first_day - dt.timedelta(days=1): 0,
        first_day: 4,
        first_day + dt.timedelta(days=1): 3,
        first_day + dt.timedelta(days=2): 0,
        first_day + dt.timedelta(days=3): 0,
        first_day + dt.timedelta(days=4): 0,
    }


def test_transactions_per_dataset_and_per_relying_party(uow: UnitOfWork, first_day: dt.date) -> None:
    figures = ledger_statistics(uow, both_days(first_day))
    assert figures.per_dataset == [("household.registration", 7), ("tax.income", 7), ("tax.property", 5)]
    assert figures.per_organisation == [("sandbox-bank", 5), ("sandbox-school", 2)]


def test_outcomes_and_provider_failures_by_kind(uow: UnitOfWork, first_day: dt.date) -> None:
    figures = ledger_statistics(uow, both_days(first_day))
    assert figures.outcomes == {"delivered": 3, "denied": 1, "expired": 1, "revoked": 1, "provider_failures": 1}
    # The bank's failed delivery (tax.income timed out), and its optional dataset delivered without.
    assert figures.failure_kinds == [("timeout", 1), ("unavailable", 1)]


def test_delivery_latency_percentiles_from_grant_to_delivery(uow: UnitOfWork, first_day: dt.date) -> None:
    figures = ledger_statistics(uow, both_days(first_day))
    # 30 s, 120 s and 10 s.
    assert figures.latency.count == 3
    assert figures.latency.percentiles == {50: 30.0, 95: 120.0, 99: 120.0}


def test_only_the_entries_of_the_period_count(uow: UnitOfWork, first_day: dt.date) -> None:
    second = first_day + dt.timedelta(days=1)
    figures = ledger_statistics(uow, Period(second, second))
    assert figures.transactions == 3
    assert figures.per_organisation == [("sandbox-bank", 2), ("sandbox-school", 1)]
    assert figures.outcomes == {"delivered": 2, "denied": 0, "expired": 0, "revoked": 0, "provider_failures": 0}
    assert figures.failure_kinds == []
    assert figures.latency.percentiles == {50: 10.0, 95: 120.0, 99: 120.0}
    before = ledger_statistics(uow, Period(first_day - dt.timedelta(days=30), first_day - dt.timedelta(days=1)))
    assert before.transactions == 0
    assert before.latency.count == 0
    assert before.latency.percentiles == {}


def test_a_ledger_with_no_entries_gives_zeros(uow: UnitOfWork) -> None:
    today = dt.date(2026, 12, 1)
    figures = ledger_statistics(uow, Period(today, today))
    assert figures.transactions == 0
    assert figures.per_day == [(today, 0)]
    assert figures.per_dataset == []


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert nearest_rank(values, 50) == 50.0
    assert nearest_rank(values, 95) == 95.0
    assert nearest_rank([5.0], 99) == 5.0
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0
    with pytest.raises(ValueError, match="no values"):
        nearest_rank([], 50)
