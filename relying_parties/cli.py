"""`mydata rp ...`: relying-party organisations, their tokens, clients and services, as an operator types them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

import click
from flask import current_app
from flask.cli import AppGroup

from identity.national_id import mask
from mydata.clock import clock
from mydata.db import UnitOfWork, get_db
from mydata.errors import MydataError
from providers.models import LEVELS
from relying_parties import registration, roles, services
from relying_parties.models import APPROVED, ORGANISATION_TYPES, PENDING, STATUSES

rp_cli = AppGroup("rp", help="Relying parties: organisations, initial access tokens, clients and services.")

_ACTOR = "cli"


@contextmanager
def _relying_parties() -> Iterator[UnitOfWork]:
    """Open a unit of work; a domain error ends the command with its reason on stderr (exit status 1)."""
    try:
        with get_db().unit_of_work() as uow:
            yield uow
    except MydataError as error:
        fields = error.extra.get("fields")
        reason = f"{error.description} {json.dumps(fields, ensure_ascii=False)}" if fields else error.description
        raise click.ClickException(f"{error.code}: {reason}") from None


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- organisations --------------------------------------------------------------------------------


@rp_cli.command("apply")
@click.argument("organisation_id")
@click.option("--name-zh", required=True, help="Name in Traditional Chinese (沙盒銀行).")
@click.option("--name-en", required=True, help="Name in English.")
@click.option("--type", "organisation_type", type=click.Choice(ORGANISATION_TYPES), required=True)
@click.option("--registration-number", required=True, help="Unified business number (統一編號), 8 digits.")
@click.option("--contact-name", required=True)
@click.option("--contact-email", required=True)
@click.option("--contact-phone", required=True)
@click.option("--approve", is_flag=True, help="Approve at once (the operator registering it).")
def apply(
    organisation_id: str,
    name_zh: str,
    name_en: str,
    organisation_type: str,
    registration_number: str,
    contact_name: str,
    contact_email: str,
    contact_phone: str,
    approve: bool,
) -> None:
    """Register an organisation (pending until approved)."""
    with _relying_parties() as uow:
        services.register_organisation(
            uow,
            organisation_id=organisation_id,
            name_zh=name_zh,
            name_en=name_en,
            organisation_type=organisation_type,
            registration_number=registration_number,
            contacts=[{"name": contact_name, "email": contact_email, "phone": contact_phone}],
            actor=_ACTOR,
            status=APPROVED if approve else PENDING,
        )
    click.echo(f"Organisation {organisation_id} registered ({'approved' if approve else 'pending approval'}).")


@rp_cli.command("approve")
@click.argument("organisation_id")
def approve(organisation_id: str) -> None:
    """Approve an organisation (its clients work again after a suspension)."""
    with _relying_parties() as uow:
        services.approve_organisation(uow, organisation_id, actor=_ACTOR)
    click.echo(f"Organisation {organisation_id} is approved.")


@rp_cli.command("suspend")
@click.argument("organisation_id")
def suspend(organisation_id: str) -> None:
    """Suspend an organisation: its clients and its initial access token stop working."""
    with _relying_parties() as uow:
        services.suspend_organisation(uow, organisation_id, actor=_ACTOR)
    click.echo(f"Organisation {organisation_id} is suspended.")


@rp_cli.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only organisations of this status.")
def list_organisations(status: str | None) -> None:
    """List the organisations."""
    with _relying_parties() as uow:
        rows = [
            (o.id, o.type, o.registration_number, o.status, o.name_zh, o.contacts[0]["email"])
            for o in services.list_organisations(uow, status)
        ]
    _table(("organisation", "type", "number", "status", "name", "contact"), rows)


@rp_cli.command("grant-role")
@click.argument("organisation_id")
@click.argument("national_id")
@click.option("--role", type=click.Choice(roles.ORGANISATION_ROLES), required=True)
def grant_role(organisation_id: str, national_id: str, role: str) -> None:
    """Give a person a role for an organisation (`counter`: a clerk at its desks). They must have logged in once."""
    with _relying_parties() as uow:
        citizen = roles.grant(uow, organisation_id, national_id, role, now=clock().now())
    click.echo(f"{citizen.name} ({mask(citizen.national_id)}) now has the {role} role of {organisation_id}.")


@rp_cli.command("revoke-role")
@click.argument("organisation_id")
@click.argument("national_id")
@click.option("--role", type=click.Choice(roles.ORGANISATION_ROLES), required=True)
def revoke_role(organisation_id: str, national_id: str, role: str) -> None:
    """Take a role back (a clerk who left); their next page at the counter is refused."""
    with _relying_parties() as uow:
        citizen = roles.revoke(uow, organisation_id, national_id, role)
    click.echo(f"{citizen.name} ({mask(citizen.national_id)}) no longer has the {role} role of {organisation_id}.")


@rp_cli.command("staff")
@click.argument("organisation_id")
def list_staff(organisation_id: str) -> None:
    """List who holds a role for an organisation (ID numbers masked)."""
    with _relying_parties() as uow:
        rows = [
            (held.role, citizen.name, mask(citizen.national_id), held.granted_at.date().isoformat())
            for held, citizen in roles.staff(uow, organisation_id)
        ]
    _table(("role", "name", "national ID", "since"), rows)


@rp_cli.command("issue-token")
@click.argument("organisation_id")
def issue_token(organisation_id: str) -> None:
    """Print a fresh initial access token of an approved organisation, alone on stdout; the previous one is revoked."""
    with _relying_parties() as uow:
        _token, secret = services.issue_initial_access_token(uow, organisation_id, actor=_ACTOR)
    click.echo(secret)


# -- clients --------------------------------------------------------------------------------------


@rp_cli.command("register-client")
@click.argument("organisation_id")
@click.option("--name", required=True, help="Client name citizens see.")
@click.option(
    "--jwks",
    "jwks_file",
    type=click.File("r"),
    required=True,
    help="Public JWKS: one sig and one enc key ('-': stdin).",
)
@click.option("--redirect-uri", "redirect_uris", required=True, multiple=True, help="Exact redirect URI (repeat).")
@click.option("--client-id", default=None, help="Choose the client_id (default: generated).")
def register_client(
    organisation_id: str, name: str, jwks_file: TextIO, redirect_uris: tuple[str, ...], client_id: str | None
) -> None:
    """Register a client of an approved organisation (the twin of POST /oauth/register); print its client_id."""
    try:
        jwks = json.load(jwks_file)
    except ValueError as error:
        raise click.BadParameter(f"not JSON: {error}", param_hint="--jwks") from None
    sandbox = bool(current_app.config["MYDATA_SANDBOX"])
    with _relying_parties() as uow:
        client = registration.register_organisation_client(
            uow,
            organisation_id,
            name=name,
            jwks=jwks,
            redirect_uris=list(redirect_uris),
            sandbox=sandbox,
            sandbox_origin=str(current_app.config["MYDATA_ISSUER"]) if sandbox else None,
            client_id=client_id,
        )
        registered = client.client_id
    click.echo(registered)


# -- services -------------------------------------------------------------------------------------


@rp_cli.command("add-service")
@click.argument("service_id")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option("--purpose-zh", required=True, help="Purpose shown to citizens, in Traditional Chinese.")
@click.option("--purpose-en", required=True, help="Purpose shown to citizens, in English.")
@click.option("--purpose-code", required=True, help="Personal Data Protection Act specific purpose (067).")
@click.option("--dataset", "required_datasets", multiple=True, required=True, help="Required dataset id (repeat).")
@click.option("--optional-dataset", "optional_datasets", multiple=True, help="Optional dataset id (repeat).")
@click.option("--retention-days", type=int, required=True, help="How long the organisation keeps the data.")
@click.option("--level", type=click.Choice(LEVELS), help="A higher level than the datasets need.")
@click.option("--approve", is_flag=True, help="Approve at once.")
def add_service(
    service_id: str,
    name_zh: str,
    name_en: str,
    purpose_zh: str,
    purpose_en: str,
    purpose_code: str,
    required_datasets: tuple[str, ...],
    optional_datasets: tuple[str, ...],
    retention_days: int,
    level: str | None,
    approve: bool,
) -> None:
    """Define a service ORGANISATION.NAME (pending until approved)."""
    organisation_id = service_id.partition(".")[0]
    with _relying_parties() as uow:
        services.define_service(
            uow,
            organisation_id=organisation_id,
            service_id=service_id,
            name_zh=name_zh,
            name_en=name_en,
            purpose_zh=purpose_zh,
            purpose_en=purpose_en,
            purpose_code=purpose_code,
            required_datasets=required_datasets,
            optional_datasets=optional_datasets,
            retention_days=retention_days,
            level=level,
            actor=_ACTOR,
            status=APPROVED if approve else PENDING,
        )
    click.echo(f"Service {service_id} defined ({'approved' if approve else 'pending approval'}).")


@rp_cli.command("approve-service")
@click.argument("service_id")
def approve_service(service_id: str) -> None:
    """Approve a service: citizens may be asked for it."""
    with _relying_parties() as uow:
        services.approve_service(uow, service_id, actor=_ACTOR)
    click.echo(f"Service {service_id} is approved.")


@rp_cli.command("suspend-service")
@click.argument("service_id")
def suspend_service(service_id: str) -> None:
    """Suspend a service: new requests for it are refused."""
    with _relying_parties() as uow:
        services.suspend_service(uow, service_id, actor=_ACTOR)
    click.echo(f"Service {service_id} is suspended.")


@rp_cli.command("services")
@click.option("--organisation", "organisation_id", help="Only this organisation's services.")
@click.option("--status", type=click.Choice(STATUSES), help="Only services of this status.")
def list_services(organisation_id: str | None, status: str | None) -> None:
    """List the services."""
    with _relying_parties() as uow:
        rows = [
            (
                s.id,
                s.status,
                s.level,
                ",".join(s.required_datasets),
                ",".join(s.optional_datasets) or "-",
                f"{s.retention_days} d",
            )
            for s in services.list_services(uow, organisation_id=organisation_id, status=status)
        ]
    _table(("service", "status", "level", "required", "optional", "retention"), rows)
