"""The relying-party console (/console/rp, role ``rp_developer`` of an organisation): apply, clients, services, tokens.

Every page below ``/console/rp`` passes the console's door (:func:`relying_parties.consoles.member`),
which refuses an account without the ``rp_developer`` role. Applying is the exception: an account
applies *before* it holds any role (the role comes with the application), so ``/console/rp/apply``
is a blueprint of its own whose guard asks for a login at level high (and, to post, one of the last
15 minutes), but no role. Everything else is done through :mod:`relying_parties.services` and
:mod:`relying_parties.registration`, the same rules as the JSON API and ``/oauth/register``:

* a member works on one of their organisations at a time (``?organisation=`` or a form's
  ``organisation``; the first one by default) and never on another's: another organisation is 403,
  another organisation's client 404;
* clients are checked as RFC 7591 registration checks them
  (:func:`relying_parties.registration.check_client_metadata`); their registration access token
  (RFC 7592) and the organisation's initial access token are shown once, in a ``no-store`` answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from identity import staff
from identity.oauth import clients as oauth_clients
from identity.oauth.interfaces import InvalidClientMetadata
from identity.oauth.models import OAuthClient
from identity.services import grant_role, staff_roles
from identity.sessions import current_authentication
from mydata.clock import clock
from mydata.db import UnitOfWork, unit_of_work
from providers import services as providers_services
from relying_parties import registration, services
from relying_parties.consoles import console_blueprint, current_member
from relying_parties.interfaces import (
    AlreadyRegistered,
    InvalidInput,
    InvalidRegistrationNumber,
    NotAConsoleMember,
    OrganisationNotFound,
    UnknownDataset,
)
from relying_parties.models import APPROVED, ORGANISATION_TYPES, Organisation

bp = console_blueprint("rp", __name__)
DEVELOPER_ROLE = "rp_developer"
MAX_JWKS_BYTES = 64 * 1024  # a JWKS of ten RSA keys is about 8 kB


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


def _organisations(uow: UnitOfWork) -> list[Organisation]:
    found = []
    for organisation_id in current_member().scopes:
        try:
            found.append(services.get_organisation(uow, organisation_id))
        except OrganisationNotFound:
            continue
    return found


def _organisation(uow: UnitOfWork) -> tuple[Organisation, list[Organisation]]:
    """Return the organisation this request works on, and all the member's; 403 for anyone else's."""
    mine = _organisations(uow)
    wanted = request.values.get("organisation")
    if wanted is None:
        if not mine:
            abort(404)
        return mine[0], mine
    if not current_member().acts_for(wanted):
        raise NotAConsoleMember("rp")
    chosen = next((o for o in mine if o.id == wanted), None)
    if chosen is None:
        abort(404)
    return chosen, mine


def _no_store(body: str, status: int) -> Response:
    """Answer a page that shows a secret once: never cached (RFC 6749 §5.1's rule for tokens)."""
    page = current_app.make_response((body, status))
    page.headers["Cache-Control"] = "no-store"
    page.headers["Pragma"] = "no-cache"
    return page


def _actor() -> str:
    return f"citizen:{current_member().citizen_id}"


def _sandbox() -> tuple[bool, str | None]:
    sandbox = bool(current_app.config["MYDATA_SANDBOX"])
    return sandbox, (str(current_app.config["MYDATA_ISSUER"]) if sandbox else None)


# -- applying ---------------------------------------------------------------------------------------

#: The application page: any account logged in with its eID card (no role yet), see the module's docstring.
apply_bp = Blueprint("console_rp_apply", __name__, url_prefix="/console/rp/apply")

APPLY_FIELDS = (
    "id",
    "name_zh",
    "name_en",
    "type",
    "registration_number",
    "contact_name",
    "contact_email",
    "contact_phone",
)
APPLY_MESSAGES = {
    "id": _l("Use 1 to 64 lowercase letters, digits and hyphens, like new-bank."),
    "id_taken": _l("An organisation is already registered with this id: choose another."),
    "name_zh": _l("Give a name of 1 to 200 characters."),
    "name_en": _l("Give a name of 1 to 200 characters."),
    "type": _l("Choose the kind of organisation."),
    "registration_number": _l(
        "This is not a valid unified business number: 8 digits whose weighted check is divisible by 5."
    ),
    "number_taken": _l(
        "An approved organisation holds this registration number: ask the platform operator to add you to it."
    ),
    "contact_name": _l("Give the contact's name."),
    "contact_email": _l("Give an email address, like name@example.com."),
    "contact_phone": _l("Give a phone number, like +886 2 1234 5678."),
}


@apply_bp.before_request
def _require_eid_login() -> None:
    # Level high like every staff page, and a login of the last 15 minutes to post; no role needed.
    staff.require_staff_session(current_authentication(), action=staff.is_action(request.method))


def _held_organisations(uow: UnitOfWork, citizen_id: str) -> list[str]:
    return [r.organisation_id for r in staff_roles(uow, citizen_id) if r.role == DEVELOPER_ROLE]


@apply_bp.route("", methods=["GET", "POST"])
def apply() -> ResponseReturnValue:
    """Show the application form, or record an application: a pending organisation the applicant develops."""
    authentication = current_authentication()
    assert authentication is not None  # the guard sent an anonymous visitor to log in
    uow = unit_of_work()
    held = _held_organisations(uow, authentication.citizen_id)
    if held:
        return _apply_page(held=held, form={}, errors={}), 409
    if request.method == "GET":
        return _apply_page(held=[], form={"type": "bank"}, errors={})
    form = {name: request.form.get(name, "") for name in APPLY_FIELDS}
    try:
        services.register_organisation(
            uow,
            organisation_id=form["id"].strip(),
            name_zh=form["name_zh"],
            name_en=form["name_en"],
            organisation_type=form["type"],
            registration_number=form["registration_number"],
            contacts=[{"name": form["contact_name"], "email": form["contact_email"], "phone": form["contact_phone"]}],
            actor=f"citizen:{authentication.citizen_id}",
        )
    except (InvalidInput, InvalidRegistrationNumber, AlreadyRegistered) as error:
        errors = _apply_errors(uow, error, form["id"].strip())
        return _apply_page(held=[], form=form, errors=errors), error.status
    grant_role(uow, authentication.citizen_id, DEVELOPER_ROLE, form["id"].strip(), clock().now())
    flash(gettext("Your application for %(id)s is recorded: an operator will review it.", id=form["id"].strip()))
    return redirect(url_for("console_rp.index"), 303)


def _apply_page(*, held: list[str], form: Mapping[str, str], errors: Mapping[str, str]) -> str:
    return render_template("console/rp/apply.html", held=held, form=form, errors=errors, types=ORGANISATION_TYPES)


def _apply_errors(uow: UnitOfWork, error: Exception, organisation_id: str) -> dict[str, str]:
    """Say which field of the application to fix, in the reader's language."""
    if isinstance(error, InvalidRegistrationNumber):
        return {"registration_number": str(APPLY_MESSAGES["registration_number"])}
    if isinstance(error, AlreadyRegistered):
        if uow.session.get(Organisation, organisation_id) is not None:
            return {"id": str(APPLY_MESSAGES["id_taken"])}
        return {"registration_number": str(APPLY_MESSAGES["number_taken"])}
    fields: Mapping[str, Any] = getattr(error, "extra", {}).get("fields") or {}
    errors = {}
    for name, problem in fields.items():
        if name == "contacts":
            # {index: {"email": [...]}} or {index: [...]}: the one contact of this form.
            inner = next(iter(problem.values())) if isinstance(problem, Mapping) else problem
            for part in inner if isinstance(inner, Mapping) else ("name",):
                errors[f"contact_{part}"] = str(APPLY_MESSAGES[f"contact_{part}"])
        elif name == "name":  # the contact's name (the organisation's names are name_zh and name_en)
            errors["contact_name"] = str(APPLY_MESSAGES["contact_name"])
        elif name in APPLY_MESSAGES:
            errors[name] = str(APPLY_MESSAGES[name])
    return errors or {"id": str(APPLY_MESSAGES["id"])}


# -- clients ----------------------------------------------------------------------------------------


@bp.route("/clients", methods=["GET", "POST"])
def clients() -> ResponseReturnValue:
    """List the organisation's clients; register one (RFC 7591 checks), showing its access token once."""
    uow = unit_of_work()
    organisation, mine = _organisation(uow)
    form: dict[str, str] = {}
    error = None
    status = 200
    if request.method == "POST":
        form = {name: request.form.get(name, "") for name in ("client_name", "redirect_uris", "jwks")}
        if organisation.status != APPROVED:
            status = 409
        else:
            sandbox, origin = _sandbox()
            try:
                metadata = _client_metadata(form["client_name"], form["redirect_uris"], _jwks_from_form())
                client, token = registration.register_dynamic_client(
                    uow, organisation, metadata, sandbox=sandbox, sandbox_origin=origin
                )
            except InvalidClientMetadata as refused:
                error, status = refused.description, 400
            else:
                page = render_template(
                    "console/rp/client_secret.html",
                    organisation=organisation,
                    client=client,
                    token=token,
                    uri=_registration_client_uri(client.client_id),
                    created=True,
                )
                return _no_store(page, 201)
    return (
        render_template(
            "console/rp/clients.html",
            organisation=organisation,
            organisations=mine,
            clients=services.organisation_clients(uow, organisation.id),
            form=form,
            error=error,
        ),
        status,
    )


def _own_client(uow: UnitOfWork, client_id: str) -> OAuthClient:
    """Return a client of one of the member's organisations; 404 for any other (its existence is not theirs)."""
    client = uow.session.get(OAuthClient, client_id)
    if (
        client is None
        or client.organisation_id is None
        or not current_member().acts_for(client.organisation_id)
        or client.status == oauth_clients.DELETED
    ):
        abort(404)
    return client


@bp.route("/clients/<client_id>", methods=["GET", "POST"])
def client(client_id: str) -> ResponseReturnValue:
    """Show a client and change its name, redirect URIs or keys, with the checks of registration."""
    uow = unit_of_work()
    found = _own_client(uow, client_id)
    organisation = services.get_organisation(uow, str(found.organisation_id))
    form = {
        "client_name": found.name,
        "redirect_uris": "\n".join(found.redirect_uris),
        "jwks": json.dumps(found.jwks, indent=2),
    }
    if request.method == "GET":
        return render_template("console/rp/client.html", organisation=organisation, client=found, form=form, error=None)
    form = {name: request.form.get(name, form[name]) for name in ("client_name", "redirect_uris", "jwks")}
    sandbox, origin = _sandbox()
    try:
        if organisation.status != APPROVED:
            raise InvalidClientMetadata(f"The organisation {organisation.id!r} is {organisation.status}.")
        jwks = _jwks_from_form() if (form["jwks"].strip() or request.files.get("jwks_file")) else found.jwks
        metadata = _client_metadata(form["client_name"], form["redirect_uris"], jwks)
        settings = registration.check_client_metadata(metadata, sandbox=sandbox, sandbox_origin=origin)
    except InvalidClientMetadata as refused:
        page = render_template(
            "console/rp/client.html", organisation=organisation, client=found, form=form, error=refused.description
        )
        return page, 400
    registration.update_organisation_client(
        uow,
        found,
        name=settings.name,
        jwks=settings.jwks,
        redirect_uris=settings.redirect_uris,
        sandbox=sandbox,
        sandbox_origin=origin,
    )
    flash(gettext("The client %(id)s is changed.", id=found.client_id))
    return redirect(url_for(".client", client_id=found.client_id), 303)


@bp.post("/clients/<client_id>/token")
def client_token(client_id: str) -> ResponseReturnValue:
    """Give a client a new registration access token (the old one stops working), shown once."""
    uow = unit_of_work()
    found = _own_client(uow, client_id)
    organisation = services.get_organisation(uow, str(found.organisation_id))
    token = registration.issue_registration_access_token(uow, found.client_id)
    page = render_template(
        "console/rp/client_secret.html",
        organisation=organisation,
        client=found,
        token=token,
        uri=_registration_client_uri(found.client_id),
        created=False,
    )
    return _no_store(page, 201)


def _registration_client_uri(client_id: str) -> str:
    return registration.registration_client_uri(str(current_app.config["MYDATA_ISSUER"]), client_id)


def _jwks_from_form() -> Any:
    """Return the JWKS of the form: the uploaded file if there is one, else the pasted text; None if neither."""
    upload = request.files.get("jwks_file")
    text = ""
    if upload is not None and upload.filename:
        raw = upload.read(MAX_JWKS_BYTES + 1)
        if len(raw) > MAX_JWKS_BYTES:
            raise InvalidClientMetadata(gettext("The keys file is larger than 64 kB."))
        text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        text = request.form.get("jwks", "")
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidClientMetadata(gettext("The keys are not valid JSON.")) from None


def _client_metadata(name: str, redirect_uris: str, jwks: Any) -> dict[str, Any]:
    """Return the RFC 7591 metadata a console form stands for (each redirect URI on a line of its own)."""
    metadata: dict[str, Any] = {
        "client_name": name,
        "redirect_uris": [u.strip() for u in redirect_uris.splitlines() if u.strip()],
    }
    if jwks is not None:
        metadata["jwks"] = jwks
    return metadata


# -- services ---------------------------------------------------------------------------------------

SERVICE_FIELDS = ("name", "name_zh", "name_en", "purpose_zh", "purpose_en", "purpose_code", "retention_days")
SERVICE_MESSAGES = {
    "name": _l("Use 1 to 35 lowercase letters, digits and hyphens, like loans."),
    "name_taken": _l("Your organisation already has a service with this name."),
    "name_zh": _l("Give a name of 1 to 200 characters."),
    "name_en": _l("Give a name of 1 to 200 characters."),
    "purpose_zh": _l("Give the purpose in 1 to 2000 characters."),
    "purpose_en": _l("Give the purpose in 1 to 2000 characters."),
    "purpose_code": _l("Give the 3-digit specific purpose of the Personal Data Protection Act, like 067."),
    "retention_days": _l("Give a whole number of days, from 1 to 10950."),
    "datasets": _l("Choose at least one required dataset, at most 20 in all."),
    "unknown_dataset": _l("A dataset you chose is no longer in the catalogue."),
}


@bp.route("/services", methods=["GET", "POST"])
def services_page() -> ResponseReturnValue:
    """List the organisation's services; propose one for an operator's approval."""
    uow = unit_of_work()
    organisation, mine = _organisation(uow)
    datasets = providers_services.catalogue(uow).datasets
    form: dict[str, str] = {"retention_days": "30"}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = {name: request.form.get(name, "") for name in SERVICE_FIELDS}
        choices = {d.id: request.form.get(f"dataset-{d.id}", "") for d in datasets}
        form.update({f"dataset-{k}": v for k, v in choices.items()})
        if organisation.status != APPROVED:
            status = 409
        else:
            try:
                retention: object = int(form["retention_days"])
            except ValueError:
                retention = form["retention_days"]
            try:
                service = services.define_service(
                    uow,
                    organisation_id=organisation.id,
                    service_id=f"{organisation.id}.{form['name'].strip()}",
                    name_zh=form["name_zh"],
                    name_en=form["name_en"],
                    purpose_zh=form["purpose_zh"],
                    purpose_en=form["purpose_en"],
                    purpose_code=form["purpose_code"].strip(),
                    required_datasets=[k for k, v in choices.items() if v == "required"],
                    optional_datasets=[k for k, v in choices.items() if v == "optional"],
                    retention_days=retention,  # type: ignore[arg-type]  # define_service checks it
                    level=None,
                    actor=_actor(),
                )
            except (InvalidInput, UnknownDataset, AlreadyRegistered) as error:
                errors, status = _service_errors(error), error.status
            else:
                flash(gettext("The service %(id)s is proposed: an operator will review it.", id=service.id))
                return redirect(url_for(".services_page", organisation=organisation.id), 303)
    return (
        render_template(
            "console/rp/services.html",
            organisation=organisation,
            organisations=mine,
            services=services.list_services(uow, organisation_id=organisation.id),
            datasets=datasets,
            form=form,
            errors=errors,
        ),
        status,
    )


def _service_errors(error: Exception) -> dict[str, str]:
    """Say which field of the service to fix, in the reader's language."""
    if isinstance(error, AlreadyRegistered):
        return {"name": str(SERVICE_MESSAGES["name_taken"])}
    if isinstance(error, UnknownDataset):
        return {"datasets": str(SERVICE_MESSAGES["unknown_dataset"])}
    fields: Mapping[str, Any] = getattr(error, "extra", {}).get("fields") or {}
    errors = {}
    for name in fields:
        target = {"id": "name", "required_datasets": "datasets", "optional_datasets": "datasets"}.get(name, name)
        if target in SERVICE_MESSAGES:
            errors[target] = str(SERVICE_MESSAGES[target])
    return errors or {"name": str(SERVICE_MESSAGES["name"])}


# -- initial access tokens --------------------------------------------------------------------------


@bp.route("/initial-access-token", methods=["GET", "POST"])
def initial_access_token() -> ResponseReturnValue:
    """Explain the initial access token; issue a new one (the previous one stops working), shown once."""
    uow = unit_of_work()
    organisation, mine = _organisation(uow)
    if request.method == "POST":
        if organisation.status != APPROVED:
            page = render_template("console/rp/token.html", organisation=organisation, organisations=mine, token=None)
            return page, 409
        _row, token = services.issue_initial_access_token(uow, organisation.id, actor=_actor())
        page = render_template("console/rp/token.html", organisation=organisation, organisations=mine, token=token)
        return _no_store(page, 201)
    return render_template("console/rp/token.html", organisation=organisation, organisations=mine, token=None)
