"""The agency console (/console/agency, role ``agency_officer`` of an agency): its providers and datasets.

An officer registers the agency's providers (pending until an operator approves them) and datasets
(likewise), edits a dataset's titles, descriptions and minimum level, proposes a new schema (a new
version, published only once an operator approves it: relying_parties.operator_schemas), rotates a
provider's keys, checks its providers' health and sees how often each dataset was used, by which
services (counts only). Everything is scoped to the agencies the member acts for: another agency's
provider or dataset answers 404, as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from consent.usage import DEFAULT_DAYS, dataset_usage
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.errors import MydataError
from providers import interfaces as errors
from providers import services as providers_services
from providers.models import LEVELS, SCHEMA_PENDING
from relying_parties.consoles import Member, console_blueprint, current_member

bp = console_blueprint("agency", __name__)

FieldErrors = dict[str, list[str]]


def _actor(member: Member) -> str:
    return f"citizen:{member.citizen_id}"


def _allow_http() -> bool:
    # Plain http is for the sandbox only (its agencies run on 127.0.0.1); production needs https.
    return bool(current_app.config["MYDATA_SANDBOX"])


@bp.get("")
def index() -> ResponseReturnValue:
    """List the member's agencies with their providers and each provider's datasets (no personal data)."""
    uow = unit_of_work()
    member = current_member()
    agencies = [a for a in providers_services.list_agencies(uow) if member.acts_for(a.id)]
    datasets = providers_services.agency_datasets(uow, member.scopes)
    by_provider = {p.id: [d for d in datasets if d.provider_id == p.id] for a in agencies for p in a.providers}
    pending = {
        v.dataset_id
        for v in providers_services.list_schema_versions(
            uow, status=SCHEMA_PENDING, dataset_ids=[d.id for d in datasets]
        )
    }
    return render_template(
        "console/agency/index.html", agencies=agencies, datasets=by_provider, pending_schemas=pending
    )


# -- providers ------------------------------------------------------------------------------------


@bp.route("/providers/new", methods=["GET", "POST"])
def new_provider() -> ResponseReturnValue:
    """Register a provider of one of the member's agencies, pending the operator's approval."""
    member = current_member()
    form = {"agency": member.scopes[0], "id": "", "base_url": "", "jwks": ""}
    field_errors: FieldErrors = {}
    if request.method == "POST":
        form = {name: request.form.get(name, "").strip() for name in form}
        if not member.acts_for(form["agency"]):
            field_errors["agency"] = [gettext("Choose one of your agencies.")]
        jwks = _json_field(form["jwks"], "jwks", field_errors)
        if not field_errors:
            try:
                provider = providers_services.register_provider(
                    unit_of_work(),
                    provider_id=form["id"],
                    agency_id=form["agency"],
                    base_url=form["base_url"],
                    jwks=jwks,
                    allow_http=_allow_http(),
                    actor=_actor(member),
                )
            except MydataError as error:
                field_errors = _field_errors(error, id_kind="provider")
            else:
                flash(
                    gettext("The provider %(id)s is registered and waits for an operator's approval.", id=provider.id)
                )
                return redirect(url_for(".provider", provider_id=provider.id), 303)
    return _form_page(
        "console/agency/provider_new.html", field_errors, form=form, agencies=[(a, a) for a in member.scopes]
    )


@bp.get("/providers/<provider_id>")
def provider(provider_id: str) -> ResponseReturnValue:
    """Show one of the member's providers: address, keys, status, datasets, and the key rotation form."""
    member = current_member()
    found = providers_services.agency_provider(unit_of_work(), provider_id, member.scopes)
    form = {"jwks": json.dumps(found.jwks, ensure_ascii=False, indent=2)}
    return render_template("console/agency/provider.html", provider=found, form=form, errors=[], field_errors={})


@bp.post("/providers/<provider_id>/keys")
def rotate_keys(provider_id: str) -> ResponseReturnValue:
    """Replace a provider's JWKS: from now on the platform accepts answers signed with the new keys only."""
    member = current_member()
    uow = unit_of_work()
    found = providers_services.agency_provider(uow, provider_id, member.scopes)
    form = {"jwks": request.form.get("jwks", "")}
    field_errors: FieldErrors = {}
    jwks = _json_field(form["jwks"], "jwks", field_errors)
    if not field_errors:
        try:
            providers_services.update_provider(uow, found.id, jwks=jwks, allow_http=_allow_http(), actor=_actor(member))
        except MydataError as error:
            field_errors = _field_errors(error, id_kind="provider")
        else:
            flash(
                gettext(
                    "The keys of %(id)s are replaced: the provider must sign its answers with the new key from now on.",
                    id=found.id,
                )
            )
            return redirect(url_for(".provider", provider_id=found.id), 303)
    return _form_page("console/agency/provider.html", field_errors, provider=found, form=form)


