"""The agency console (/console/agency, role ``agency_officer`` of an agency): its providers and datasets."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from mydata.db import unit_of_work
from providers import services as providers_services
from relying_parties.consoles import console_blueprint, current_member

bp = console_blueprint("agency", __name__)


@bp.get("")
def index() -> ResponseReturnValue:
    """List the member's agencies with their providers and each provider's datasets (no personal data)."""
    uow = unit_of_work()
    member = current_member()
    agencies = [a for a in providers_services.list_agencies(uow) if member.acts_for(a.id)]
    datasets = providers_services.list_datasets(uow)
    by_provider = {p.id: [d for d in datasets if d.provider_id == p.id] for a in agencies for p in a.providers}
    return render_template("console/agency/index.html", agencies=agencies, datasets=by_provider)
