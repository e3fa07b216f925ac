"""The citizen's usage history pages (使用紀錄, DESIGN §6.4): the list, its exports, verifying one entry, its proofs.

Every route answers only for the logged-in citizen, whose national ID finds and opens their
entries; a page that is not theirs is a 404, whoever asks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, get_locale, gettext, lazy_gettext
from marshmallow import Schema, ValidationError, fields, validate

from consent import history, schemas
from consent.api import CITIZEN
from consent.history import HistoryEvent, HistoryFilter
from consent.interfaces import HistoryQueryInvalid, LoginRequired, ServiceName
from consent.ledger import EVENT_TYPES, b64, parse_rfc3339
from identity.sessions import current_authentication, login_url
from mydata.db import UnitOfWork, unit_of_work
from mydata.errors import wants_json
from mydata.openapi import ErrorSchema, documented

bp = Blueprint("history", __name__, url_prefix="/me/history")
TAIPEI = ZoneInfo("Asia/Taipei")
FORMATS = ("html", "csv", "json")
FILTERS = ("since", "until", "recipient", "dataset", "event")

#: What happened, one sentence per event type (DESIGN §6.3); unknown types get :data:`OTHER_EVENT`.
EVENT_SENTENCES = {
    "consent.requested": lazy_gettext("A service asked for your data"),
    "consent.granted": lazy_gettext("You agreed to share your data"),
    "consent.denied": lazy_gettext("You declined a request for your data"),
    "consent.revoked": lazy_gettext("You withdrew your consent"),
    "consent.expired": lazy_gettext("Your consent expired; your data was never delivered"),
    "delivery.completed": lazy_gettext("Your data was sent to the recipient"),
    "delivery.failed": lazy_gettext("Sending your data failed; nothing was sent"),
    "download.completed": lazy_gettext("You downloaded your data"),
    "download.failed": lazy_gettext("A download of your data failed"),
    "counter.verified": lazy_gettext("A counter clerk looked at your data"),
    "document.verified": lazy_gettext("Someone checked a document you downloaded"),
}
OUTCOMES = {
    "ok": lazy_gettext("Completed"),
    "expired": lazy_gettext("Expired"),
    "provider_unavailable": lazy_gettext("An agency was unavailable"),
    "no_record": lazy_gettext("No record"),
}
CSV_COLUMNS = (
    lazy_gettext("Entry"),
    lazy_gettext("Time (Taiwan)"),
    lazy_gettext("Event"),
    lazy_gettext("What happened"),
    lazy_gettext("Who"),
    lazy_gettext("Datasets"),
    lazy_gettext("Purpose"),
    lazy_gettext("Outcome"),
    lazy_gettext("Case"),
)
CHECKS = {
    history.PASSED: lazy_gettext("Passed"),
    history.FAILED: lazy_gettext("FAILED"),
    history.NOT_APPLICABLE: lazy_gettext("Cannot be checked"),
}


class HistoryPageQuery(Schema):
    """The filter form of the history page (a GET form) and its page and export format."""

    since = fields.Date(load_default=None)
    until = fields.Date(load_default=None)
    recipient = fields.String(load_default=None, validate=validate.Length(max=128))
    dataset = fields.String(load_default=None, validate=validate.Length(max=128))
    event = fields.String(load_default=None, validate=validate.Length(max=64))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
    format = fields.String(load_default="html", validate=validate.OneOf(FORMATS))


FIELD_ERRORS = {
    "since": lazy_gettext("The “from” date must be a date such as 2026-12-01."),
    "until": lazy_gettext("The “to” date must be a date such as 2026-12-31."),
    "recipient": lazy_gettext("Choose a recipient from the list."),
    "dataset": lazy_gettext("Choose a dataset from the list."),
    "event": lazy_gettext("Choose an event from the list."),
    "page": lazy_gettext("The page number must be a whole number from 1."),
    "format": lazy_gettext("The export format must be CSV or JSON."),
}


@dataclass(frozen=True)
class Row:
    """One history event as the page and the CSV show it, in the reader's language."""

    event: HistoryEvent
    time: str
    what: str
    who: str
    datasets: list[str]
    outcome: str
    has_receipt: bool


def _to_login() -> ResponseReturnValue:
    """Send a browser to log in and come back; a program that asked for JSON gets 401."""
    if wants_json():
        raise LoginRequired()
    path = request.full_path.rstrip("?") if request.query_string else request.path
    return redirect(login_url(path), 303)


