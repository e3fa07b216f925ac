"""The citizen's portal pages: the dashboard (/me) and My consents (/me/consents), with revocation.

They live in `consent` because they show consents and the usage history (DESIGN §2, §6.4, §6.5).
Every page asks for a login first and comes back after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, get_locale, lazy_gettext

from consent import consents, portal
from consent.consents import DELIVERED, DENIED, EXPIRED, GRANTED, REVOKED
from consent.history_views import what_happened
from consent.interfaces import ConsentNotRevocable
from consent.models import Consent
from identity import national_id as nid
from identity import sessions
from identity.sessions import current_authentication
from identity.views import AMR_NAMES, LEVEL_NAMES, METHOD_NAMES
from mydata.clock import clock
from mydata.db import unit_of_work
from providers.services import DatasetEntry

bp = Blueprint("portal", __name__)

#: What happened to a consent, in the citizen's words; ``recipient`` is the organisation's name. Other
#: events (downloads, verifications) are said as the history says them.
EVENT_NAMES = {
    "consent.requested": lazy_gettext("%(recipient)s asked for your data"),
    "consent.granted": lazy_gettext("You agreed to send your data to %(recipient)s"),
    "consent.denied": lazy_gettext("You refused to send your data to %(recipient)s"),
    "consent.revoked": lazy_gettext("You revoked your consent for %(recipient)s"),
    "consent.expired": lazy_gettext("Your consent for %(recipient)s ended unused"),
    "delivery.completed": lazy_gettext("Data delivered to %(recipient)s"),
    "delivery.failed": lazy_gettext("Delivery to %(recipient)s failed; nothing was sent"),
}
#: A consent's outcome, as My consents shows it.
OUTCOMES = {
    GRANTED: lazy_gettext("Waiting for delivery"),
    DELIVERED: lazy_gettext("Delivered"),
    DENIED: lazy_gettext("Refused"),
    REVOKED: lazy_gettext("Revoked"),
    EXPIRED: lazy_gettext("Window passed, not delivered"),
}


def _login_first(path: str) -> ResponseReturnValue:
    return redirect(sessions.login_url(path), 303)


def _time(moment: dt.datetime | None) -> str:
    return "" if moment is None else str(format_datetime(moment, "yyyy-MM-dd HH:mm"))


def _titles(dataset_ids: Iterable[str], catalogue: dict[str, DatasetEntry]) -> list[str]:
    """Return the datasets' titles in the reader's language (the id when the catalogue lacks one)."""
    english = str(get_locale()) == "en"
    titles = []
    for dataset_id in dataset_ids:
        entry = catalogue.get(dataset_id)
        titles.append(dataset_id if entry is None else entry.title_en if english else entry.title_zh)
    return titles


def _outcome(consent: Consent) -> str:
    if consent.status == GRANTED and not portal.waiting_for_delivery(consent, clock().now()):
        return str(OUTCOMES[EXPIRED])  # not delivered in time; expired on the next delivery attempt
    return str(OUTCOMES.get(consent.status, consent.status))


def _render_consent_helpers() -> dict[str, object]:
    return {"time": _time, "outcome": _outcome}


@bp.get("/me")
def me() -> ResponseReturnValue:
    """Show the dashboard: who is logged in and how, recent activity, consents waiting, the ways to one's data."""
    authentication = current_authentication()
    if authentication is None:
        return _login_first("/me")
    uow = unit_of_work()
    board = portal.dashboard(
        uow, citizen_id=authentication.citizen_id, national_id=authentication.national_id, now=clock().now()
    )
    catalogue = portal.datasets_by_id(uow)
    events = [
        {
            "time": _time(e.time),
            "what": str(EVENT_NAMES[e.event] % {"recipient": board.recipients.get(e.consent_id or "", e.actor)})
            if e.event in EVENT_NAMES
            else what_happened(e.event),
            "datasets": _titles(e.datasets, catalogue),
            "failed": e.event.endswith(".failed") or e.outcome == "mismatch",
        }
        for e in board.recent
    ]
    return render_template(
        "portal/dashboard.html",
        authentication=authentication,
        masked_national_id=nid.mask(authentication.national_id),
        login_time=_time(dt.datetime.fromtimestamp(authentication.auth_time, dt.UTC)),
        level_name=LEVEL_NAMES[authentication.level],
        method_name=METHOD_NAMES.get(authentication.method, authentication.method),
        amr_names=[AMR_NAMES.get(a, a) for a in authentication.amr],
        events=events,
        waiting=board.waiting,
        titles=lambda ids: _titles(ids, catalogue),
        roles=board.staff_roles,
        **_render_consent_helpers(),
    )


@bp.get("/me/consents")
def my_consents() -> ResponseReturnValue:
    """List the citizen's consents: those waiting for delivery (revocable), then the past ones."""
    authentication = current_authentication()
    if authentication is None:
        return _login_first("/me/consents")
    uow = unit_of_work()
    found = portal.my_consents(uow, authentication.citizen_id, clock().now())
    catalogue = portal.datasets_by_id(uow)
    revoked = found.named(request.args.get("revoked", ""))
    return render_template(
        "portal/consents.html",
        waiting=found.waiting,
        past=found.past,
        revoked=revoked if revoked is not None and revoked.status == REVOKED else None,
        grant_seqs=found.grant_seqs,
        titles=lambda ids: _titles(ids, catalogue),
        **_render_consent_helpers(),
    )


@bp.get("/me/consents/<consent_id>/revoke")
def confirm_revoke(consent_id: str) -> ResponseReturnValue:
    """Ask the citizen to confirm the revocation: one accidental click never revokes."""
    authentication = current_authentication()
    if authentication is None:
        return _login_first(f"/me/consents/{consent_id}/revoke")
    uow = unit_of_work()
    try:
        consent = portal.revocable_consent(uow, consent_id, citizen_id=authentication.citizen_id, now=clock().now())
    except ConsentNotRevocable:
        return render_template("portal/revoke.html", consent=None), 409
    catalogue = portal.datasets_by_id(uow)
    return render_template(
        "portal/revoke.html", consent=consent, titles=lambda ids: _titles(ids, catalogue), **_render_consent_helpers()
    )


@bp.post("/me/consents/<consent_id>/revoke")
def revoke(consent_id: str) -> ResponseReturnValue:
    """Revoke the consent once confirmed; back to My consents, which says so."""
    # CSRFProtect has already refused a POST without the confirmation form's token.
    authentication = current_authentication()
    if authentication is None:
        return _login_first(f"/me/consents/{consent_id}/revoke")
    uow = unit_of_work()
    try:
        consents.revoke(
            uow,
            consent_id,
            citizen_id=authentication.citizen_id,
            national_id=authentication.national_id,
            now=clock().now(),
        )
    except ConsentNotRevocable:
        return render_template("portal/revoke.html", consent=None), 409
    uow.commit()
    return redirect(url_for(".my_consents", revoked=consent_id), 303)


@bp.get("/me/consents/<consent_id>/receipt")
def receipt(consent_id: str) -> ResponseReturnValue:
    """Download the signed consent receipt (a JWS) of one of my consents."""
    authentication = current_authentication()
    if authentication is None:
        return _login_first(f"/me/consents/{consent_id}/receipt")
    token = portal.consent_receipt(unit_of_work(), consent_id, citizen_id=authentication.citizen_id)
    return Response(
        token,
        mimetype="application/jose",
        headers={"Content-Disposition": f'attachment; filename="consent-receipt-{consent_id}.jws"'},
    )
