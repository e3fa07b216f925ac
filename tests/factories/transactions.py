"""A seeded set of transactions for the statistics tests: deliveries, denials, a revoke, provider failures.

Driven through the consent services, as the platform drives them, on the app's frozen clock: the
ledger records each step at the clock's time, so days and latencies are known.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from consent import consents
from consent.interfaces import ConsentExpired
from consent.statistics import TAIPEI
from identity.oauth.clients import register_client
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork
from tests.factories.consent import TERMS
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty

BANK_CLIENT, SCHOOL_CLIENT = "stats-bank-web", "stats-school-web"
SCHOOL_TERMS = replace(
    TERMS,
    organisation_id="sandbox-school",
    organisation_name="沙盒學校",
    service_id="sandbox-school.tuition-waiver",
    datasets_optional=(),
)
CITIZENS = ("A123456789", "B223456782")
OK = {"household.registration": "ok", "tax.income": "ok"}


def start_of_business(clock: FrozenClock) -> dt.date:
    """Move the clock to the next 10:00 in Taipei and return that day (so no step crosses midnight)."""
    now = clock.now().astimezone(TAIPEI)
    ten = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(10), TAIPEI)
    clock.advance((ten - now).total_seconds())
    return ten.date()


def seed_transactions(uow: UnitOfWork, clock: FrozenClock) -> dt.date:
    """Seed two days of transactions for two clients; return the first day (Taipei).

    Day 1: bank A delivered 30 s after its grant, without its optional dataset (unavailable); bank B
    denied; school C revoked; bank D failed (tax.income timed out) and then expired. Day 2: school E
    delivered after 120 s; bank F delivered after 10 s; bank G asked and not yet answered.
    """
    for client_id, organisation in ((BANK_CLIENT, "sandbox-bank"), (SCHOOL_CLIENT, "sandbox-school")):
        rp = TestRelyingParty(client_id=client_id, redirect_uri="https://rp.example/cb")
        register_client(uow, clock, name="測試", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                        organisation_id=organisation, client_id=client_id)  # fmt: skip
    citizens = [make_citizen(uow, national_id, clock.now()) for national_id in CITIZENS]
    first_day = start_of_business(clock)

    def ask(client_id: str) -> str:
        terms = TERMS if client_id == BANK_CLIENT else SCHOOL_TERMS
        consent = consents.record_request(uow, client_id=client_id, terms=terms, now=clock.now())
        uow.commit()
        return consent.id

    def grant(consent_id: str, n: int = 0, optional: tuple[str, ...] = ()) -> None:
        citizen = citizens[n]
        consents.grant(uow, consent_id, citizen_id=citizen.id, national_id=citizen.national_id,
                       optional_chosen=optional, amr=("sc",), now=clock.now())  # fmt: skip
        uow.commit()

    def deliver(consent_id: str, outcomes: dict[str, str], n: int = 0) -> None:
        national_id = citizens[n].national_id
        consent = consents.claim_for_delivery(uow, consent_id, national_id=national_id, now=clock.now())
        if all(outcomes[d] in consents.DELIVERED_OUTCOMES for d in consent.datasets_required):
            consents.complete_delivery(uow, consent, national_id=national_id, outcomes=outcomes,
                                       document_hashes=dict.fromkeys(outcomes, "0" * 64), now=clock.now())  # fmt: skip
        else:
            consents.record_failed_delivery(uow, consent, national_id=national_id, outcomes=outcomes)
        uow.commit()

    a = ask(BANK_CLIENT)
    grant(a, optional=("tax.property",))
    clock.advance(30)
    deliver(a, {**OK, "tax.property": "unavailable"})
    b = ask(BANK_CLIENT)
    consents.deny(uow, b, citizen_id=citizens[1].id, national_id=citizens[1].national_id, now=clock.now())
    uow.commit()
    c = ask(SCHOOL_CLIENT)
    grant(c, n=1)
    consents.revoke(uow, c, citizen_id=citizens[1].id, national_id=citizens[1].national_id, now=clock.now())
    uow.commit()
    d = ask(BANK_CLIENT)
    grant(d)
    clock.advance(5)
    deliver(d, {"household.registration": "ok", "tax.income": "timeout"})
    clock.advance(11 * 60)
    try:
        consents.claim_for_delivery(uow, d, national_id=citizens[0].national_id, now=clock.now())
    except ConsentExpired:
        pass
    else:  # pragma: no cover - the window is 10 minutes
        raise AssertionError("the consent should have expired")

    clock.advance(24 * 3600)
    e = ask(SCHOOL_CLIENT)
    grant(e, n=1)
    clock.advance(120)
    deliver(e, OK, n=1)
    f = ask(BANK_CLIENT)
    grant(f)
    clock.advance(10)
    deliver(f, OK)
    ask(BANK_CLIENT)
    return first_day
