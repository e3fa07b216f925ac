"""`mydata sandbox revoke-card`: revoke a persona's eID card, as a citizen reporting it lost would."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from identity import national_id as nid
from identity.sandbox.pki import SandboxPki
from mydata.clock import clock


@click.command("revoke-card")
@click.argument("national_id")
@with_appcontext
def revoke_card(national_id: str) -> None:
    """Revoke the sandbox eID card of NATIONAL_ID: the sandbox CA publishes a CRL that lists it."""
    national_id = nid.normalize(national_id)
    if not nid.checksum_ok(national_id):
        raise click.BadParameter(f"{national_id!r} is not a valid national ID number", param_hint="NATIONAL_ID")
    pki: SandboxPki = current_app.extensions["identity.sandbox_pki"]
    try:
        certificate = pki.revoke_card(national_id, clock().now())
    except FileNotFoundError:
        raise click.ClickException(f"no sandbox eID card for {national_id} (run `mydata sandbox seed`)") from None
    click.echo(f"Revoked the eID card of {national_id} (serial {certificate.serial_number:x}); CRL: {pki.crl_path}")
