"""Counter verification (臨櫃核驗, DESIGN §6.5): a citizen shows a clerk their data at a service desk.

1. The citizen picks datasets and gets an 8-character code (and its QR code), valid 20 minutes
   (:func:`offer`). Their page holds a fresh key pair; the platform keeps the public half.
2. A clerk of an approved organisation enters the code (:func:`claim`). The platform makes a 6-digit
   confirmation code, keeps its SHA-256, and keeps it encrypted to the citizen's page key, so that
   the citizen's page, and only it, can show it (:func:`citizen_view`); it is also emailed to a
   confirmed address.
3. The citizen reads it out; the clerk enters it within 2 minutes (:func:`confirm`). The clerk may
   then see the data for 15 minutes (:func:`fetch_for_clerk`, :func:`issue_pdf`): each showing is
   fetched from the agencies again (``txn`` = the use's id), never stored, and is a
   ``counter.verified`` entry of the use's own ledger case, with ``counter:<organisation>`` as actor.

Codes are single use and kept only as hashes. Every wrong entry by a clerk (a wrong, used, expired
or cancelled code, or a wrong confirmation) counts: five within 15 minutes lock that clerk's entry
for 15 minutes (:class:`CounterClerkLock`, row-locked like an NHI card's failures, and committed
before the refusal is raised).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from sqlalchemy import select, update

from consent.downloads import Citizen, Download, IssuedDocument, Renderer, record_document
from consent.interfaces import (
    CounterCodeRefused,
    CounterConfirmationRefused,
    CounterLocked,
    CounterUseNotFound,
    CounterViewEnded,
)
from consent.ledger import LedgerEvent, ledger
from consent.models import CounterClerkLock, CounterUse
from consent.notifications import notify_citizen, send_confirmation_code
from identity.services import get_citizen
from mydata.db import UnitOfWork
from providers.interfaces import DatasetFetcher
from providers.services import DatasetEntry, catalogue

OFFER_LIFETIME = dt.timedelta(minutes=20)
CONFIRM_WITHIN = dt.timedelta(minutes=2)
VIEW_LIFETIME = dt.timedelta(minutes=15)
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCK_DURATION = dt.timedelta(minutes=15)
PURPOSE = "counter-verification"
"""The purpose the agencies see in a counter use's queries."""
ACTOR_PREFIX = "counter:"
# The 8-character code: the alphabet of the documents' verification codes (no 0/O, 1/I/L), 39 bits.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
_CODE = re.compile(rf"[{CODE_ALPHABET}]{{{CODE_LENGTH}}}")
_CONFIRMATION = re.compile(r"[0-9]{6}")
_PAGE_KEY_ALG = {"alg": "ECDH-ES", "enc": "A256GCM"}


@dataclass(frozen=True)
class Clerk:
    """Who enters codes at a desk: a staff account with the ``counter`` role of an approved organisation."""

    citizen_id: str
    organisation_id: str
    organisation_name_zh: str
    organisation_name_en: str


@dataclass(frozen=True)
class Offer:
    """A new counter use as its citizen's page gets it: the code (shown once) and the page's private key."""

    use: CounterUse
    code: str
    page_key: dict[str, Any]

    @property
    def display_code(self) -> str:
        """Return the code in two groups of four (XXXX-XXXX), as shown and read out."""
        return display(self.code)


@dataclass(frozen=True)
class CitizenView:
    """What the citizen's page shows of a use: its state and, while a clerk waits, the confirmation code."""

    use: CounterUse
    state: str
    """``offered``, ``claimed``, ``shown``, ``cancelled``, ``expired`` (nobody entered it) or ``void``."""
    confirmation: str | None


def display(code: str) -> str:
    """Return a counter code as shown: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


def normalise_code(code: str) -> str | None:
    """Return a counter code as stored (upper case, no spaces or hyphens), or None if it cannot be one."""
    cleaned = re.sub(r"[\s-]", "", code).upper()[: CODE_LENGTH + 1]
    return cleaned if _CODE.fullmatch(cleaned) else None


def datasets_of(uow: UnitOfWork, use: CounterUse) -> tuple[DatasetEntry, ...]:
    """Return the use's datasets as the catalogue names them (titles are no personal data)."""
    named = {entry.id: entry for entry in catalogue(uow).datasets}
    return tuple(named[d] for d in use.datasets if d in named)


