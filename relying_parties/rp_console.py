"""The relying-party console (/console/rp, role ``rp_developer`` of an organisation): its clients and services."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from mydata.db import unit_of_work
from relying_parties import services
from relying_parties.consoles import console_blueprint, current_member
from relying_parties.interfaces import OrganisationNotFound

bp = console_blueprint("rp", __name__)


@bp.get("")
def index() -> ResponseReturnValue:
    """Show the member's organisations: their status, OAuth clients and services."""
    uow = unit_of_work()
    organisations = []
    for organisation_id in current_member().scopes:
        try:
            organisation = services.get_organisation(uow, organisation_id)
        except OrganisationNotFound:
            continue  # a role for an organisation that was never registered opens nothing
        organisations.append(
            (
                organisation,
                services.organisation_clients(uow, organisation.id),
                services.list_services(uow, organisation_id=organisation.id),
            )
        )
    return render_template("console/rp/index.html", organisations=organisations)
