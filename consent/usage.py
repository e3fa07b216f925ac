"""How often datasets were used, and by which services: counts only, for the agency console (issue 13).

Read from the consent rows, without any citizen's identity: a consent names its service and the
datasets it asked for, was granted and was delivered. The counts are grouped by dataset and
service, so no row of the answer is about one person.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select

from consent.consents import DELIVERED_OUTCOMES
from consent.models import Consent
from mydata.db import UnitOfWork

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class DatasetUse:
    """How one service used one dataset in a period: requests that asked for it, deliveries that included it."""

    dataset: str
    service: str
    organisation: str
    requested: int
    delivered: int


def dataset_usage(
    uow: UnitOfWork, datasets: Collection[str], *, since: dt.datetime, until: dt.datetime
) -> list[DatasetUse]:
    """Count, per dataset of *datasets* and service, requests made and deliveries done from *since* to *until*."""
    wanted = set(datasets)
    if not wanted:
        return []
    rows = uow.session.execute(
        select(
            Consent.service_id,
            Consent.organisation_id,
            Consent.requested_at,
            Consent.delivered_at,
            Consent.datasets_required,
            Consent.datasets_optional,
            Consent.datasets_granted,
            Consent.delivery_outcomes,
        ).where(
            or_(
                Consent.requested_at.between(since, until),
                Consent.delivered_at.between(since, until),
            )
        )
    )
    requested: Counter[tuple[str, str, str]] = Counter()
    delivered: Counter[tuple[str, str, str]] = Counter()
    for service, organisation, requested_at, delivered_at, required, optional, granted, outcomes in rows:
        if since <= requested_at <= until:
            for dataset in wanted.intersection([*(required or ()), *(optional or ())]):
                requested[(dataset, service, organisation)] += 1
        if delivered_at is not None and since <= delivered_at <= until:
            for dataset in wanted.intersection(granted or ()):
                if (outcomes or {}).get(dataset, "ok") in DELIVERED_OUTCOMES:
                    delivered[(dataset, service, organisation)] += 1
    keys = sorted(set(requested) | set(delivered))
    return [DatasetUse(d, s, o, requested[(d, s, o)], delivered[(d, s, o)]) for d, s, o in keys]
