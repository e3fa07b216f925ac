"""Self-download (自行下載, DESIGN §6.5): fetch the citizen's datasets, issue documents, verify them.

A download is a case of its own in the ledger (its id is the ``txn`` the agencies see and the
case id of its entries, with a subject commitment of its own, docs/decisions/0007). The data is
fetched on the broker's parallel path each time it is shown or downloaded and never stored: the
platform keeps only a document's metadata and SHA-256 (:class:`consent.models.Document`), so that
anyone holding the document can check it at ``/verify/<code>`` without the platform keeping a copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select

from consent.interfaces import DocumentExpired, DocumentNotFound, DownloadInvalid
from consent.ledger import LedgerEvent, ledger
from consent.models import Document
from consent.notifications import notify_citizen
from identity.services import get_citizen
from identity.sessions import level_at_least
from mydata.db import UnitOfWork
from providers.interfaces import DatasetFetcher
from providers.protocol import FetchResult, Outcome
from providers.services import DatasetEntry, catalogue

FORMATS = ("json", "csv", "pdf")
VALIDITY = dt.timedelta(days=30)
PURPOSE = "self-download"
"""The purpose the agencies see in a download's queries."""
CITIZEN = "citizen"
VERIFIER = "verifier"
"""The ledger actor of a document check: whoever holds the document (a landlord, a school), unnamed."""
MAX_DATASETS = 20
# Verification codes: 12 characters of an alphabet without 0/O, 1/I/L (read aloud, typed from
# paper), 60 bits; shown in groups of four. Only their SHA-256 is stored.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_LENGTH = 12
_CODE = re.compile(rf"[{_CODE_ALPHABET}]{{{_CODE_LENGTH}}}")
_DATASET_ID = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+")


@dataclass(frozen=True)
class Citizen:
    """Who downloads: the logged-in citizen, as the session knows them."""

    citizen_id: str
    national_id: str
    name: str
    level: str


@dataclass(frozen=True)
class Choice:
    """A dataset of the catalogue as the portal offers it to a citizen at their level."""

    entry: DatasetEntry
    allowed: bool
    """Whether the session's level is enough; if not, the portal offers a step-up to ``entry.min_level``."""


@dataclass(frozen=True)
class Selection:
    """The datasets a citizen picked, checked against the catalogue, and the level they need."""

    entries: tuple[DatasetEntry, ...]
    step_up: str | None
    """The level to step up to first, or None when the session's level is enough."""


@dataclass(frozen=True)
class Download:
    """The result of fetching a citizen's datasets once: a case of the ledger (``id``)."""

    id: str
    entries: tuple[DatasetEntry, ...]
    results: Mapping[str, FetchResult]
    fetched_at: dt.datetime

    @property
    def failed(self) -> dict[str, FetchResult]:
        """Return the datasets that could not be fetched (``no_record`` is an answer, not a failure)."""
        return {d: r for d, r in self.results.items() if not r.outcome.delivered}

    @property
    def delivered(self) -> list[str]:
        """Return the datasets that came back (with data or as ``no_record``), in order."""
        return [e.id for e in self.entries if self.results[e.id].outcome.delivered]

    @property
    def with_data(self) -> list[str]:
        """Return the datasets that came back with data, in order."""
        return [e.id for e in self.entries if self.results[e.id].outcome == Outcome.OK]


@dataclass(frozen=True)
class DocumentHeader:
    """What a document says about itself: id, verification code, issue time and validity."""

    id: str
    code: str
    issued_at: dt.datetime
    valid_until: dt.datetime

    @property
    def display_code(self) -> str:
        """Return the code in groups of four (XXXX-XXXX-XXXX), as printed."""
        return "-".join(self.code[i : i + 4] for i in range(0, len(self.code), 4))


@dataclass(frozen=True)
class IssuedDocument:
    """A rendered document, its header and its SHA-256 (hex)."""

    header: DocumentHeader
    body: bytes
    sha256: str


