"""Serving the sandbox relying parties: mounted in the platform's process, or on their own.

Mounted (sandbox mode, `mydata demo`): the bank at ``{issuer}/sandbox/bank`` and the school at
``{issuer}/sandbox/school``, each a WSGI app of its own beside the platform (werkzeug's
DispatcherMiddleware), as the sandbox agencies are at ``/sandbox/agencies``. They share the process
and nothing else: they reach the platform over HTTP at its issuer URL.

On their own: ``mydata sandbox rp bank --port 5001`` serves the bank at ``http://127.0.0.1:5001``
and adds that address's callback to the sandbox client's redirect URIs (the seeder registered the
mounted one).

Only configuration comes from the platform: its issuer, its instance folder (where `mydata sandbox
seed` wrote the clients' keys) and, for the session cookies' secret, its sandbox secret key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from relying_parties.sandbox import bank, school
from relying_parties.sandbox.keys import client_keys_dir, key_file
from relying_parties.sandbox.webapp import Deployment

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: slug -> (organisation id, path under the issuer, app factory)
RELYING_PARTIES: dict[str, tuple[str, str, Callable[[Deployment], Flask]]] = {
    "bank": ("sandbox-bank", "/sandbox/bank", bank.create_app),
    "school": ("sandbox-school", "/sandbox/school", school.create_app),
}


def deployment_for(platform: Flask, slug: str, base_url: str) -> Deployment:
    """Return where the sandbox relying party *slug* runs, its keys and its data, for *platform*."""
    organisation_id = RELYING_PARTIES[slug][0]
    instance = Path(platform.config["MYDATA_SETTINGS"].instance_path)
    keys = key_file(client_keys_dir(instance), organisation_id)
    # The session secret must be the same in every worker process; a real relying party has its
    # own. In the sandbox it is derived from the platform's sandbox secret, so there is no extra file.
    secret = hmac.new(str(platform.config["SECRET_KEY"]).encode(), f"sandbox-rp:{slug}".encode(), hashlib.sha256)
    return Deployment(
        issuer=str(platform.config["MYDATA_ISSUER"]),
        base_url=base_url,
        keys_file=keys,
        data_file=keys.parent / "applications.sqlite",
        secret_key=secret.hexdigest(),
    )


def mount_sandbox_relying_parties(platform: Flask) -> None:
    """Serve the sandbox bank and school under the platform's issuer, in its process."""
    issuer = str(platform.config["MYDATA_ISSUER"]).rstrip("/")
    apps = {
        slug: factory(deployment_for(platform, slug, issuer + path))
        for slug, (_, path, factory) in RELYING_PARTIES.items()
    }
    platform.extensions["relying_parties.sandbox_apps"] = apps
    mounts: dict[str, WSGIApplication] = {RELYING_PARTIES[slug][1]: app for slug, app in apps.items()}
    platform.wsgi_app = DispatcherMiddleware(platform.wsgi_app, mounts)  # type: ignore[method-assign]


@click.command("rp")
@click.argument("which", type=click.Choice(sorted(RELYING_PARTIES)))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5001, show_default=True, type=int, help="Port to listen on.")
@with_appcontext
def serve_sandbox_relying_party(which: str, host: str, port: int) -> None:
    """Serve the sandbox bank or school on its own, against this platform's issuer."""
    from werkzeug.serving import run_simple

    from identity.oauth.clients import update_client
    from identity.oauth.models import OAuthClient
    from mydata.db import unit_of_work

    base = f"http://{host}:{port}"
    deployment = deployment_for(current_app, which, base)
    profile_app = RELYING_PARTIES[which][2](deployment)
    client_id = profile_app.extensions["sandbox_rp"].profile.client_id
    uow = unit_of_work()
    client = uow.session.get(OAuthClient, client_id)
    if client is None or not deployment.keys_file.exists():
        raise click.ClickException(f"The sandbox client {client_id} is not registered yet: run `mydata sandbox seed`.")
    if deployment.redirect_uri not in client.redirect_uris:
        update_client(
            uow,
            client_id,
            redirect_uris=[*client.redirect_uris, deployment.redirect_uri],
            sandbox=True,
            require_encryption_key=True,
            sandbox_origin=deployment.issuer,
        )
        click.echo(f"Registered the redirect URI {deployment.redirect_uri} for {client_id}.")
    click.echo(f"Sandbox {which} at {base}/ against MyData at {deployment.issuer} (Ctrl+C to stop)")
    run_simple(host, port, profile_app, threaded=True, use_reloader=False)
