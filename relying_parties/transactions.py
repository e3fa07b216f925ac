"""An organisation's transaction log (issue 13): its services' consents and its clerks' counter uses.

One log, read by the relying-party console (:mod:`relying_parties.rp_transactions`) and by the
organisation's own systems (``GET /api/v1/organisation/transactions``). A transaction names its
case by id and, for a consent, by the pairwise subject the organisation's client knows the citizen
by; never by name or national ID (issue 13: consoles never show a citizen's identity).

Pages are keyset pages, newest first by (time, case id): the cursor is the last transaction shown,
so a page never repeats or skips a transaction when new ones arrive meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion

from consent.cases import CaseWindow, organisation_consents, organisation_counter_uses, pairwise_subjects
from consent.models import Consent, CounterUse
from identity.oauth import server as oauth
from identity.oauth.services import endpoint_url, server
from mydata.db import UnitOfWork
from relying_parties.interfaces import InvalidClientAssertion, InvalidInput, MissingClientAssertion

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
#: Date filters are days in Taiwan time (UTC+8, no daylight saving time).
TAIWAN = dt.timezone(dt.timedelta(hours=8))
CONSENT, COUNTER = "consent", "counter"
KINDS = (CONSENT, COUNTER)
#: A consent's states (DESIGN §6.1), then a counter use's once a clerk claimed it (DESIGN §6.5).
STATUSES = (
    *("requested", "granted", "denied", "expired", "delivered", "revoked"),
    *("claimed", "shown", "void", "cancelled"),
)
#: Most transactions one CSV export holds (the newest, in the filter's order).
MAX_EXPORT = 10_000


@dataclass(frozen=True)
class Transaction:
    """One case of the organisation: what happened when, to which datasets, for which pairwise subject."""

    time: dt.datetime
    kind: str
    case_id: str
    service_id: str | None
    subject: str | None
    status: str
    datasets: tuple[str, ...]
    outcomes: dict[str, str] = field(default_factory=dict)
    """Each delivered dataset's outcome (``ok``, ``no_record``, a provider failure), once there was a delivery."""
    decided_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None


@dataclass(frozen=True)
class TransactionFilter:
    """Which transactions: Taiwan days from ``since`` to ``until`` (both included), a service, a status, a kind."""

    since: dt.date | None = None
    until: dt.date | None = None
    service_id: str | None = None
    status: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class TransactionPage:
    """One page of transactions, and the cursor of the next page (None on the last)."""

    transactions: list[Transaction]
    next_cursor: str | None