@dataclass(frozen=True)
class Verification:
    """The outcome of a check: the document's record and, when a file was given, whether it matches."""

    document: Document
    matches: bool | None
    datasets: tuple[DatasetEntry, ...] = ()
    """The document's datasets as the catalogue names them (titles are no personal data)."""


Renderer = Callable[[Download, DocumentHeader], bytes]


# -- choosing -------------------------------------------------------------------------------------


def choices(uow: UnitOfWork, level: str) -> list[Choice]:
    """Return the catalogue's datasets citizens may download, each saying whether *level* is enough."""
    return [
        Choice(entry, level_at_least(level, entry.min_level))
        for entry in catalogue(uow).datasets
        if entry.citizen_downloadable
    ]


def parse_datasets(values: Sequence[str]) -> tuple[str, ...]:
    """Return the dataset ids of a form or a query (``a,b`` or repeated), once each, in order."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if not ids:
        raise DownloadInvalid("Choose at least one dataset.")
    if len(ids) > MAX_DATASETS or any(not _DATASET_ID.fullmatch(i) or len(i) > 100 for i in ids):
        raise DownloadInvalid("The datasets must be dataset ids of the catalogue, separated by commas.")
    return tuple(dict.fromkeys(ids))


def select_datasets(uow: UnitOfWork, dataset_ids: Sequence[str], level: str) -> Selection:
    """Check the picked datasets against the catalogue; say which level to step up to, if any."""
    offered = {choice.entry.id: choice for choice in choices(uow, level)}
    unknown = [d for d in dataset_ids if d not in offered]
    if unknown:
        raise DownloadInvalid(f"These datasets cannot be downloaded here: {', '.join(unknown)}.")
    picked = tuple(offered[d] for d in dataset_ids)
    needed = [c.entry.min_level for c in picked if not c.allowed]
    step_up = max(needed, key=("low", "substantial", "high").index) if needed else None
    return Selection(tuple(c.entry for c in picked), step_up)


def check_format(value: str | None) -> str:
    """Return a download format (json, csv or pdf); raise :class:`DownloadInvalid` for anything else."""
    if value not in FORMATS:
        raise DownloadInvalid("The format must be json, csv or pdf.")
    return value


# -- fetching and issuing -------------------------------------------------------------------------


def fetch(
    uow: UnitOfWork, *, citizen: Citizen, entries: Sequence[DatasetEntry], fetcher: DatasetFetcher, now: dt.datetime
) -> Download:
    """Fetch the datasets in parallel under a new download id (the agencies' ``txn``)."""
    download_id = str(uuid.uuid4())
    results = fetcher(
        uow, national_id=citizen.national_id, datasets=[e.id for e in entries], txn=download_id, purpose=PURPOSE
    )
    return Download(download_id, tuple(entries), results, now)


def record_view(uow: UnitOfWork, download: Download, *, citizen: Citizen) -> None:
    """Record a fetch shown on the portal as its ledger entry (`download.completed`, or `download.failed`)."""
    _append_download(uow, download, citizen=citizen, document_sha256=None)


def issue_document(
    uow: UnitOfWork, download: Download, *, citizen: Citizen, fmt: str, render: Renderer, now: dt.datetime
) -> IssuedDocument:
    """Render a complete download as a document, keep its hash and metadata, and append its ledger entry.

    The caller commits. The verification code is in the document only; the platform keeps its hash.
    """
    issued = record_document(uow, download, document_id=download.id, citizen_id=citizen.citizen_id, fmt=fmt,
                             render=render, now=now)  # fmt: skip
    _append_download(uow, download, citizen=citizen, document_sha256=issued.sha256)
    notify_citizen(uow, citizen_id=citizen.citizen_id, kind="download", recipient=None,
                   datasets=[e.id for e in download.entries], now=now)  # fmt: skip
    return issued


def record_document(
    uow: UnitOfWork,
    download: Download,
    *,
    document_id: str,
    citizen_id: str,
    fmt: str,
    render: Renderer,
    now: dt.datetime,
) -> IssuedDocument:
    """Render *download* under a new verification code and keep the document's hash and metadata.

    The caller appends the ledger entry that tells of it, and commits.
    """
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    header = DocumentHeader(document_id, code, now, now + VALIDITY)
    body = render(download, header)
    digest = hashlib.sha256(body).hexdigest()
    uow.session.add(
        Document(
            id=document_id,
            citizen_id=citizen_id,
            datasets=[e.id for e in download.entries],
            format=fmt,
            sha256=digest,
            code_sha256=_code_digest(code),
            issued_at=header.issued_at,
            valid_until=header.valid_until,
        )
    )
    uow.session.flush()
    return IssuedDocument(header, body, digest)


def record_failed_download(uow: UnitOfWork, download: Download, *, citizen: Citizen) -> None:
    """Record a download that could not be issued because a dataset failed (`download.failed`)."""
    _append_download(uow, download, citizen=citizen, document_sha256=None)


def _append_download(uow: UnitOfWork, download: Download, *, citizen: Citizen, document_sha256: str | None) -> None:
    hashes = {
        dataset: hashlib.sha256(result.provider_jws.encode()).hexdigest()
        for dataset, result in download.results.items()
        if result.provider_jws
    }
    if document_sha256:
        hashes["document"] = document_sha256
    failed = download.failed
    if not failed:
        event, outcome = "download.completed", "ok"
    else:
        event = "download.failed"
        outcome = "partial" if len(failed) < len(download.results) else "failed"
    ledger(uow).record(
        LedgerEvent(
            event=event,
            actor=CITIZEN,
            subject_national_id=citizen.national_id,
            datasets=tuple(e.id for e in download.entries),
            outcome=outcome,
            consent_id=download.id,
            document_hashes=hashes,
        )
    )


# -- verifying ------------------------------------------------------------------------------------


def normalise_code(code: str) -> str | None:
    """Return a verification code as stored (upper case, without spaces or hyphens), or None if it is not one."""
    cleaned = re.sub(r"[\s-]", "", code).upper()[: _CODE_LENGTH + 1]
    return cleaned if _CODE.fullmatch(cleaned) else None


def find_document(uow: UnitOfWork, code: str, *, now: dt.datetime) -> Document:
    """Return the document issued with *code*; raise :class:`DocumentNotFound` or :class:`DocumentExpired`."""
    normalised = normalise_code(code)
    document = None
    if normalised is not None:
        document = uow.session.scalars(
            select(Document).where(Document.code_sha256 == _code_digest(normalised))
        ).one_or_none()
    if document is None:
        raise DocumentNotFound()
    if now >= document.valid_until:
        raise DocumentExpired()
    return document


def verify_document(uow: UnitOfWork, code: str, *, now: dt.datetime, uploaded: bytes | None = None) -> Verification:
    """Check a document by its code (and, given a file, compare its SHA-256); record the check in its case.

    Each check is a `document.verified` entry in the citizen's history (outcome ``confirmed``, or
    ``match`` / ``mismatch`` for a file); the caller commits.
    """
    document = find_document(uow, code, now=now)
    matches = None
    if uploaded is not None:
        matches = hmac.compare_digest(hashlib.sha256(uploaded).hexdigest(), document.sha256)
    citizen = get_citizen(uow, document.citizen_id)
    if citizen is None:  # a document outlives no account: the foreign key forbids it
        raise DocumentNotFound()
    ledger(uow).record(
        LedgerEvent(
            event="document.verified",
            actor=VERIFIER,
            subject_national_id=citizen.national_id,
            datasets=tuple(document.datasets),
            outcome="confirmed" if matches is None else ("match" if matches else "mismatch"),
            consent_id=document.id,
            document_hashes={"document": document.sha256},
        )
    )
    notify_citizen(uow, citizen_id=document.citizen_id, kind="verification", recipient=None,
                   datasets=document.datasets, now=now)  # fmt: skip
    named = {entry.id: entry for entry in catalogue(uow).datasets}
    return Verification(document, matches, tuple(named[d] for d in document.datasets if d in named))


def _code_digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()
