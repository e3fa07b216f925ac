"""The citizen's counter page (臨櫃核驗, DESIGN §6.5): pick datasets, show a clerk the code, follow the use.

Thin views over :mod:`consent.counter`. The code and the page's private key are kept in this
browser's own session cookie (for the latest use only), never in the database, so that the page can
be reloaded and can open the confirmation code sealed to it, and another browser cannot. The status
region of the page asks ``/me/counter/<id>/status`` every 2 seconds for an HTML fragment in the
reader's language (mydata/static/js/counter.js); without JavaScript, a reload shows the same.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask import session as flask_session
from flask.typing import ResponseReturnValue

from consent import counter, downloads
from consent.counter import CitizenView
from consent.downloads import Citizen
from consent.models import CounterUse
from consent.pdf import qr_data_uri
from identity.sessions import current_authentication, login_url
from mydata.clock import clock
from mydata.db import UnitOfWork, unit_of_work

bp = Blueprint("my_counter", __name__)

SESSION_KEY = "counter_page"
"""Where the browser's session keeps the latest use: ``{"use": id, "key": private JWK, "code": XXXX-XXXX}``."""
OPEN = ("offered", "claimed")
"""The states in which the page keeps asking for news."""


def _citizen() -> Citizen | None:
    authentication = current_authentication()
    if authentication is None:
        return None
    return Citizen(authentication.citizen_id, authentication.national_id, authentication.name, authentication.level)


def _held(use_id: str) -> dict[str, Any] | None:
    """Return what this browser holds of *use_id* (its key and code), or None."""
    held = flask_session.get(SESSION_KEY)
    if isinstance(held, dict) and held.get("use") == use_id:
        return held
    return None


def _view(uow: UnitOfWork, citizen: Citizen, use_id: str) -> CitizenView:
    held = _held(use_id)
    return counter.citizen_view(
        uow, citizen_id=citizen.citizen_id, use_id=use_id, page_key=held["key"] if held else None, now=clock().now()
    )


def _status(view: CitizenView) -> dict[str, Any]:
    """Return what the status region shows of *view*: the view, and by when a clerk must confirm."""
    claimed_at = view.use.claimed_at
    return {"view": view, "confirm_by": claimed_at + counter.CONFIRM_WITHIN if claimed_at else None}


def _picker(
    uow: UnitOfWork, citizen: Citizen, latest: CounterUse | None, picked: set[str], *, error: str | None = None
) -> str:
    offered = downloads.choices(uow, citizen.level)
    step_up = {
        choice.entry.id: login_url(url_for(".choose", datasets=choice.entry.id), choice.entry.min_level)
        for choice in offered
        if not choice.allowed
    }
    elsewhere = latest is not None and _held(latest.id) is None and _view(uow, citizen, latest.id).state in OPEN
    first = next((f"dataset-{n}" for n, choice in enumerate(offered, 1) if choice.allowed), "datasets-error")
    return render_template(
        "portal/counter.html",
        choices=offered,
        first_choice=first,
        picked=picked,
        step_up=step_up,
        error=error,
        cancelled=request.args.get("cancelled") == "1",
        open_elsewhere=elsewhere,
    )


@bp.get("/me/counter")
def choose() -> ResponseReturnValue:
    """Offer the datasets to show at a counter; send this browser back to its code while it is open."""
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(request.full_path.rstrip("?")), 303)
    uow = unit_of_work()
    picked = {part for part in request.args.get("datasets", "").split(",") if part}
    latest = counter.latest_use(uow, citizen.citizen_id)
    if not picked and latest is not None and _held(latest.id) and _view(uow, citizen, latest.id).state in OPEN:
        return redirect(url_for(".page", use_id=latest.id), 303)
    return _picker(uow, citizen, latest, picked)


@bp.post("/me/counter")
def create() -> ResponseReturnValue:
    """Make a code for the picked datasets (cancelling an open one); keep its key in this browser."""
    # CSRFProtect has already refused a POST without the form's token.
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(url_for(".choose")), 303)
    uow = unit_of_work()
    values = request.form.getlist("datasets")
    if not any(value.strip() for value in values):
        return _picker(uow, citizen, counter.latest_use(uow, citizen.citizen_id), set(), error="datasets"), 400
    dataset_ids = downloads.parse_datasets(values)
    selection = downloads.select_datasets(uow, dataset_ids, citizen.level)
    if selection.step_up:
        return redirect(login_url(url_for(".choose", datasets=",".join(dataset_ids)), selection.step_up), 303)
    made = counter.offer(uow, citizen=citizen, entries=selection.entries, now=clock().now())
    flask_session[SESSION_KEY] = {"use": made.use.id, "key": made.page_key, "code": made.display_code}
    uow.commit()
    return redirect(url_for(".page", use_id=made.use.id), 303)


@bp.get("/me/counter/<use_id>")
def page(use_id: str) -> ResponseReturnValue:
    """Show the code large with its QR code and countdown, and the use's state."""
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(request.full_path.rstrip("?")), 303)
    uow = unit_of_work()
    view = _view(uow, citizen, use_id)
    held = _held(use_id)
    code = held["code"] if held and view.state == "offered" else None
    clerk_url = f"{current_app.config['MYDATA_ISSUER']}/counter?code={code}" if code else None
    return render_template(
        "portal/counter_use.html",
        **_status(view),
        code=code,
        qr=qr_data_uri(clerk_url) if clerk_url else None,
        held=held is not None,
        datasets=counter.datasets_of(uow, view.use),
        seconds_left=max(0, int((view.use.expires_at - clock().now()).total_seconds())),
    )


@bp.get("/me/counter/<use_id>/status")
def status(use_id: str) -> ResponseReturnValue:
    """Answer the use's state as an HTML fragment for the page's status region."""
    citizen = _citizen()
    if citizen is None:
        login = login_url(url_for(".page", use_id=use_id))
        return render_template("portal/_counter_status.html", view=None, login=login), 401
    return render_template("portal/_counter_status.html", **_status(_view(unit_of_work(), citizen, use_id)))


@bp.post("/me/counter/<use_id>/cancel")
def cancel(use_id: str) -> ResponseReturnValue:
    """Cancel the code; back to the picker, which says so (a use already shown stays as it was)."""
    # CSRFProtect has already refused a POST without the form's token.
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(url_for(".page", use_id=use_id)), 303)
    uow = unit_of_work()
    use = counter.cancel(uow, citizen_id=citizen.citizen_id, use_id=use_id, now=clock().now())
    uow.commit()
    if use.status != "cancelled":
        return redirect(url_for(".page", use_id=use_id), 303)
    if _held(use_id):
        flask_session.pop(SESSION_KEY, None)
    return redirect(url_for(".choose", cancelled="1"), 303)