# -- the citizen's side -----------------------------------------------------------------------------


def offer(uow: UnitOfWork, *, citizen: Citizen, entries: Sequence[DatasetEntry], now: dt.datetime) -> Offer:
    """Start a counter use for the chosen datasets; cancel the citizen's earlier open ones. The caller commits.

    The datasets were checked against the catalogue and the citizen's level by the caller
    (:func:`consent.downloads.select_datasets`).
    """
    _cancel_open(uow, citizen.citizen_id, now)
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    key = ECKey.generate_key("P-256", private=True)
    use = CounterUse(
        id=str(uuid.uuid4()),
        citizen_id=citizen.citizen_id,
        datasets=[e.id for e in entries],
        status="offered",
        code_sha256=_digest(code),
        page_key=key.as_dict(private=False),
        created_at=now,
        expires_at=now + OFFER_LIFETIME,
    )
    uow.session.add(use)
    uow.session.flush()
    return Offer(use, code, key.as_dict(private=True))


def cancel(uow: UnitOfWork, *, citizen_id: str, use_id: str, now: dt.datetime) -> CounterUse:
    """Cancel a use the citizen no longer wants; a use already shown stays as it is. The caller commits."""
    use = _citizens_use(uow, citizen_id, use_id, lock=True)
    if use.status in ("offered", "claimed"):
        use.status, use.ended_at = "cancelled", now
    return use


def citizen_view(
    uow: UnitOfWork, *, citizen_id: str, use_id: str, page_key: dict[str, Any] | None, now: dt.datetime
) -> CitizenView:
    """Return the state of the citizen's use, with the confirmation code when a clerk waits for it.

    *page_key* is the private key the citizen's page was given with the offer (None if this browser
    does not hold it: then the code can be read only in the email).
    """
    use = _citizens_use(uow, citizen_id, use_id)
    state = _state(use, now)
    confirmation = None
    if state == "claimed" and page_key is not None and use.confirmation_jwe:
        try:
            key = ECKey.import_key(page_key)
            confirmation = jwe.decrypt_compact(use.confirmation_jwe, key).plaintext.decode()  # type: ignore[union-attr]
        except (JoseError, ValueError):
            confirmation = None  # another use's key: this page does not hold this use's key
    return CitizenView(use, state, confirmation)


def latest_use(uow: UnitOfWork, citizen_id: str) -> CounterUse | None:
    """Return the citizen's most recent counter use, if any."""
    return uow.session.scalars(
        select(CounterUse).where(CounterUse.citizen_id == citizen_id).order_by(CounterUse.created_at.desc()).limit(1)
    ).first()


# -- the clerk's side -------------------------------------------------------------------------------


def claim(uow: UnitOfWork, *, clerk: Clerk, code: str, now: dt.datetime) -> CounterUse:
    """Take the citizen's code for *clerk*; make, keep (hashed and sealed) and send the confirmation code.

    Raise :class:`CounterLocked` while the clerk is locked (the code is not even looked at), or
    :class:`CounterCodeRefused` naming why (``unknown``, ``used``, ``cancelled``, ``expired``) with
    the entries left; the failure is committed first. On success, the caller commits.
    """
    lock = _clerk_lock(uow, clerk.citizen_id, now)
    normalised = normalise_code(code)
    use = None
    if normalised is not None:
        use = uow.session.scalars(
            select(CounterUse).where(CounterUse.code_sha256 == _digest(normalised)).with_for_update()
        ).one_or_none()
    reason = _code_refusal(use, now)
    if reason is not None or use is None:
        left = _fail(uow, lock, now)
        raise CounterCodeRefused(reason or "unknown", attempts_left=left)
    confirmation = f"{secrets.randbelow(1_000_000):06d}"
    use.status = "claimed"
    use.clerk_id = clerk.citizen_id
    use.organisation_id = clerk.organisation_id
    use.organisation_name_zh = clerk.organisation_name_zh
    use.organisation_name_en = clerk.organisation_name_en
    use.claimed_at = now
    use.confirmation_sha256 = _confirmation_digest(use.id, confirmation)
    use.confirmation_jwe = jwe.encrypt_compact(
        dict(_PAGE_KEY_ALG), confirmation.encode(), ECKey.import_key(dict(use.page_key))
    )
    send_confirmation_code(
        uow, citizen_id=use.citizen_id, code=confirmation, recipient=clerk.organisation_name_zh, now=now
    )
    return use


