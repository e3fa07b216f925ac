"""The consent package's exceptions."""

from __future__ import annotations

from mydata.errors import BadRequest, MydataError


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
