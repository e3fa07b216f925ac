"""The relying-party console's transaction log (/console/rp/transactions): filters, keyset pages, a CSV export.

The same log as ``GET /api/v1/organisation/transactions`` (:mod:`relying_parties.transactions`),
for one of the member's organisations at a time: a member of several picks one (``?organisation=``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from mydata.db import UnitOfWork, unit_of_work
from relying_parties import services, transactions
from relying_parties.consoles import console_blueprint, current_member
from relying_parties.interfaces import InvalidInput, NotAConsoleMember, OrganisationNotFound
from relying_parties.transactions import Transaction, TransactionFilter

bp = console_blueprint("rp", __name__, section="transactions")

#: A case's state, in the reader's language.
STATUS_NAMES = {
    "requested": _l("requested, not answered yet"),
    "granted": _l("granted"),
    "denied": _l("denied"),
    "expired": _l("expired"),
    "delivered": _l("delivered"),
    "revoked": _l("revoked"),
    "claimed": _l("code entered, waiting for confirmation"),
    "shown": _l("shown at the counter"),
    "void": _l("not confirmed in time"),
    "cancelled": _l("cancelled by the citizen"),
}
KIND_NAMES = {transactions.CONSENT: _l("Consent"), transactions.COUNTER: _l("Counter use")}
#: A dataset's delivery outcome (providers.protocol.Outcome), in the reader's language.
OUTCOME_NAMES = {
    "ok": _l("delivered"),
    "no_record": _l("no record"),
    "timeout": _l("agency timed out"),
    "unavailable": _l("agency unavailable"),
    "bad_signature": _l("agency signature invalid"),
    "schema_violation": _l("agency answer invalid"),
    "protocol_error": _l("agency protocol error"),
}
CSV_COLUMNS = ("time", "kind", "service_id", "case_id", "subject", "status", "datasets", "outcomes")
_FILTERS = ("since", "until", "service", "status", "kind")


@bp.get("")
def index() -> ResponseReturnValue:
    """Show one page of an organisation's transactions (or all of them as CSV with ``?format=csv``)."""
    uow = unit_of_work()
    organisations = _organisations(uow)
    organisation_id = request.args.get("organisation") or (organisations[0][0] if organisations else None)
    if organisation_id is not None and organisation_id not in {id_ for id_, _name in organisations}:
        raise NotAConsoleMember("rp")
    values = {name: request.args.get(name, "").strip() for name in _FILTERS}
    service_ids = (
        [s.id for s in services.list_services(uow, organisation_id=organisation_id)] if organisation_id else []
    )
    wanted, errors = _filter(values, service_ids)
    kept = {name: value for name, value in values.items() if value}
    if organisation_id is not None and len(organisations) > 1:
        kept["organisation"] = organisation_id
    if organisation_id is not None and not errors and request.args.get("format") == "csv":
        return _csv(transactions.all_transactions(uow, organisation_id, wanted), organisation_id)
    page = None
    if organisation_id is not None and not errors:
        page = transactions.organisation_transactions(
            uow, organisation_id, wanted, cursor=_cursor(), page_size=_page_size()
        )
    html = render_template(
        "console/rp/transactions.html",
        organisations=organisations,
        organisation_id=organisation_id,
        service_ids=service_ids,
        values=values,
        errors=errors,
        page=page,
        kept=kept,
        page_size=request.args.get("page_size"),
        first_page=bool(request.args.get("cursor")),
        status_names=STATUS_NAMES,
        kind_names=KIND_NAMES,
        outcome_names=OUTCOME_NAMES,
    )
    return html, 400 if errors else 200


def _organisations(uow: UnitOfWork) -> list[tuple[str, Any]]:
    """Return (id, organisation) for each of the member's organisations that is registered."""
    found = []
    for organisation_id in current_member().scopes:
        try:
            found.append((organisation_id, services.get_organisation(uow, organisation_id)))
        except OrganisationNotFound:
            continue  # a role for an organisation that was never registered shows nothing
    return found


def _filter(values: Mapping[str, str], service_ids: list[str]) -> tuple[TransactionFilter, list[tuple[str, str]]]:
    """Read the filter form; return the filter and, for each wrong field, a sentence in the reader's language."""
    errors: list[tuple[str, str]] = []
    days: dict[str, dt.date | None] = {}
    for name in ("since", "until"):
        days[name] = None
        if values[name]:
            try:
                days[name] = dt.date.fromisoformat(values[name])
            except ValueError:
                errors.append((name, gettext("Enter a date as YYYY-MM-DD, for example 2026-11-30.")))
    since, until = days["since"], days["until"]
    if since and until and until < since:
        errors.append(("until", gettext("The “to” date must not be before the “from” date.")))
    if values["service"] and values["service"] not in service_ids:
        errors.append(("service", gettext("Choose one of your organisation's services.")))
    if values["status"] and values["status"] not in transactions.STATUSES:
        errors.append(("status", gettext("Choose a status from the list.")))
    if values["kind"] and values["kind"] not in transactions.KINDS:
        errors.append(("kind", gettext("Choose a kind from the list.")))
    wanted = TransactionFilter(
        since=since,
        until=until,
        service_id=values["service"] or None,
        status=values["status"] or None,
        kind=values["kind"] or None,
    )
    return wanted, errors


def _cursor() -> str | None:
    """Return the page's cursor; one that is not ours starts again from the newest transaction."""
    cursor = request.args.get("cursor") or None
    if cursor is None:
        return None
    try:
        transactions.decode_cursor(cursor)
    except InvalidInput:
        return None
    return cursor


def _page_size() -> int:
    try:
        size = int(request.args.get("page_size", transactions.PAGE_SIZE))
    except ValueError:
        return transactions.PAGE_SIZE
    return size if 1 <= size <= transactions.MAX_PAGE_SIZE else transactions.PAGE_SIZE


def _csv(rows: Iterable[Transaction], organisation_id: str) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # a BOM first, so spreadsheet programs read the file as UTF-8
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = [
            row.time.astimezone(transactions.TAIWAN).isoformat(timespec="seconds"),
            row.kind,
            row.service_id or "",
            row.case_id,
            row.subject or "",
            row.status,
            " ".join(row.datasets),
            "; ".join(f"{dataset}={outcome}" for dataset, outcome in row.outcomes.items()),
        ]
        writer.writerow([_cell(cell) for cell in cells])
    response = Response(out.getvalue().encode("utf-8"), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{organisation_id}-transactions.csv"'
    return response


def _cell(text: str) -> str:
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection, OWASP): quote it.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