def clerk_use(uow: UnitOfWork, *, clerk: Clerk, use_id: str, now: dt.datetime) -> CounterUse:
    """Return a use this clerk claimed (any state), or raise :class:`CounterUseNotFound`."""
    use = uow.session.get(CounterUse, use_id)
    if use is None or use.clerk_id != clerk.citizen_id or use.organisation_id != clerk.organisation_id:
        raise CounterUseNotFound()
    return use


def confirm(uow: UnitOfWork, *, clerk: Clerk, use_id: str, confirmation: str, now: dt.datetime) -> CounterUse:
    """Check the confirmation code the citizen read out; open the clerk's 15 minutes with the data.

    Raise :class:`CounterLocked`, or :class:`CounterConfirmationRefused` (``wrong``: a wrong entry,
    committed first; ``late``: the 2 minutes passed and the use is void; ``ended``: the use is no
    longer waiting). On success, the caller commits.
    """
    lock = _clerk_lock(uow, clerk.citizen_id, now)
    use = clerk_use(uow, clerk=clerk, use_id=use_id, now=now)
    uow.session.refresh(use, with_for_update=True)
    if use.status != "claimed":
        raise CounterConfirmationRefused("ended", attempts_left=_left(lock, now))
    assert use.claimed_at is not None
    assert use.confirmation_sha256 is not None
    if now >= use.claimed_at + CONFIRM_WITHIN or now >= use.expires_at:
        use.status, use.ended_at = "void", now
        uow.commit()
        raise CounterConfirmationRefused("late", attempts_left=_left(lock, now))
    given = confirmation.strip()
    if not (
        _CONFIRMATION.fullmatch(given)
        and hmac.compare_digest(_confirmation_digest(use.id, given), use.confirmation_sha256)
    ):
        left = _fail(uow, lock, now)
        raise CounterConfirmationRefused("wrong", attempts_left=left)
    use.status, use.shown_at, use.view_until = "shown", now, now + VIEW_LIFETIME
    use.confirmation_jwe = None  # done with: nothing about it is kept but its hash
    return use


def fetch_for_clerk(
    uow: UnitOfWork, *, clerk: Clerk, use_id: str, fetcher: DatasetFetcher, now: dt.datetime
) -> Download:
    """Fetch the use's datasets for the clerk to see (never stored); record the showing. The caller commits."""
    use = _open_view(uow, clerk, use_id, now)
    download = _fetch(uow, use, fetcher, now)
    _record(uow, use, download, document_sha256=None, now=now)
    return download


def issue_pdf(
    uow: UnitOfWork,
    *,
    clerk: Clerk,
    use_id: str,
    fetcher: DatasetFetcher,
    render: Renderer,
    now: dt.datetime,
) -> tuple[Download, IssuedDocument | None]:
    """Fetch the datasets again and issue them as a document with a verification code, like a self-download.

    Return the download and the document, or no document when a dataset failed (the showing is
    still recorded). The caller commits.
    """
    use = _open_view(uow, clerk, use_id, now)
    download = _fetch(uow, use, fetcher, now)
    if download.failed:
        _record(uow, use, download, document_sha256=None, now=now)
        return download, None
    issued = record_document(
        uow, download, document_id=str(uuid.uuid4()), citizen_id=use.citizen_id, fmt="pdf", render=render, now=now
    )
    _record(uow, use, download, document_sha256=issued.sha256, now=now)
    return download, issued


def citizen_of(uow: UnitOfWork, use: CounterUse) -> Citizen:
    """Return the citizen a use is about, as the documents name them."""
    account = get_citizen(uow, use.citizen_id)
    assert account is not None  # foreign key
    return Citizen(account.id, account.national_id, account.name, "high")


# -- internals --------------------------------------------------------------------------------------


def _state(use: CounterUse, now: dt.datetime) -> str:
    if use.status == "offered" and now >= use.expires_at:
        return "expired"
    if use.status == "claimed" and use.claimed_at is not None and now >= use.claimed_at + CONFIRM_WITHIN:
        return "void"
    return use.status


def _code_refusal(use: CounterUse | None, now: dt.datetime) -> str | None:
    if use is None:
        return "unknown"
    if use.status == "cancelled":
        return "cancelled"
    if use.status != "offered":
        return "used"
    if now >= use.expires_at:
        return "expired"
    return None