# -- datasets -------------------------------------------------------------------------------------

_DATASET_TEXTS = ("title_zh", "title_en", "description_zh", "description_en")


@bp.route("/datasets/new", methods=["GET", "POST"])
def new_dataset() -> ResponseReturnValue:
    """Register a dataset of one of the member's providers, with its schema, pending the operator's approval."""
    member = current_member()
    uow = unit_of_work()
    providers = providers_services.agency_providers(uow, member.scopes)
    names = ("provider", "id", *_DATASET_TEXTS, "schema", "min_level")
    form: dict[str, Any] = dict.fromkeys(names, "") | {"min_level": "substantial", "citizen_downloadable": True}
    if providers:
        form["provider"] = request.args.get("provider", providers[0].id)
    field_errors: FieldErrors = {}
    if request.method == "POST":
        form = {name: request.form.get(name, "") for name in names}
        form["citizen_downloadable"] = request.form.get("citizen_downloadable") == "yes"
        if form["provider"] not in {p.id for p in providers}:
            field_errors["provider"] = [gettext("Choose one of your agencies' providers.")]
        schema = _json_field(form["schema"], "schema", field_errors)
        if not field_errors:
            try:
                dataset = providers_services.register_dataset(
                    uow,
                    dataset_id=form["id"].strip(),
                    provider_id=form["provider"],
                    json_schema=schema,
                    min_level=form["min_level"],
                    citizen_downloadable=form["citizen_downloadable"],
                    actor=_actor(member),
                    **{name: form[name] for name in _DATASET_TEXTS},
                )
            except MydataError as error:
                field_errors = _field_errors(error, id_kind="dataset")
            else:
                flash(gettext("The dataset %(id)s is registered and waits for an operator's approval.", id=dataset.id))
                return redirect(url_for(".dataset", dataset_id=dataset.id), 303)
    return _form_page("console/agency/dataset_new.html", field_errors, form=form, providers=providers, levels=LEVELS)


@bp.get("/datasets/<dataset_id>")
def dataset(dataset_id: str) -> ResponseReturnValue:
    """Show one of the member's datasets: the edit form, the published schema and its proposed versions."""
    member = current_member()
    found = providers_services.agency_dataset(unit_of_work(), dataset_id, member.scopes)
    return _dataset_page(found, field_errors={})


@bp.post("/datasets/<dataset_id>")
def edit_dataset(dataset_id: str) -> ResponseReturnValue:
    """Change a dataset's titles, descriptions, minimum level and downloadability (at once, no approval)."""
    member = current_member()
    uow = unit_of_work()
    found = providers_services.agency_dataset(uow, dataset_id, member.scopes)
    changes: dict[str, Any] = {name: request.form.get(name, "") for name in (*_DATASET_TEXTS, "min_level")}
    changes["citizen_downloadable"] = request.form.get("citizen_downloadable") == "yes"
    try:
        providers_services.update_dataset(uow, found.id, changes=changes, actor=_actor(member))
    except MydataError as error:
        uow.session.rollback()
        return _dataset_page(
            providers_services.agency_dataset(uow, dataset_id, member.scopes),
            field_errors=_field_errors(error, id_kind="dataset"),
            edited=changes,
        )
    flash(gettext("The dataset %(id)s is saved.", id=found.id))
    return redirect(url_for(".dataset", dataset_id=found.id), 303)


@bp.post("/datasets/<dataset_id>/schema")
def propose_schema(dataset_id: str) -> ResponseReturnValue:
    """Propose a new schema: a new version, published only once an operator approves it."""
    member = current_member()
    uow = unit_of_work()
    found = providers_services.agency_dataset(uow, dataset_id, member.scopes)
    text = request.form.get("schema", "")
    field_errors: FieldErrors = {}
    schema = _json_field(text, "schema", field_errors)
    if not field_errors:
        try:
            version = providers_services.propose_schema(uow, found.id, json_schema=schema, actor=_actor(member))
        except MydataError as error:
            field_errors = _field_errors(error, id_kind="dataset")
        else:
            flash(
                gettext(
                    "Schema version %(version)s of %(id)s waits for an operator's approval; "
                    "the published schema stays as it is until then.",
                    version=version.version,
                    id=found.id,
                )
            )
            return redirect(url_for(".dataset", dataset_id=found.id), 303)
    return _dataset_page(found, field_errors=field_errors, proposed=text)


