"""The operator's organisations page: the browser side of approving and suspending organisations.

A minimal console page (the full consoles come later) that makes the staff rules of identity.staff
real in a browser: viewing needs a login of level high; approving or suspending also needs one of
the last 15 minutes. A form posted with a weaker or older login is kept, the operator logs in again
with their eID card, and comes back to a page that shows the kept action for one more click.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from identity import staff
from identity.sessions import current_authentication
from mydata.db import UnitOfWork, unit_of_work
from relying_parties import services
from relying_parties.models import Organisation

bp = Blueprint("relying_parties_console", __name__, url_prefix="/operator")

ACTIONS: dict[str, Callable[..., Organisation]] = {
    "approve": services.approve_organisation,
    "suspend": services.suspend_organisation,
}


@bp.before_request
def _require_operator() -> None:
    # CSRFProtect has already refused a POST without its token.
    authentication = current_authentication()
    if authentication is not None:
        g.relying_parties_actor = services.authenticate_operator(
            unit_of_work(), bearer_token=None, citizen_id=authentication.citizen_id
        )
    action = staff.is_action(request.method)
    resume = None
    if action and request.view_args:
        resume = staff.StaffAction(
            request.view_args["action"], request.view_args["organisation_id"], url_for(".confirm")
        )
    staff.require_staff_session(authentication, action=action, resume=resume)


@bp.get("/organisations")
def organisations() -> ResponseReturnValue:
    """List the organisations, with a button for what may be done to each."""
    return render_template("admin/organisations.html", organisations=services.list_organisations(unit_of_work()))


@bp.get("/organisations/confirm")
def confirm() -> ResponseReturnValue:
    """Show the action kept across the operator's new login, to be confirmed with one click."""
    kept = staff.pending_action(current_authentication())
    if kept is None or kept.name not in ACTIONS:
        return redirect(url_for(".organisations"), 303)
    organisation = services.get_organisation(unit_of_work(), kept.target)
    return render_template("admin/confirm.html", action=kept.name, organisation=organisation)


@bp.post("/organisations/<organisation_id>/<any(approve, suspend):action>")
def act(organisation_id: str, action: str) -> ResponseReturnValue:
    """Approve or suspend an organisation."""
    uow: UnitOfWork = unit_of_work()
    organisation = ACTIONS[action](uow, organisation_id, actor=g.relying_parties_actor)
    staff.forget_action()
    done = {
        "approve": gettext("The organisation %(id)s is approved.", id=organisation.id),
        "suspend": gettext("The organisation %(id)s is suspended.", id=organisation.id),
    }
    flash(done[action])
    return redirect(url_for(".organisations"), 303)