def _open_view(uow: UnitOfWork, clerk: Clerk, use_id: str, now: dt.datetime) -> CounterUse:
    use = clerk_use(uow, clerk=clerk, use_id=use_id, now=now)
    if use.status != "shown" or use.view_until is None or now >= use.view_until:
        raise CounterViewEnded()
    return use


def _fetch(uow: UnitOfWork, use: CounterUse, fetcher: DatasetFetcher, now: dt.datetime) -> Download:
    citizen = citizen_of(uow, use)
    entries = datasets_of(uow, use)
    results = fetcher(uow, national_id=citizen.national_id, datasets=[e.id for e in entries], txn=use.id,
                      purpose=PURPOSE)  # fmt: skip
    return Download(use.id, entries, results, now)


def _record(
    uow: UnitOfWork, use: CounterUse, download: Download, *, document_sha256: str | None, now: dt.datetime
) -> None:
    """Append the showing to the use's case (``counter.verified``) and tell the citizen."""
    hashes = {
        dataset: hashlib.sha256(result.provider_jws.encode()).hexdigest()
        for dataset, result in download.results.items()
        if result.provider_jws
    }
    if document_sha256:
        hashes["document"] = document_sha256
    failed = download.failed
    outcome = "ok" if not failed else ("partial" if len(failed) < len(download.results) else "failed")
    citizen = citizen_of(uow, use)
    assert use.organisation_id is not None
    ledger(uow).record(
        LedgerEvent(
            event="counter.verified",
            actor=ACTOR_PREFIX + use.organisation_id,
            subject_national_id=citizen.national_id,
            datasets=tuple(use.datasets),
            outcome=outcome,
            consent_id=use.id,
            document_hashes=hashes,
        )
    )
    notify_citizen(uow, citizen_id=use.citizen_id, kind="counter", recipient=use.organisation_name_zh,
                   datasets=use.datasets, now=now)  # fmt: skip


def _citizens_use(uow: UnitOfWork, citizen_id: str, use_id: str, *, lock: bool = False) -> CounterUse:
    query = select(CounterUse).where(CounterUse.id == use_id, CounterUse.citizen_id == citizen_id)
    use = uow.session.scalars(query.with_for_update() if lock else query).one_or_none()
    if use is None:
        raise CounterUseNotFound()
    return use


def _cancel_open(uow: UnitOfWork, citizen_id: str, now: dt.datetime) -> None:
    uow.session.execute(
        update(CounterUse)
        .where(CounterUse.citizen_id == citizen_id, CounterUse.status.in_(("offered", "claimed")))
        .values(status="cancelled", ended_at=now)
    )


def _clerk_lock(uow: UnitOfWork, clerk_id: str, now: dt.datetime) -> CounterClerkLock:
    """Return the clerk's failure record, row-locked; raise :class:`CounterLocked` while the lock lasts."""
    record = uow.session.get(CounterClerkLock, clerk_id, with_for_update=True)
    if record is None:
        record = CounterClerkLock(clerk_id=clerk_id, recent_failures=[], locked_until=None)
        uow.session.add(record)
        uow.session.flush()
    if record.locked_until is not None and now < record.locked_until:
        raise CounterLocked(record.locked_until)
    return record


def _left(record: CounterClerkLock, now: dt.datetime) -> int:
    cutoff = (now - FAILURE_WINDOW).timestamp()
    return MAX_FAILURES - len([t for t in record.recent_failures if t > cutoff])


def _fail(uow: UnitOfWork, record: CounterClerkLock, now: dt.datetime) -> int:
    """Count a wrong entry and commit it; raise :class:`CounterLocked` on the fifth; return the entries left."""
    cutoff = (now - FAILURE_WINDOW).timestamp()
    failures = [t for t in record.recent_failures if t > cutoff] + [int(now.timestamp())]
    if len(failures) >= MAX_FAILURES:
        record.recent_failures, record.locked_until = [], now + LOCK_DURATION
        uow.commit()
        raise CounterLocked(record.locked_until)
    record.recent_failures = failures
    uow.commit()
    return MAX_FAILURES - len(failures)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def _confirmation_digest(use_id: str, confirmation: str) -> str:
    return hashlib.sha256(f"{use_id}\x00{confirmation}".encode()).hexdigest()