def _dataset_page(
    found: Any, *, field_errors: FieldErrors, edited: Mapping[str, Any] | None = None, proposed: str | None = None
) -> ResponseReturnValue:
    uow = unit_of_work()
    versions = providers_services.list_schema_versions(uow, dataset_ids=[found.id])
    pending = next((v for v in versions if v.status == SCHEMA_PENDING), None)
    form = {name: getattr(found, name) for name in (*_DATASET_TEXTS, "min_level", "citizen_downloadable")}
    form |= dict(edited or {})
    if proposed is None:
        proposed = json.dumps(pending.json_schema if pending else found.json_schema, ensure_ascii=False, indent=2)
    form["schema"] = proposed
    return _form_page(
        "console/agency/dataset.html",
        field_errors,
        dataset=found,
        form=form,
        levels=LEVELS,
        versions=list(reversed(versions)),
        pending=pending,
        published_schema=json.dumps(found.json_schema, ensure_ascii=False, indent=2),
    )


# -- health and usage -----------------------------------------------------------------------------


@bp.get("/health")
def health() -> ResponseReturnValue:
    """Check the health of the member's providers, as `mydata providers check` does."""
    checks = providers_services.check_providers(unit_of_work(), current_member().scopes)
    return render_template("console/agency/health.html", checks=checks)


@bp.get("/usage")
def usage() -> ResponseReturnValue:
    """Count how often each of the member's datasets was asked for and delivered, by service (no personal data)."""
    uow = unit_of_work()
    days = request.args.get("days", type=int) or DEFAULT_DAYS
    days = min(max(days, 1), 366)
    until = clock().now()
    since = until - dt.timedelta(days=days)
    datasets = providers_services.agency_datasets(uow, current_member().scopes)
    uses = dataset_usage(uow, [d.id for d in datasets], since=since, until=until)
    return render_template(
        "console/agency/usage.html", datasets=datasets, uses=uses, days=days, since=since, until=until
    )


# -- forms ----------------------------------------------------------------------------------------


def _json_field(text: str, name: str, field_errors: FieldErrors) -> object:
    try:
        return json.loads(text)
    except ValueError:
        field_errors[name] = [gettext("This is not valid JSON.")]
        return None


def _field_errors(error: MydataError, *, id_kind: str) -> FieldErrors:
    """Say in the reader's language which field to fix for a refusal of the providers package."""
    if isinstance(error, errors.InvalidInput):
        found: FieldErrors = {}
        for name in error.extra.get("fields", {}) or {"id": []}:
            if name == "id":
                found["id"] = [
                    gettext("Use 1 to 64 lowercase letters, digits and hyphens, such as moi-household.")
                    if id_kind == "provider"
                    else gettext("Use a dotted lowercase name such as household.registration.")
                ]
            elif name.startswith("description"):
                found[name] = [gettext("Give a text of 1 to %(limit)s characters.", limit=5000)]
            else:
                found[name] = [gettext("Give a text of 1 to %(limit)s characters.", limit=200)]
        return found
    if isinstance(error, errors.InsecureBaseUrl):
        return {"base_url": [gettext("The address must use https: personal data travels over it.")]}
    if isinstance(error, errors.InvalidBaseUrl):
        return {"base_url": [gettext("Give an absolute https address without a user name, query or fragment.")]}
    if isinstance(error, errors.PrivateKeyInJwks):
        return {"jwks": [gettext("The key set holds private key material: give the public keys only.")]}
    if isinstance(error, errors.InvalidJwks):
        return {
            "jwks": [
                gettext("Give a JWKS of 1 to 10 public ES256 or PS256 signing keys with unique kids.")
                + f" ({error.description})"
            ]
        }
    if isinstance(error, errors.SchemaUnchanged):
        return {"schema": [gettext("This schema is the one published already: change it first.")]}
    if isinstance(error, errors.InvalidSchema):
        return {
            "schema": [
                gettext("Give a valid, self-contained JSON Schema (draft 2020-12) of an object.")
                + f" ({error.description})"
            ]
        }
    if isinstance(error, errors.InvalidLevel):
        return {"min_level": [gettext("Choose a level.")]}
    if isinstance(error, errors.AlreadyRegistered):
        return {"id": [gettext("This id is taken already: choose another.")]}
    raise error


def _form_page(template: str, field_errors: FieldErrors, **context: Any) -> ResponseReturnValue:
    """Render a form page; 400 with its errors listed (and tied to their fields) if there are any."""
    summary = [(f"field-{name}", message) for name, messages in field_errors.items() for message in messages]
    page = render_template(template, errors=summary, field_errors=field_errors, **context)
    return page, 400 if field_errors else 200
