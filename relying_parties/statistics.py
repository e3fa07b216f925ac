"""The operator's statistics (issue 13): the ledger's figures, named, with the providers' health and circuits.

The figures come from :mod:`consent.statistics` (counted from the ledger); this module adds what the
operator reads them with: the organisations' names, and each provider's health check (the same as
`mydata providers check`) with the state of its circuit breaker in this platform process.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from consent.statistics import TAIPEI, LedgerStatistics, Period, ledger_statistics
from mydata.db import UnitOfWork
from providers import services as providers_services
from relying_parties import services
from relying_parties.interfaces import StatisticsPeriodInvalid

#: The period shown when none is chosen: the last 30 days, today included.
DEFAULT_DAYS = 30
#: The longest period one page covers (a year, leap day included).
MAX_DAYS = 366


@dataclass(frozen=True)
class ProviderState:
    """One provider's registration status, health check and circuit-breaker state."""

    provider: str
    agency: str
    status: str
    healthy: bool
    result: str
    elapsed_ms: int
    circuit: str


@dataclass(frozen=True)
class OperatorStatistics:
    """The statistics page's figures: the ledger's, the organisations' names, and the providers' states."""

    figures: LedgerStatistics
    organisation_names: dict[str, tuple[str, str]]
    providers: list[ProviderState]


def choose_period(first: str | None, last: str | None, *, today: dt.date) -> Period:
    """Return the period from the form's days (YYYY-MM-DD), or the last 30 days; raise :class:`StatisticsPeriodInvalid`.

    An empty first day is 29 days before the last; an empty last day is today.
    """
    last_day = _day("to", last) or today
    first_day = _day("from", first) or last_day - dt.timedelta(days=DEFAULT_DAYS - 1)
    if first_day > last_day:
        raise StatisticsPeriodInvalid("from", "order")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise StatisticsPeriodInvalid("from", "too_long")
    return Period(first_day, last_day)


def today(now: dt.datetime) -> dt.date:
    """Return the day it is in Taiwan at *now*."""
    return now.astimezone(TAIPEI).date()


def _day(field: str, text: str | None) -> dt.date | None:
    if text is None or not text.strip():
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise StatisticsPeriodInvalid(field, "not_a_date") from None


def operator_statistics(uow: UnitOfWork, period: Period) -> OperatorStatistics:
    """Return the period's figures from the ledger, the organisations' names and every provider's state."""
    figures = ledger_statistics(uow, period)
    names = {o.id: (o.name_zh, o.name_en) for o in services.list_organisations(uow)}
    return OperatorStatistics(figures, names, provider_states(uow))


def provider_states(uow: UnitOfWork) -> list[ProviderState]:
    """Check every provider's health now, and read its circuit breaker in this process."""
    breakers = providers_services.provider_client().breakers
    return [
        ProviderState(
            provider=health.provider,
            agency=health.agency,
            status=health.status,
            healthy=health.check.ok,
            result=health.check.result,
            elapsed_ms=health.check.elapsed_ms,
            # A provider no delivery has called yet gets a closed circuit here, as its first call would.
            circuit=str(breakers[health.provider].state),
        )
        for health in providers_services.check_providers(uow)
    ]
