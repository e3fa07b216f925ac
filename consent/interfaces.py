"""The consent package's exceptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mydata.errors import BadRequest, MydataError, NotFound

if TYPE_CHECKING:
    from mydata.db import UnitOfWork


class LedgerEventInvalid(MydataError):
    """A ledger event was refused before it was written: a field is malformed or could carry personal data.

    The caller (a platform service) has a bug; nothing was appended.
    """

    code = "server_error"
    status = 500
    description = "The platform tried to record an invalid ledger entry."


class LedgerQueryInvalid(BadRequest):
    """A ledger read (entries, proof, tree head) asked for something the log cannot answer."""

    description = "The ledger request is invalid."


class LedgerUnavailable(MydataError):
    """The ledger's tables are missing or its head row is gone: the schema is not migrated."""

    code = "server_error"
    status = 503
    description = "The transparency ledger is not initialised: run `mydata db upgrade`."


class NoSignedTreeHead(MydataError):
    """The ledger has signed no tree head yet; reads never sign one (DESIGN §6.3: reads never write)."""

    code = "no_signed_tree_head"
    status = 503
    description = "The ledger has no signed tree head yet: its first entry signs one, and so does `mydata ledger sign`."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "60"})


class LedgerVerificationFailed(MydataError):
    """A full verification found the first place where the stored ledger does not hold together."""

    code = "ledger_corrupted"
    status = 500

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class ReceiptInvalid(BadRequest):
    """A consent receipt does not verify: its signature, its fields or its ledger proof is wrong."""

    code = "invalid_receipt"
    description = "The consent receipt does not verify."


class ReceiptNotIssuable(MydataError):
    """A receipt was asked for a ledger entry that does not record that consent."""

    code = "server_error"
    status = 500
    description = "The consent receipt does not match its ledger entry."


class ConsentNotFound(NotFound):
    """No such consent (for this citizen or client)."""

    code = "consent_not_found"
    description = "There is no such consent."


class ConsentNotPending(BadRequest):
    """The consent was already decided; it cannot be decided again."""

    code = "consent_already_decided"
    status = 409
    description = "This request was already answered."


class AlreadyDelivered(MydataError):
    """The package of this consent was delivered once already (DESIGN §6.2)."""

    code = "already_delivered"
    status = 410
    description = "The data of this consent was already delivered; each consent delivers once."


class ConsentExpired(MydataError):
    """The delivery window of this consent has passed."""

    code = "consent_expired"
    status = 410
    description = "The delivery window of this consent has passed; ask the citizen again."


class ConsentRevoked(MydataError):
    """The citizen withdrew this consent before delivery."""

    code = "consent_revoked"
    status = 403
    description = "The citizen revoked this consent."


class ConsentNotGranted(MydataError):
    """The consent was not granted (denied, or still waiting for the citizen)."""

    code = "consent_not_granted"
    status = 403
    description = "The citizen has not granted this consent."


class ConsentNotRevocable(BadRequest):
    """Only a granted, undelivered consent within its window can be revoked."""

    code = "consent_not_revocable"
    status = 409
    description = "Only a consent that is granted and not yet delivered can be revoked."


class ProviderUnavailable(MydataError):
    """A required dataset could not be fetched; nothing was delivered and the consent stays granted."""

    code = "provider_unavailable"
    status = 503
    description = "A required dataset could not be fetched from its agency; nothing was delivered. Retry later."

    def __init__(self, *, datasets: dict[str, str], retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)}, datasets=datasets)


class LoginRequired(MydataError):
    """The citizen's own API needs a logged-in session."""

    code = "login_required"
    status = 401
    description = "Log in first: this API answers only for the logged-in citizen."


class DownloadInvalid(BadRequest):
    """A download asked for no dataset, an unknown one, one citizens may not download, or an unknown format."""

    code = "invalid_download"
    description = "Choose one or more datasets of the catalogue, and a format: json, csv or pdf."


class DocumentNotFound(NotFound):
    """No document was issued with this verification code."""

    code = "document_not_found"
    description = "No document was issued with this verification code."


class DocumentExpired(MydataError):
    """The document's 30 days of validity have passed; it can no longer be verified."""

    code = "document_expired"
    status = 410
    description = "This document's verification period has ended."


class HistoryEntryNotFound(NotFound):
    """No entry of the logged-in citizen's history has this sequence number."""

    code = "history_entry_not_found"
    description = "Your usage history has no such entry."


class HistoryQueryInvalid(BadRequest):
    """A filter, page or export format of the usage history page is invalid."""

    code = "invalid_history_query"
    description = "The history filters are invalid."


@dataclass(frozen=True)
class ServiceName:
    """A relying party's service and organisation as citizens read them, in both languages."""

    organisation_zh: str
    organisation_en: str
    service_zh: str
    service_en: str


class ServiceDirectory(Protocol):
    """Names services for the usage history; the relying parties package provides it (it sits above consent)."""

    def __call__(self, uow: UnitOfWork, service_ids: Collection[str]) -> Mapping[str, ServiceName]:
        """Return the names of those of *service_ids* that are registered."""


class CounterUseNotFound(NotFound):
    """No counter use of this person has this id (another citizen's, or another clerk's)."""

    code = "counter_use_not_found"
    description = "There is no such counter verification."


class CounterCodeRefused(BadRequest):
    """The citizen's code is wrong, used, cancelled or expired; it counts as a wrong entry."""

    code = "counter_code_refused"
    description = "This code cannot be used."

    def __init__(self, reason: str, *, attempts_left: int) -> None:
        super().__init__(f"This code cannot be used ({reason}).", reason=reason, attempts_left=attempts_left)
        self.reason = reason
        self.attempts_left = attempts_left


class CounterConfirmationRefused(BadRequest):
    """The confirmation code is wrong (a wrong entry), or came after its 2 minutes (the use is void)."""

    code = "counter_confirmation_refused"
    description = "The confirmation code is wrong."

    def __init__(self, reason: str, *, attempts_left: int) -> None:
        super().__init__(f"The confirmation code is refused ({reason}).", reason=reason, attempts_left=attempts_left)
        self.reason = reason
        self.attempts_left = attempts_left


class CounterLocked(MydataError):
    """The clerk made 5 wrong entries within 15 minutes: their entry is locked until *until*."""

    code = "counter_locked"
    status = 429
    description = "Too many wrong entries: the counter entry is locked."

    def __init__(self, until: dt.datetime) -> None:
        super().__init__(
            f"Too many wrong entries: the counter entry is locked until {until.isoformat()}.",
            locked_until=until.isoformat(),
        )
        self.until = until


class CounterViewEnded(MydataError):
    """The clerk's 15 minutes with the data are over (or the data was never shown): a new code is needed."""

    code = "counter_view_ended"
    status = 410
    description = "This counter verification has ended; ask the citizen for a new code."
