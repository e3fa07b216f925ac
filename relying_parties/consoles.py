"""The staff consoles (issue 13): one per role, each a blueprint under /console, and the page that lists them.

Staff log in with their eID card and act through roles of their own account (DESIGN §1): the
operator console needs the ``operator`` role, the agency console ``agency_officer`` of an agency,
the relying-party console ``rp_developer`` of an organisation. Every console page first passes
:func:`member` (through :func:`console_blueprint`):

* an anonymous visitor, or a staff session below level high, is sent to log in (step-up), and an
  action (a POST) also needs a login of the last 15 minutes (:mod:`identity.staff`);
* an account without the console's role gets 403 (:class:`NotAConsoleMember`), on every page and
  every console API alike;
* the :class:`Member` it returns names the organisations (or agencies) the role is held for; a
  console shows and changes only those (a member of one organisation never sees another's data).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, g, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from identity import staff
from identity.services import staff_roles
from identity.sessions import current_authentication
from mydata.db import unit_of_work
from mydata.errors import handle_domain_error, wants_json
from relying_parties.interfaces import NotAConsoleMember


@dataclass(frozen=True)
class Console:
    """A console: its path segment, the role that opens it, and its title's msgid."""

    name: str
    role: str
    endpoint: str


#: The consoles, in the order the console list shows them.
CONSOLES = (
    Console("operator", "operator", "console_operator.index"),
    Console("agency", "agency_officer", "console_agency.index"),
    Console("rp", "rp_developer", "console_rp.index"),
)
_BY_NAME = {console.name: console for console in CONSOLES}


@dataclass(frozen=True)
class Member:
    """Who uses a console: the account, the role, and the organisations (or agencies) it holds it for."""

    citizen_id: str
    name: str
    role: str
    scopes: tuple[str, ...]

    def acts_for(self, scope: str) -> bool:
        """Tell whether the role is held for *scope* (an organisation or agency id)."""
        return scope in self.scopes


def member(console: str) -> Member:
    """Return the current account as a member of *console*; send to log in, or raise 403, otherwise."""
    authentication = current_authentication()
    staff.require_staff_session(authentication, action=staff.is_action(request.method))
    assert authentication is not None  # require_staff_session raised for an anonymous visitor
    role = _BY_NAME[console].role
    scopes = tuple(r.organisation_id for r in staff_roles(unit_of_work(), authentication.citizen_id) if r.role == role)
    if not scopes:
        raise NotAConsoleMember(console)
    return Member(authentication.citizen_id, authentication.name, role, scopes)


def current_member() -> Member:
    """Return the member the console's guard let in on this request."""
    found: Member = g.console_member
    return found


#: Each console's sections, in the order its navigation lists them: (endpoint, msgid of the label).
#: A section whose endpoint is not registered is not listed.
SECTIONS: dict[str, list[tuple[str, str]]] = {
    "operator": [
        ("console_operator.index", _l("Overview")),
        ("console_operator.organisations", _l("Organisations")),
        ("console_operator.services", _l("Services")),
        ("console_operator.providers", _l("Providers")),
        ("console_operator.datasets", _l("Datasets")),
        ("console_operator_schemas.index", _l("Schema versions")),
        ("console_operator.audit", _l("Decisions")),
        ("console_operator_statistics.index", _l("Statistics")),
        ("console_operator.ledger_status", _l("Ledger")),
        ("console_operator.keys", _l("Signing key")),
    ],
    "agency": [
        ("console_agency.index", _l("Overview")),
        ("console_agency.health", _l("Provider health")),
        ("console_agency.usage", _l("Dataset usage")),
    ],
    "rp": [
        ("console_rp.index", _l("Overview")),
        ("console_rp.clients", _l("Clients")),
        ("console_rp.services_page", _l("Services")),
        ("console_rp.initial_access_token", _l("Initial access token")),
        ("console_rp_transactions.index", _l("Transaction log")),
    ],
}


def console_blueprint(console: str, import_name: str, section: str | None = None) -> Blueprint:
    """Return the blueprint of *console* at /console/<console>[/<section>]; every request passes :func:`member`.

    A console's module has the blueprint without *section*; a part of a console kept in a module
    of its own (the operator's statistics) gets one with its *section*.
    """
    name = f"console_{console}" + (f"_{section}" if section else "")
    bp = Blueprint(name, import_name, url_prefix=f"/console/{console}" + (f"/{section}" if section else ""))

    @bp.before_request
    def _guard() -> None:
        # CSRFProtect has already refused a POST without its token.
        g.console_member = member(console)

    @bp.context_processor
    def _context() -> dict[str, object]:
        sections = [
            (endpoint, str(label)) for endpoint, label in SECTIONS[console] if endpoint in current_app.view_functions
        ]
        return {"console": _BY_NAME[console], "member": g.get("console_member"), "sections": sections}

    bp.register_error_handler(NotAConsoleMember, refused)
    return bp


def refused(error: NotAConsoleMember) -> ResponseReturnValue:
    """Say, in the reader's language, that this account has no role that opens the console (403); JSON to programs."""
    if wants_json():
        return handle_domain_error(error)
    return render_template("console/refused.html", error=error), error.status


home = Blueprint("console_home", __name__, url_prefix="/console")
home.register_error_handler(NotAConsoleMember, refused)


@home.get("")
def index() -> ResponseReturnValue:
    """List the consoles this account's roles open; with none, say so and link the organisation's application."""
    authentication = current_authentication()
    staff.require_staff_session(authentication, action=False)
    assert authentication is not None
    held = {r.role for r in staff_roles(unit_of_work(), authentication.citizen_id)}
    mine = [console for console in CONSOLES if console.role in held]
    return render_template("console/home.html", consoles=mine)
