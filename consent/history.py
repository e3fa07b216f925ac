"""Usage history (使用紀錄): every ledger entry about a citizen, newest first (DESIGN §6.4).

The history is read from the ledger itself, so what the citizen sees is exactly what anyone can
verify; the consents add the relying party's name and the purpose. The citizen's entries are found
privately: version 1 entries carry the citizen's subject key, version 2 entries the commitment of
one of the citizen's cases (:class:`consent.models.CaseOpening`), and each of those comes with its
opening so that the citizen can check the commitment is theirs.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
import json
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from sqlalchemy import CompoundSelect, LargeBinary, cast, null, select, union_all

from consent import merkle
from consent.interfaces import (
    HistoryEntryNotFound,
    LedgerQueryInvalid,
    LedgerVerificationFailed,
    ServiceDirectory,
    ServiceName,
)
from consent.ledger import (
    InclusionProof,
    SignedTreeHead,
    SubjectOpening,
    check_tree_head_signature,
    ledger,
    normalise_national_id,
    parse_rfc3339,
    subject_commitment,
)
from consent.models import CaseOpening, Consent, CounterUse, LedgerEntry
from mydata import canonical_json
from mydata.db import UnitOfWork
from providers.services import DatasetEntry, catalogue

MAX_EVENTS = 1000
PAGE_SIZE = 20
SERVICE_DIRECTORY = "consent.service_directory"
BUNDLE_FORMAT = "mydata-proof-bundle/1"
"""The ``format`` of a proof bundle; docs/transparency.md describes this version."""


@dataclass(frozen=True)
class HistoryEvent:
    """One thing that happened to a citizen's data, with the ledger entry that proves it."""

    seq: int
    version: int
    time: dt.datetime
    subject: str | None
    opening: SubjectOpening | None
    """The opening of a version 2 entry's subject commitment; None for version 1 (a keyed hash)."""
    event: str
    actor: str
    service: str | None
    datasets: tuple[str, ...]
    outcome: str
    consent_id: str | None
    recipient: str | None
    purpose: str | None
    recipient_name: str | None = None
    """The relying party's name as the citizen was shown it when they were asked."""
    recipient_name_en: str | None = None
    """Its English name, where the case kept one (a counter use)."""
    has_receipt: bool = False
    """Whether the event's case is a consent with a signed receipt (:func:`receipt_of`)."""


@dataclass(frozen=True)
class HistoryFilter:
    """What the citizen narrows the history to; empty fields do not filter."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    recipient: str | None = None
    dataset: str | None = None
    event: str | None = None


def usage_history(uow: UnitOfWork, national_id: str, wanted: HistoryFilter = HistoryFilter()) -> list[HistoryEvent]:
    """Return the citizen's events, newest first, filtered (at most 1,000)."""
    found = _citizen_entries(uow, national_id).subquery()
    rows = uow.session.execute(select(found).order_by(found.c.seq.desc())).all()
    consent_ids = {row.consent_id for row in rows if row.consent_id}
    consents = {
        c.id: c for c in uow.session.scalars(select(Consent).where(Consent.id.in_(consent_ids)))
    } if consent_ids else {}  # fmt: skip
    counters = {
        u.id: u for u in uow.session.scalars(select(CounterUse).where(CounterUse.id.in_(consent_ids)))
    } if consent_ids else {}  # fmt: skip
    events = []
    for row in rows:
        entry = json.loads(row.leaf_input)
        consent = consents.get(row.consent_id or "")
        desk = counters.get(row.consent_id or "")
        event = HistoryEvent(
            seq=row.seq,
            version=entry["version"],
            time=parse_rfc3339(entry["time"]),
            subject=entry["subject"],
            opening=None if row.salt is None else SubjectOpening(bytes(row.salt)),
            event=entry["event"],
            actor=entry["actor"],
            service=entry.get("service"),
            datasets=tuple(entry.get("datasets", ())),
            outcome=entry.get("outcome", "ok"),
            consent_id=row.consent_id,
            recipient=consent.organisation_id if consent else (desk.organisation_id if desk else None),
            purpose=consent.purpose if consent else None,
            recipient_name=consent.organisation_name if consent else (desk.organisation_name_zh if desk else None),
            recipient_name_en=desk.organisation_name_en if desk else None,
            has_receipt=bool(consent and consent.receipt),
        )
        if _matches(event, wanted):
            events.append(event)
        if len(events) == MAX_EVENTS:
            break
    return events


