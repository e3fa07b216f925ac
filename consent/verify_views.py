"""Document verification (文件驗證, DESIGN §6.5): public, by the code printed on a downloaded document.

It confirms when the platform issued the document, for which datasets, with which SHA-256 and until
when it can be checked, and compares an uploaded file with that hash. It shows no name, ID number or
data: the platform has none of the document's contents to show. Each check is an entry in the
citizen's history; the routes are rate-limited per client address, so codes cannot be guessed.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from consent import downloads
from consent.interfaces import DocumentExpired, DocumentNotFound
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.limits import limiter

bp = Blueprint("verify", __name__)

#: Checks per client address (Flask-Limiter syntax); 429 with Retry-After beyond it.
VERIFY_RATE = "20 per minute"


def _verify_rate() -> str:
    return str(current_app.config["VERIFY_RATE_LIMIT"])


verify_limit = limiter.shared_limit(_verify_rate, scope="verify")


@bp.get("/verify/<code>")
@verify_limit
def document(code: str) -> ResponseReturnValue:
    """Confirm a document by its verification code."""
    uow = unit_of_work(read_only=False)  # a GET that writes: the check is an entry in the citizen's history
    verification = downloads.verify_document(uow, code, now=clock().now())
    uow.commit()
    return render_template("portal/verify.html", verification=verification, code=code)


@bp.post("/verify/<code>")
@verify_limit
def compare(code: str) -> ResponseReturnValue:
    """Compare an uploaded file with the document issued under this code."""
    upload = request.files.get("file")
    uow = unit_of_work()
    verification = downloads.verify_document(
        uow, code, now=clock().now(), uploaded=upload.read() if upload is not None else b""
    )
    uow.commit()
    return render_template("portal/verify.html", verification=verification, code=code)


@bp.errorhandler(DocumentNotFound)
@bp.errorhandler(DocumentExpired)
def no_document(error: DocumentNotFound | DocumentExpired) -> ResponseReturnValue:
    """Say plainly, in the reader's language, that no valid document has this code (404 or 410)."""
    return render_template("portal/verify_missing.html", expired=isinstance(error, DocumentExpired)), error.status
