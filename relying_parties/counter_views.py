"""The counter (臨櫃核驗, DESIGN §6.5): the clerk's pages at /counter.

A clerk (a staff account with the ``counter`` role of an approved organisation, logged in at level
high) types or scans the citizen's code, sees which datasets the citizen offers, types the 6-digit
confirmation code the citizen reads from their phone within 2 minutes, and then sees the data for
15 minutes, with a PDF that verifies like a self-download. Thin views over :mod:`consent.counter`.

The clerk types fast at a busy desk: each step is one field with the focus in it, and a refusal
comes back on the same field with what happened and what to do. Wrong entries count towards the
clerk's lock (the services); every try is also rate-limited per clerk (``COUNTER_RATE_LIMIT``): the
clerks of a branch share one address.
"""

from __future__ import annotations

import datetime as dt
import math
import re

from flask import Blueprint, Response, current_app, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, gettext, ngettext
from flask_limiter.util import get_remote_address

from consent import counter, pdf
from consent.counter import Clerk
from consent.downloads import DocumentHeader, Download
from consent.interfaces import CounterCodeRefused, CounterConfirmationRefused, CounterLocked, CounterViewEnded
from consent.models import CounterUse
from identity import staff
from identity.sessions import current_authentication
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.limits import limiter
from providers.services import fetch_datasets
from relying_parties import services
from relying_parties.interfaces import CounterClosed, NoCounterRole

bp = Blueprint("counter_desk", __name__, url_prefix="/counter")

#: Tries (codes and confirmation codes) per clerk (Flask-Limiter syntax); 429 with Retry-After beyond it.
COUNTER_RATE = "20 per minute"
# GETs that write: each showing of the data is a ledger entry, and a PDF is a document's record.
_WRITING_GETS = frozenset({"counter_desk.data", "counter_desk.pdf_file"})
_CONFIRMATION = re.compile(r"[0-9]{6}")


def _counter_rate() -> str:
    return str(current_app.config["COUNTER_RATE_LIMIT"])


def _clerk_key() -> str:
    clerk: Clerk | None = g.get("counter_clerk")
    return f"clerk:{clerk.citizen_id}" if clerk is not None else get_remote_address()


counter_limit = limiter.shared_limit(_counter_rate, scope="counter", key_func=_clerk_key)


@bp.before_request
def _require_clerk() -> None:
    # A staff page at level high; viewing rules only (action=False): a clerk is not asked to log in
    # again for every citizen. CSRFProtect has already refused a POST without its token.
    authentication = current_authentication()
    staff.require_staff_session(authentication, action=False)
    assert authentication is not None
    uow = unit_of_work()
    if request.endpoint in _WRITING_GETS:
        uow.rollback()  # only reads so far: begin again as a transaction that may write
        uow = unit_of_work(read_only=False)
    g.counter_clerk = services.counter_clerk(uow, authentication.citizen_id)


# -- step 1: the citizen's code ---------------------------------------------------------------------


@bp.get("")
def entry() -> ResponseReturnValue:
    """Show the counter's one field, the citizen's code; a scanned QR code's ``?code=`` only fills it in."""
    return _entry_page(request.args.get("code", ""))


@bp.post("")
@counter_limit
def claim() -> ResponseReturnValue:
    """Take the citizen's code and go on to the confirmation code."""
    code = request.form.get("code", "")
    if counter.normalise_code(code) is None:
        # Not the shape of a code: a typo, not a guess, so it does not count towards the lock.
        message = gettext("A citizen's code has 8 letters and digits, like ABCD-EFGH: type it again.")
        return _entry_page(code, error=message, status=400)
    uow = unit_of_work()
    use = counter.claim(uow, clerk=g.counter_clerk, code=code, now=clock().now())
    uow.commit()
    return redirect(url_for(".use", use_id=use.id), 303)


# -- step 2: the confirmation code ------------------------------------------------------------------


@bp.get("/<use_id>")
def use(use_id: str) -> ResponseReturnValue:
    """Show which datasets the citizen offers (not the data) and ask for the confirmation code."""
    return _use_page(use_id)


@bp.post("/<use_id>/confirm")
@counter_limit
def confirm(use_id: str) -> ResponseReturnValue:
    """Check the confirmation code the citizen read out, and open the data."""
    confirmation = request.form.get("confirmation", "").strip()
    if not _CONFIRMATION.fullmatch(confirmation):
        message = gettext("The confirmation code is 6 digits: type it again.")
        return _use_page(use_id, error=message, status=400, typed=confirmation)
    uow = unit_of_work()
    counter.confirm(uow, clerk=g.counter_clerk, use_id=use_id, confirmation=confirmation, now=clock().now())
    uow.commit()
    return redirect(url_for(".data", use_id=use_id), 303)


# -- step 3: the data, for 15 minutes ---------------------------------------------------------------


@bp.get("/<use_id>/data")
def data(use_id: str) -> ResponseReturnValue:
    """Fetch the citizen's datasets again and show them as tables (never stored); record the showing."""
    uow = unit_of_work(read_only=False)  # a GET that writes: the showing's ledger entry
    clerk: Clerk = g.counter_clerk
    download = counter.fetch_for_clerk(uow, clerk=clerk, use_id=use_id, fetcher=fetch_datasets, now=clock().now())
    use = counter.clerk_use(uow, clerk=clerk, use_id=use_id, now=clock().now())
    citizen_name = counter.citizen_of(uow, use).name
    uow.commit()
    return render_template("clerk/data.html", clerk=clerk, use=use, download=download, citizen_name=citizen_name)