def _citizen_entries(uow: UnitOfWork, national_id: str, seq: int | None = None) -> CompoundSelect[Any]:
    """Select the seq, bytes, case and opening salt of the citizen's entries (or of entry ``seq`` if theirs)."""
    key = ledger(uow).subject_key(national_id)
    columns = (LedgerEntry.seq, LedgerEntry.leaf_input, LedgerEntry.consent_id)
    # Both halves go through the index on the entries' subject (and that on the openings' key).
    version_1 = select(*columns, cast(null(), LargeBinary).label("salt")).where(LedgerEntry.subject == key)
    version_2 = (
        select(*columns, CaseOpening.salt)
        .join(
            CaseOpening,
            (CaseOpening.commitment == LedgerEntry.subject) & (CaseOpening.case_id == LedgerEntry.consent_id),
        )
        .where(CaseOpening.subject_key == key)
    )
    if seq is not None:
        version_1 = version_1.where(LedgerEntry.seq == seq)
        version_2 = version_2.where(LedgerEntry.seq == seq)
    return union_all(version_1, version_2)


def _matches(event: HistoryEvent, wanted: HistoryFilter) -> bool:
    if wanted.since and event.time < wanted.since:
        return False
    if wanted.until and event.time > wanted.until:
        return False
    if wanted.recipient and event.recipient != wanted.recipient:
        return False
    if wanted.dataset and wanted.dataset not in event.datasets:
        return False
    return not (wanted.event and event.event != wanted.event)


def dataset_titles(uow: UnitOfWork) -> tuple[DatasetEntry, ...]:
    """Return the catalogue's datasets, whose titles name the datasets of the history in both languages."""
    return catalogue(uow).datasets


def register_service_directory(app: Flask, directory: ServiceDirectory) -> None:
    """Let the history name relying parties' services (relying_parties registers its catalogue here)."""
    app.extensions[SERVICE_DIRECTORY] = directory


def service_names(
    uow: UnitOfWork, events: Collection[HistoryEvent], directory: ServiceDirectory | None
) -> Mapping[str, ServiceName]:
    """Return the names of the services of *events* that the directory knows (none without a directory)."""
    wanted = {event.service for event in events if event.service}
    return directory(uow, wanted) if directory is not None and wanted else {}


def citizen_consents(uow: UnitOfWork, citizen_id: str) -> list[Consent]:
    """Return a citizen's consents, newest first."""
    return list(
        uow.session.scalars(
            select(Consent).where(Consent.citizen_id == citizen_id).order_by(Consent.requested_at.desc())
        )
    )


@dataclass(frozen=True)
class HistoryPage:
    """One page of the (filtered) history: its events, its number from 1, and how many pages there are."""

    events: list[HistoryEvent]
    number: int
    pages: int
    total: int


def page_of(events: list[HistoryEvent], number: int, size: int = PAGE_SIZE) -> HistoryPage:
    """Return page ``number`` (from 1) of *events*; a page beyond the last is the last (or the empty first)."""
    pages = max(1, math.ceil(len(events) / size))
    number = min(max(number, 1), pages)
    start = (number - 1) * size
    return HistoryPage(events=events[start : start + size], number=number, pages=pages, total=len(events))


# -- verifying one entry (DESIGN §6.4) -------------------------------------------------------------

PASSED, FAILED, NOT_APPLICABLE = "passed", "failed", "not_applicable"


@dataclass(frozen=True)
class CitizenEntry:
    """One ledger entry about the citizen, as stored: its exact bytes and the opening of its subject."""

    seq: int
    leaf_input: bytes
    consent_id: str | None
    opening: SubjectOpening | None


@dataclass(frozen=True)
class EntryVerification:
    """What checking one entry of the citizen's history found; each check is PASSED, FAILED or NOT_APPLICABLE."""

    entry: CitizenEntry
    parsed: dict[str, Any] | None
    """The entry's fields, or None when its bytes are not a JSON object."""
    canonical: str
    """The check that the stored bytes are RFC 8785 canonical JSON."""
    commitment: str
    recomputed_subject: str | None
    published_subject: str | None
    inclusion: str
    leaf_hash: bytes
    """SHA-256(0x00 || leaf_input) of the stored bytes (RFC 9162 §2.1.1)."""
    audit_path: tuple[bytes, ...]
    tree_head: SignedTreeHead
    signature: str
    signing_kid: str | None
    has_receipt: bool
    """Whether the entry's case is a consent with a signed receipt (:func:`receipt_of`)."""

    @property
    def passed(self) -> bool:
        """Tell whether nothing failed (a version 1 entry's commitment cannot be checked, and does not fail)."""
        return FAILED not in (self.canonical, self.commitment, self.inclusion, self.signature)


def citizen_entry(uow: UnitOfWork, national_id: str, seq: int) -> CitizenEntry:
    """Return ledger entry ``seq`` if it is about this citizen; else raise :class:`HistoryEntryNotFound`."""
    row = uow.session.execute(_citizen_entries(uow, national_id, seq)).first()
    if row is None:
        raise HistoryEntryNotFound()
    opening = None if row.salt is None else SubjectOpening(bytes(row.salt))
    return CitizenEntry(seq=row.seq, leaf_input=bytes(row.leaf_input), consent_id=row.consent_id, opening=opening)


