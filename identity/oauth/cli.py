"""`mydata clients ...`: register OAuth clients for tests and integrators."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from identity.oauth.clients import list_clients, register_client
from identity.oauth.interfaces import InvalidClientMetadata
from mydata.clock import clock
from mydata.db import get_db

clients_cli = AppGroup("clients", help="OAuth clients of relying parties.")


@clients_cli.command("create")
@click.option("--name", required=True, help="Name shown to citizens on the approval page.")
@click.option(
    "--jwks",
    "jwks_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file with the client's public JWKS (one ES256 or PS256 signature key).",
)
@click.option("--redirect-uri", "redirect_uris", required=True, multiple=True, help="Exact redirect URI (repeat).")
@click.option("--organisation", default=None, help="Owning organisation id (pairwise subjects are per organisation).")
@click.option("--client-id", default=None, help="Choose the client_id (default: generated).")
def create(
    jwks_file: Path, name: str, redirect_uris: tuple[str, ...], organisation: str | None, client_id: str | None
) -> None:
    """Register a client and print its client_id."""
    try:
        jwks = json.loads(jwks_file.read_text())
    except ValueError as exc:
        raise click.BadParameter(f"{jwks_file} is not JSON: {exc}", param_hint="--jwks") from None
    try:
        with get_db().unit_of_work() as uow:
            client = register_client(
                uow,
                clock(),
                name=name,
                jwks=jwks,
                redirect_uris=list(redirect_uris),
                sandbox=bool(current_app.config["MYDATA_SANDBOX"]),
                organisation_id=organisation,
                client_id=client_id,
            )
    except InvalidClientMetadata as exc:
        raise click.ClickException(exc.description) from None
    click.echo(client.client_id)


@clients_cli.command("list")
def list_() -> None:
    """List the registered clients."""
    with get_db().unit_of_work() as uow:
        for client in list_clients(uow):
            click.echo(f"{client.client_id}\t{client.status}\t{client.name}\t{' '.join(client.redirect_uris)}")