@bp.get("/<use_id>/pdf")
def pdf_file(use_id: str) -> ResponseReturnValue:
    """Fetch the datasets again and answer them as a PDF with a verification code, like a self-download."""
    uow = unit_of_work(read_only=False)  # a GET that writes: the document's record and the showing's entry
    clerk: Clerk = g.counter_clerk
    now = clock().now()
    use = counter.clerk_use(uow, clerk=clerk, use_id=use_id, now=now)
    citizen_name = counter.citizen_of(uow, use).name

    def render(done: Download, header: DocumentHeader) -> bytes:
        verify_url = url_for("verify.document", code=header.display_code, _external=True)
        return pdf.render_pdf(done, header, citizen_name=citizen_name, verify_url=verify_url)

    download, issued = counter.issue_pdf(
        uow, clerk=clerk, use_id=use_id, fetcher=fetch_datasets, render=render, now=now
    )
    uow.commit()
    if issued is None:
        page = render_template("clerk/data.html", clerk=clerk, use=use, download=download, citizen_name=citizen_name)
        return page, 503
    filename = f"mydata-counter-{issued.header.display_code}.pdf"
    return Response(
        issued.body,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},  # no-store: mydata.security
    )


# -- refusals: each on its step's field -------------------------------------------------------------


@bp.errorhandler(CounterCodeRefused)
def code_refused(error: CounterCodeRefused) -> ResponseReturnValue:
    """Say why the code was refused, and how many wrong entries are left, on the code's field."""
    reasons = {
        "used": gettext("This code has already been used: ask the citizen for a new one."),
        "cancelled": gettext("The citizen cancelled this code: ask them for a new one."),
        "expired": gettext("This code has expired (a code lasts 20 minutes): ask the citizen for a new one."),
    }
    unknown = gettext("This is not a citizen's code: check the code on the citizen's phone and type it again.")
    message = f"{reasons.get(error.reason, unknown)} {_tries_left(error.attempts_left)}"
    return _entry_page(request.form.get("code", ""), error=message, status=400)


@bp.errorhandler(CounterConfirmationRefused)
def confirmation_refused(error: CounterConfirmationRefused) -> ResponseReturnValue:
    """Say why the confirmation code was refused: wrong (with the entries left), too late, or not waited for."""
    use_id = (request.view_args or {}).get("use_id", "")
    if error.reason == "wrong":
        message = gettext("The confirmation code is wrong: ask the citizen to read it again from their phone.")
        return _use_page(use_id, error=f"{message} {_tries_left(error.attempts_left)}", status=400)
    return _use_page(use_id, status=400)


@bp.errorhandler(CounterLocked)
def locked(error: CounterLocked) -> ResponseReturnValue:
    """Say until when the clerk's entry is locked, on the field the clerk was typing in."""
    message = gettext(
        "Too many wrong entries. Your entry is locked until %(time)s (Taiwan time).",
        time=format_datetime(error.until, "HH:mm"),
    )
    if request.endpoint == "counter_desk.confirm":
        page = _use_page((request.view_args or {}).get("use_id", ""), error=message, status=429)
    else:
        page = _entry_page(request.form.get("code", ""), error=message, status=429)
    response = make_response(page)
    response.headers["Retry-After"] = str(max(1, math.ceil((error.until - clock().now()).total_seconds())))
    return response


@bp.errorhandler(CounterViewEnded)
def view_ended(error: CounterViewEnded) -> ResponseReturnValue:
    """Say that the 15 minutes are over (or the data was never opened): only a new code opens it."""
    return render_template("clerk/ended.html", clerk=g.counter_clerk), error.status


@bp.errorhandler(NoCounterRole)
@bp.errorhandler(CounterClosed)
def refused(error: NoCounterRole | CounterClosed) -> ResponseReturnValue:
    """Say, in the reader's language, why this account may not use the counter (403)."""
    return render_template("clerk/refused.html", error=error, closed=isinstance(error, CounterClosed)), error.status


# -- pages ------------------------------------------------------------------------------------------


def _entry_page(code: str, *, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    normalised = counter.normalise_code(code)
    shown = counter.display(normalised) if normalised else code.strip()[:12]
    return render_template("clerk/entry.html", clerk=g.counter_clerk, code=shown, error=error), status


def _use_page(use_id: str, *, error: str | None = None, status: int = 200, typed: str = "") -> ResponseReturnValue:
    now = clock().now()
    uow = unit_of_work()
    use = counter.clerk_use(uow, clerk=g.counter_clerk, use_id=use_id, now=now)
    if use.status == "shown" and error is None:  # confirmed already (a form sent twice): the data
        return redirect(url_for(".data", use_id=use.id), 303)
    deadline = _deadline(use)
    closed = None
    if use.status != "claimed" or deadline is None or now >= deadline:
        closed = (
            gettext("More than 2 minutes passed; ask the citizen for a new code.")
            if use.status in ("claimed", "void")
            else gettext("This verification no longer waits for a confirmation code: ask the citizen for a new code.")
        )
    return render_template(
        "clerk/use.html",
        clerk=g.counter_clerk,
        use=use,
        entries=counter.datasets_of(uow, use),
        deadline=deadline,
        closed=closed,
        error=error,
        typed=typed,
    ), status


def _deadline(use: CounterUse) -> dt.datetime | None:
    """Return when the confirmation code must be entered by: 2 minutes after the code (and within its 20)."""
    if use.claimed_at is None:
        return None
    return min(use.claimed_at + counter.CONFIRM_WITHIN, use.expires_at)


def _tries_left(left: int) -> str:
    return str(
        ngettext(
            "%(num)d try left before your entry is locked for 15 minutes.",
            "%(num)d tries left before your entry is locked for 15 minutes.",
            left,
        )
    )