def verify_entry(uow: UnitOfWork, national_id: str, seq: int) -> EntryVerification:
    """Check one of the citizen's entries as anyone could: its form, its subject, its inclusion, its tree head.

    The proof is checked against the newest signed tree head, signed now if none covers the entry yet
    (the caller commits; at most one signature per new entry). The leaf hash is recomputed from the
    stored bytes, so an entry whose bytes were changed after it was appended fails its inclusion.
    """
    stored = citizen_entry(uow, national_id, seq)
    log = ledger(uow)
    parsed = _parse(stored.leaf_input)
    canonical = PASSED if parsed is not None and canonical_json.dumps(parsed) == stored.leaf_input else FAILED
    published = parsed.get("subject") if parsed is not None else None
    published = published if isinstance(published, str) else None
    recomputed = None
    commitment = NOT_APPLICABLE
    if stored.opening is not None:
        recomputed = subject_commitment(national_id, stored.opening.salt)
        same = published is not None and hmac.compare_digest(recomputed, published)
        commitment = PASSED if same else FAILED
    tree_head = log.signed_tree_head_covering(seq)
    leaf = merkle.leaf_hash(stored.leaf_input)
    try:
        path = log.inclusion_proof(seq, tree_head.tree_size).audit_path
    except (LedgerQueryInvalid, LedgerVerificationFailed):
        path = ()
        inclusion = FAILED
    else:
        included = merkle.verify_inclusion(leaf, seq, tree_head.tree_size, path, tree_head.root_hash)
        inclusion = PASSED if included else FAILED
    signature, kid = _check_signature(tree_head, log.public_keys())
    return EntryVerification(
        entry=stored,
        parsed=parsed,
        canonical=canonical,
        commitment=commitment,
        recomputed_subject=recomputed,
        published_subject=published,
        inclusion=inclusion,
        leaf_hash=leaf,
        audit_path=tuple(path),
        tree_head=tree_head,
        signature=signature,
        signing_kid=kid,
        has_receipt=_receipt(uow, stored.consent_id) is not None,
    )


def _parse(leaf_input: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(leaf_input)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _check_signature(tree_head: SignedTreeHead, keys: dict[str, Any]) -> tuple[str, str | None]:
    """Check the tree head's JWS with the platform's keys, and that it signs this head's fields."""
    try:
        payload = check_tree_head_signature(tree_head.jws, keys)
    except ValueError:
        return FAILED, None
    kid = _kid(tree_head.jws)
    return (PASSED if payload == tree_head.payload() else FAILED), kid


def _kid(jws: str) -> str | None:
    header = json.loads(base64.urlsafe_b64decode(jws.split(".", 1)[0] + "=="))
    kid = header.get("kid")
    return kid if isinstance(kid, str) else None


@dataclass(frozen=True)
class BundleEntry:
    """The entry of a proof bundle: its exact bytes, and their fields for reading."""

    seq: int
    leaf_input: bytes
    parsed: dict[str, Any] | None


@dataclass(frozen=True)
class BundleOpening:
    """What opens a version 2 entry's subject commitment: the citizen's own national ID and the case's salt."""

    scheme: str
    national_id: str
    salt: bytes


@dataclass(frozen=True)
class ProofBundle:
    """All anyone needs to check one of the citizen's entries offline (docs/transparency.md).

    It holds the citizen's own national ID and the case's salt (together they open the subject
    commitment), so it is for the citizen and whoever they choose to show it to.
    """

    entry: BundleEntry
    opening: BundleOpening | None
    inclusion_proof: InclusionProof
    signed_tree_head: SignedTreeHead
    jwks: dict[str, Any]
    format: str = BUNDLE_FORMAT


def proof_bundle(uow: UnitOfWork, national_id: str, seq: int) -> ProofBundle:
    """Return the proof bundle of one of the citizen's entries, against the newest signed tree head."""
    checked = verify_entry(uow, national_id, seq)
    stored, head = checked.entry, checked.tree_head
    opening = None
    if stored.opening is not None:
        opening = BundleOpening(stored.opening.scheme, normalise_national_id(national_id), stored.opening.salt)
    return ProofBundle(
        entry=BundleEntry(stored.seq, stored.leaf_input, checked.parsed),
        opening=opening,
        inclusion_proof=InclusionProof(seq, head.tree_size, checked.leaf_hash, checked.audit_path),
        signed_tree_head=head,
        jwks=ledger(uow).keys.jwks(),
    )


def receipt_of(uow: UnitOfWork, national_id: str, seq: int) -> str:
    """Return the signed consent receipt of the consent that entry ``seq`` of the citizen belongs to."""
    receipt = _receipt(uow, citizen_entry(uow, national_id, seq).consent_id)
    if receipt is None:
        raise HistoryEntryNotFound("This entry has no consent receipt.")
    return receipt


def _receipt(uow: UnitOfWork, case_id: str | None) -> str | None:
    """Return the receipt of the consent *case_id*; None when the case is no consent (a download) or has none."""
    if case_id is None:
        return None
    return uow.session.scalar(select(Consent.receipt).where(Consent.id == case_id))
