"""The operator's console (/console/operator, role ``operator``): what waits for review, and the platform's state."""

from __future__ import annotations

from flask import render_template
from flask.typing import ResponseReturnValue

from mydata.db import unit_of_work
from providers import services as providers_services
from providers.models import PENDING as PROVIDER_PENDING
from relying_parties import services
from relying_parties.consoles import console_blueprint
from relying_parties.models import PENDING

bp = console_blueprint("operator", __name__)


@bp.get("")
def index() -> ResponseReturnValue:
    """Show how many organisations, services, providers and datasets wait for a decision."""
    uow = unit_of_work()
    waiting = {
        "organisations": len(services.list_organisations(uow, PENDING)),
        "services": len(services.list_services(uow, status=PENDING)),
        "providers": sum(1 for p in providers_services.list_providers(uow) if p.status == PROVIDER_PENDING),
        "datasets": sum(1 for d in providers_services.list_datasets(uow) if d.status == PROVIDER_PENDING),
    }
    return render_template("console/operator/index.html", waiting=waiting)