def organisation_transactions(
    uow: UnitOfWork,
    organisation_id: str,
    wanted: TransactionFilter = TransactionFilter(),
    *,
    cursor: str | None = None,
    page_size: int = PAGE_SIZE,
) -> TransactionPage:
    """Return one page of the organisation's transactions, newest first; raise :class:`InvalidInput` on bad input."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidInput(fields={"page_size": [f"Must be between 1 and {MAX_PAGE_SIZE}."]})
    if wanted.kind is not None and wanted.kind not in KINDS:
        raise InvalidInput(fields={"kind": [f"Must be one of: {', '.join(KINDS)}."]})
    if wanted.status is not None and wanted.status not in STATUSES:
        raise InvalidInput(fields={"status": [f"Must be one of: {', '.join(STATUSES)}."]})
    if wanted.since is not None and wanted.until is not None and wanted.until < wanted.since:
        raise InvalidInput(fields={"until": ["Must not be before since."]})
    window = CaseWindow(
        since=_start_of(wanted.since) if wanted.since else None,
        until=_start_of(wanted.until + dt.timedelta(days=1)) if wanted.until else None,
        service_id=wanted.service_id,
        status=wanted.status,
        after=decode_cursor(cursor) if cursor else None,
    )
    # One more than a page of each kind: the merge then knows whether another page follows.
    consents = organisation_consents(uow, organisation_id, window, page_size + 1) if wanted.kind != COUNTER else []
    uses = organisation_counter_uses(uow, organisation_id, window, page_size + 1) if wanted.kind != CONSENT else []
    subjects = pairwise_subjects(uow, organisation_id, consents)
    merged = sorted(
        [*(_of_consent(c, subjects.get(c.id)) for c in consents), *(_of_counter_use(u) for u in uses)],
        key=lambda t: (t.time, t.case_id),
        reverse=True,
    )
    page = merged[:page_size]
    more = len(merged) > page_size
    return TransactionPage(page, encode_cursor(page[-1]) if more and page else None)


def authenticate_client(assertion: str | None, path: str) -> str:
    """Return the organisation of the client a private_key_jwt assertion authenticates, or raise InvalidClientAssertion.

    The token endpoint's own check (:class:`identity.oauth.server.PrivateKeyJwt`): ES256 or PS256
    with a registered key, iss = sub = an active client, `aud` the issuer identifier as a single
    string, `exp` at most 5 minutes ahead, and a `jti` used once, here or at any other endpoint
    (RFC 7523 §3; it is recorded, and committed, whatever the request's outcome).
    """
    if not assertion:
        raise MissingClientAssertion()
    params = {"client_assertion_type": JWTBearerClientAssertion.CLIENT_ASSERTION_TYPE, "client_assertion": assertion}
    request = oauth.prepared_request(params, endpoint_url(path), method="GET")
    try:
        client: oauth.Client = server().authenticate_client(request, [oauth.PrivateKeyJwt.CLIENT_AUTH_METHOD], "token")
    except InvalidClientError as error:
        raise InvalidClientAssertion(f"The client assertion is refused: {error.description}") from None
    if client.record.organisation_id is None:
        raise InvalidClientAssertion("This client belongs to no organisation: it has no transaction log.")
    return client.record.organisation_id


def all_transactions(uow: UnitOfWork, organisation_id: str, wanted: TransactionFilter) -> Iterator[Transaction]:
    """Yield the organisation's transactions in *wanted*, newest first, at most :data:`MAX_EXPORT` (the CSV export)."""
    cursor: str | None = None
    count = 0
    while True:
        page = organisation_transactions(uow, organisation_id, wanted, cursor=cursor, page_size=MAX_PAGE_SIZE)
        for transaction in page.transactions:
            if count == MAX_EXPORT:
                return
            count += 1
            yield transaction
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def encode_cursor(last: Transaction) -> str:
    """Return the opaque cursor that continues after *last*."""
    raw = json.dumps([last.time.isoformat(), last.case_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    """Return the (time, case id) a cursor continues after; raise :class:`InvalidInput` if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, case_id = json.loads(raw)
        time = dt.datetime.fromisoformat(at)
        if not isinstance(case_id, str) or time.tzinfo is None:
            raise ValueError(cursor)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(fields={"cursor": ["Not a cursor: use next_cursor of the previous page."]}) from None
    return time.astimezone(dt.UTC), case_id


def _start_of(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), TAIWAN).astimezone(dt.UTC)


def _of_consent(consent: Consent, subject: str | None) -> Transaction:
    datasets = consent.datasets_granted or [*consent.datasets_required, *consent.datasets_optional]
    return Transaction(
        time=consent.requested_at,
        kind=CONSENT,
        case_id=consent.id,
        service_id=consent.service_id,
        subject=subject,
        status=consent.status,
        datasets=tuple(datasets),
        outcomes=dict(consent.delivery_outcomes or {}),
        decided_at=consent.decided_at,
        delivered_at=consent.delivered_at,
    )


def _of_counter_use(use: CounterUse) -> Transaction:
    assert use.claimed_at is not None  # organisation_counter_uses reads claimed uses only
    return Transaction(
        time=use.claimed_at,
        kind=COUNTER,
        case_id=use.id,
        service_id=None,
        subject=None,  # the citizen was at the desk: no client of the organisation knows them by a `sub`
        status=use.status,
        datasets=tuple(use.datasets),
        decided_at=use.shown_at,
    )