def _parse(args: Mapping[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Load the form; return the values (the defaults where a field is wrong) and the errors by field."""
    wanted = {name: value for name, value in args.items() if name in FIELD_ERRORS and value}
    try:
        return HistoryPageQuery().load(wanted), []
    except ValidationError as exc:
        bad = sorted(exc.messages if isinstance(exc.messages, dict) else {})
        kept = {name: value for name, value in wanted.items() if name not in bad}
        return HistoryPageQuery().load(kept), [(name, str(FIELD_ERRORS[name])) for name in bad]


def _filter(query: Mapping[str, Any]) -> tuple[HistoryFilter, list[tuple[str, str]]]:
    since, until = query["since"], query["until"]
    errors = []
    if since and until and since > until:
        errors.append(("until", gettext("The “to” date must not be before the “from” date.")))
        until = None
    start = dt.datetime.combine(since, dt.time(), TAIPEI) if since else None
    # "To 12-31" includes the whole of that day in Taiwan.
    end = dt.datetime.combine(until, dt.time.max, TAIPEI) if until else None
    chosen = {name: query[name] for name in ("recipient", "dataset", "event")}
    return HistoryFilter(since=start, until=end, **chosen), errors


def _english() -> bool:
    return str(get_locale()) == "en"


def _titles(entries: Iterable[Any]) -> dict[str, str]:
    lang = "en" if _english() else "zh"
    return {d.id: getattr(d, f"title_{lang}") for d in entries}


@dataclass(frozen=True)
class Names:
    """How the rows name datasets and services, in the reader's language."""

    datasets: Mapping[str, str]
    services: Mapping[str, ServiceName]

    def recipient(self, event: HistoryEvent) -> str | None:
        """Return the relying party's name, or None when the event has none."""
        known = self.services.get(event.service or "")
        if known is not None:
            return known.organisation_en if _english() else known.organisation_zh
        if _english() and event.recipient_name_en:
            return event.recipient_name_en
        return event.recipient_name or event.recipient

    def service(self, event: HistoryEvent) -> str | None:
        """Return the service's name (its id if unregistered), or None when the event has none."""
        known = self.services.get(event.service or "")
        if known is not None:
            return known.service_en if _english() else known.service_zh
        return event.service


def _who(event: HistoryEvent, names: Names) -> str:
    recipient, service = names.recipient(event), names.service(event)
    if event.actor == "citizen":
        said = gettext("You")
    elif event.actor.startswith("counter:"):
        said = gettext("Counter of %(organisation)s", organisation=recipient or event.actor.removeprefix("counter:"))
    elif event.actor == "platform":
        said = gettext("The platform, for %(recipient)s", recipient=recipient) if recipient else gettext("The platform")
    elif recipient and service:
        said = gettext("%(recipient)s, for %(service)s", recipient=recipient, service=service)
    else:
        said = recipient or event.actor
    return str(said)


def _names(uow: UnitOfWork, events: list[HistoryEvent]) -> Names:
    directory = current_app.extensions.get(history.SERVICE_DIRECTORY)
    return Names(_titles(history.dataset_titles(uow)), history.service_names(uow, events, directory))


def what_happened(event_type: str) -> str:
    """Say what happened in a sentence; an event type this page does not know yet is named as it is."""
    sentence = EVENT_SENTENCES.get(event_type)
    return str(sentence) if sentence is not None else str(gettext("Recorded event: %(event)s", event=event_type))


def _row(event: HistoryEvent, names: Names) -> Row:
    return Row(
        event=event,
        time=format_datetime(event.time, "yyyy-MM-dd HH:mm:ss"),
        what=what_happened(event.event),
        who=_who(event, names),
        datasets=[names.datasets.get(d, d) for d in event.datasets],
        outcome=str(OUTCOMES.get(event.outcome, event.outcome)),
        has_receipt=event.has_receipt,
    )


@bp.get("")
def index() -> ResponseReturnValue:
    """Show the citizen's usage history, filtered and paged, or export the filtered set as CSV or JSON."""
    citizen = current_authentication()
    if citizen is None:
        return _to_login()
    query, errors = _parse(request.args)
    wanted, more = _filter(query)
    errors += more
    if errors and query["format"] != "html":
        raise HistoryQueryInvalid(" ".join(message for _, message in errors))
    uow = unit_of_work()
    events = history.usage_history(uow, citizen.national_id, wanted)
    if query["format"] == "json":
        return _download(json.dumps(schemas.HistorySchema().dump({"events": events}), ensure_ascii=False, indent=2),
                         "application/json", "json")  # fmt: skip
    if query["format"] == "csv":
        names = _names(uow, events)
        return _download(_csv(_row(e, names) for e in events), "text/csv", "csv")
    # The filter's choices come from all of the citizen's events, not only those shown.
    everything = history.usage_history(uow, citizen.national_id) if any(query[name] for name in FILTERS) else events
    page = history.page_of(events, query["page"])
    names = _names(uow, everything)
    kept = {name: request.args[name] for name in FILTERS if request.args.get(name)}
    return render_template(
        "portal/history.html",
        rows=[_row(e, names) for e in page.events],
        page=page,
        errors=errors,
        values={name: request.args.get(name, "") for name in FILTERS},
        recipients=sorted({(e.recipient, names.recipient(e) or e.recipient) for e in everything if e.recipient}),
        datasets=sorted({(d, names.datasets.get(d, d)) for e in everything for d in e.datasets}, key=lambda d: d[1]),
        events=[(name, what_happened(name)) for name in sorted(EVENT_TYPES) if name != "consent.requested"],
        kept=kept,
    ), 400 if errors else 200


def _csv(rows: Iterable[Row]) -> str:
    out = io.StringIO()
    # A BOM first, so spreadsheet programs read the file as UTF-8 and show Chinese.
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([str(column) for column in CSV_COLUMNS])
    for row in rows:
        event = row.event
        time = event.time.astimezone(TAIPEI).isoformat(timespec="seconds")
        cells = [str(event.seq), time, event.event, row.what, row.who, "; ".join(row.datasets), event.purpose or "",
                 row.outcome, event.consent_id or ""]  # fmt: skip
        writer.writerow([_inert(cell) for cell in cells])
    return out.getvalue()


def _inert(cell: str) -> str:
    """Keep a cell from being read as a formula by spreadsheet programs (CSV injection, OWASP)."""
    # A relying party writes its own purpose and names: "=HYPERLINK(...)" must stay text.
    return "'" + cell if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


def _download(body: str, mimetype: str, extension: str, name: str = "mydata-history") -> Response:
    # Werkzeug adds "; charset=utf-8" to text/* types.
    response = Response(body.encode("utf-8"), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{extension}"'
    return response


@bp.get("/<int:seq>")
def entry(seq: int) -> ResponseReturnValue:
    """Verify one entry of the citizen's history: as published, its commitment, its inclusion, its tree head."""
    citizen = current_authentication()
    if citizen is None:
        return _to_login()
    # A GET that may write: the first look at an entry newer than every signed tree head signs one.
    uow = unit_of_work(read_only=False)
    checked = history.verify_entry(uow, citizen.national_id, seq)
    uow.commit()
    # Exactly the bytes anyone reads at /ledger/entries (canonical JSON is UTF-8; a forged entry may not be).
    published = checked.entry.leaf_input.decode("utf-8", errors="replace")
    event_type = str((checked.parsed or {}).get("event"))
    return render_template(
        "portal/history_entry.html",
        checked=checked,
        checks=CHECKS,
        published=published,
        b64=b64,
        tree_time=format_datetime(parse_rfc3339(checked.tree_head.timestamp), "yyyy-MM-dd HH:mm:ss"),
        sentence=what_happened(event_type) if checked.parsed else None,
    )


@bp.get("/<int:seq>/bundle.json")
@documented(
    "The proof bundle of one of my history entries",
    tags=["citizen"],
    responses={
        200: schemas.ProofBundleSchema,
        303: "not logged in (a browser): to the login page, which comes back here",
        401: ErrorSchema,
        404: ErrorSchema,
    },
    description="A download (Content-Disposition: attachment) for the logged-in citizen: the entry, the opening of "
    "its subject commitment (with the citizen's own national ID), its RFC 9162 inclusion proof in the tree of the "
    "newest signed tree head (signed now if none covers the entry yet), and the platform's JWKS. "
    "docs/transparency.md gives the procedure to check it. 404 when the entry is not about the citizen; 401 "
    "login_required without a login when the client accepts JSON.",
    security=CITIZEN,
)
def bundle(seq: int) -> ResponseReturnValue:
    """Download the proof bundle of one entry (docs/transparency.md says how to check it)."""
    citizen = current_authentication()
    if citizen is None:
        return _to_login()
    uow = unit_of_work(read_only=False)  # may sign a tree head, as the entry page
    found = schemas.ProofBundleSchema().dump(history.proof_bundle(uow, citizen.national_id, seq))
    uow.commit()
    return _download(json.dumps(found, ensure_ascii=False, indent=2), "application/json", "json", f"mydata-proof-{seq}")


@bp.get("/<int:seq>/receipt.jws")
def receipt(seq: int) -> ResponseReturnValue:
    """Download the signed consent receipt of the consent this entry belongs to."""
    citizen = current_authentication()
    if citizen is None:
        return _to_login()
    token = history.receipt_of(unit_of_work(), citizen.national_id, seq)
    return _download(token, "application/jose", "jws", f"mydata-receipt-{seq}")
