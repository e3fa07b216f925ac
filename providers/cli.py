"""Commands: `mydata providers ...`, `mydata datasets ...` and `mydata sandbox providers`."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from mydata.db import UnitOfWork, get_db
from mydata.errors import MydataError
from providers import services
from providers.models import ACTIVE, LEVELS

providers_cli = AppGroup("providers", help="Agencies, data providers, their health, and operator API tokens.")
datasets_cli = AppGroup("datasets", help="The dataset catalogue.")

_ACTOR = "cli"


@contextmanager
def _catalogue() -> Iterator[UnitOfWork]:
    """Open a unit of work; a domain error ends the command with its reason (exit status 1)."""
    try:
        with get_db().unit_of_work() as uow:
            yield uow
    except MydataError as error:
        fields = error.extra.get("fields")
        reason = f"{error.description} {json.dumps(fields, ensure_ascii=False)}" if fields else error.description
        raise click.ClickException(f"{error.code}: {reason}") from None


def _read_json(stream: TextIO, what: str) -> Any:
    try:
        return json.load(stream)
    except ValueError as error:
        raise click.ClickException(f"{what} is not JSON: {error}") from None


def _allow_http() -> bool:
    return bool(current_app.config["MYDATA_SANDBOX"])


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    for row in (header, *rows):
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


# -- agencies and providers -----------------------------------------------------------------------


@providers_cli.command("register-agency")
@click.argument("agency_id")
@click.option("--name-zh", required=True, help="Name in Traditional Chinese (內政部戶政司).")
@click.option("--name-en", required=True, help="Name in English.")
def register_agency(agency_id: str, name_zh: str, name_en: str) -> None:
    """Register an agency."""
    with _catalogue() as uow:
        services.register_agency(uow, agency_id=agency_id, name_zh=name_zh, name_en=name_en, actor=_ACTOR)
    click.echo(f"Agency {agency_id} registered.")


@providers_cli.command("register")
@click.argument("provider_id")
@click.option("--agency", "agency_id", required=True, help="Id of a registered agency.")
@click.option("--base-url", required=True, help="Base URL (https outside the sandbox).")
@click.option("--jwks", "jwks_file", type=click.File("r"), required=True, help="File of the public JWKS ('-': stdin).")
@click.option("--approve", is_flag=True, help="Approve at once (the operator registering it).")
def register_provider(provider_id: str, agency_id: str, base_url: str, jwks_file: TextIO, approve: bool) -> None:
    """Register a data provider of an agency (pending until approved)."""
    jwks = _read_json(jwks_file, "The JWKS")
    with _catalogue() as uow:
        services.register_provider(
            uow,
            provider_id=provider_id,
            agency_id=agency_id,
            base_url=base_url,
            jwks=jwks,
            allow_http=_allow_http(),
            actor=_ACTOR,
            status=ACTIVE if approve else "pending",
        )
    click.echo(f"Provider {provider_id} registered ({'active' if approve else 'pending approval'}).")


@providers_cli.command("update")
@click.argument("provider_id")
@click.option("--base-url", help="New base URL.")
@click.option("--jwks", "jwks_file", type=click.File("r"), help="File of the new public JWKS ('-': stdin).")
def update_provider(provider_id: str, base_url: str | None, jwks_file: TextIO | None) -> None:
    """Change a provider's base URL or JWKS (key rotation)."""
    jwks = _read_json(jwks_file, "The JWKS") if jwks_file else None
    if base_url is None and jwks is None:
        raise click.UsageError("give --base-url or --jwks")
    with _catalogue() as uow:
        services.update_provider(uow, provider_id, base_url=base_url, jwks=jwks, allow_http=_allow_http(), actor=_ACTOR)
    click.echo(f"Provider {provider_id} updated.")


@providers_cli.command("approve")
@click.argument("provider_id")
def approve_provider(provider_id: str) -> None:
    """Approve a provider: the platform fetches from it."""
    with _catalogue() as uow:
        services.approve_provider(uow, provider_id, actor=_ACTOR)
    click.echo(f"Provider {provider_id} is active.")


@providers_cli.command("suspend")
@click.argument("provider_id")
def suspend_provider(provider_id: str) -> None:
    """Suspend a provider: its datasets become unavailable."""
    with _catalogue() as uow:
        services.suspend_provider(uow, provider_id, actor=_ACTOR)
    click.echo(f"Provider {provider_id} is suspended.")


@providers_cli.command("list")
def list_providers() -> None:
    """List the agencies' providers."""
    with _catalogue() as uow:
        rows = [
            (p.id, p.agency_id, p.agency.name_zh, p.status, p.base_url, ",".join(k["kid"] for k in p.jwks["keys"]))
            for p in services.list_providers(uow)
        ]
    _table(("provider", "agency", "name", "status", "base URL", "kids"), rows)


@providers_cli.command("check")
def check_providers() -> None:
    """Call every provider's health endpoint; exit status 1 if an active provider is not healthy."""
    with _catalogue() as uow:
        results = services.check_providers(uow)
    rows = [
        (
            r.provider,
            r.agency,
            r.status,
            f"{r.check.elapsed_ms} ms",
            r.check.result,
        )
        for r in results
    ]
    _table(("provider", "agency", "status", "HTTP time", "result"), rows)
    if any(r.status == ACTIVE and not r.check.ok for r in results):
        sys.exit(1)


# -- operator API tokens --------------------------------------------------------------------------


@providers_cli.command("issue-operator-token")
@click.argument("label")
def issue_operator_token(label: str) -> None:
    """Print a new operator API token, alone on stdout (it is not shown again)."""
    with _catalogue() as uow:
        token, secret = services.issue_operator_token(uow, label=label)
    click.echo(f"Operator token {token.id} issued for {token.label!r}; keep it secret.", err=True)
    click.echo(secret)


@providers_cli.command("revoke-operator-token")
@click.argument("token_id")
def revoke_operator_token(token_id: str) -> None:
    """Revoke an operator API token at once."""
    with _catalogue() as uow:
        services.revoke_operator_token(uow, token_id)
    click.echo(f"Operator token {token_id} revoked.")


@providers_cli.command("operator-tokens")
def list_operator_tokens() -> None:
    """List the operator API tokens (never their secrets)."""
    with _catalogue() as uow:
        rows = [
            (t.id, t.label, t.created_at.strftime("%Y-%m-%d %H:%M"), "revoked" if t.revoked_at else "live")
            for t in services.list_operator_tokens(uow)
        ]
    _table(("id", "label", "created", "state"), rows)


# -- datasets -------------------------------------------------------------------------------------


@datasets_cli.command("register")
@click.argument("dataset_id")
@click.option("--provider", "provider_id", required=True, help="Id of the provider that serves it.")
@click.option("--title-zh", required=True)
@click.option("--title-en", required=True)
@click.option("--description-zh", required=True)
@click.option("--description-en", required=True)
@click.option("--schema", "schema_file", type=click.File("r"), required=True, help="JSON Schema file (draft 2020-12).")
@click.option("--min-level", type=click.Choice(LEVELS), required=True, help="Minimum assurance level.")
@click.option("--citizen-downloadable/--not-citizen-downloadable", default=True, show_default=True)
@click.option("--approve", is_flag=True, help="Publish at once.")
def register_dataset(
    dataset_id: str,
    provider_id: str,
    title_zh: str,
    title_en: str,
    description_zh: str,
    description_en: str,
    schema_file: TextIO,
    min_level: str,
    citizen_downloadable: bool,
    approve: bool,
) -> None:
    """Register a dataset of a provider (pending until approved)."""
    schema = _read_json(schema_file, "The schema")
    with _catalogue() as uow:
        services.register_dataset(
            uow,
            dataset_id=dataset_id,
            provider_id=provider_id,
            title_zh=title_zh,
            title_en=title_en,
            description_zh=description_zh,
            description_en=description_en,
            json_schema=schema,
            min_level=min_level,
            citizen_downloadable=citizen_downloadable,
            actor=_ACTOR,
            status=ACTIVE if approve else "pending",
        )
    click.echo(f"Dataset {dataset_id} registered ({'active' if approve else 'pending approval'}).")


@datasets_cli.command("update")
@click.argument("dataset_id")
@click.option("--title-zh")
@click.option("--title-en")
@click.option("--description-zh")
@click.option("--description-en")
@click.option("--schema", "schema_file", type=click.File("r"), help="New JSON Schema file (the next schema version).")
@click.option("--min-level", type=click.Choice(LEVELS))
@click.option("--citizen-downloadable/--not-citizen-downloadable", default=None)
def update_dataset(dataset_id: str, schema_file: TextIO | None, **options: Any) -> None:
    """Change a dataset's texts, schema, minimum level or downloadability."""
    changes = {name: value for name, value in options.items() if value is not None}
    if schema_file is not None:
        changes["json_schema"] = _read_json(schema_file, "The schema")
    if not changes:
        raise click.UsageError("give at least one change")
    with _catalogue() as uow:
        dataset = services.update_dataset(uow, dataset_id, changes=changes, actor=_ACTOR)
        version = dataset.schema_version
    click.echo(f"Dataset {dataset_id} updated (schema version {version}).")


@datasets_cli.command("approve")
@click.argument("dataset_id")
def approve_dataset(dataset_id: str) -> None:
    """Publish a dataset in the catalogue."""
    with _catalogue() as uow:
        services.approve_dataset(uow, dataset_id, actor=_ACTOR)
    click.echo(f"Dataset {dataset_id} is active.")


@datasets_cli.command("suspend")
@click.argument("dataset_id")
def suspend_dataset(dataset_id: str) -> None:
    """Take a dataset out of the catalogue."""
    with _catalogue() as uow:
        services.suspend_dataset(uow, dataset_id, actor=_ACTOR)
    click.echo(f"Dataset {dataset_id} is suspended.")


@datasets_cli.command("list")
def list_datasets() -> None:
    """List the datasets."""
    with _catalogue() as uow:
        rows = [
            (
                d.id,
                d.provider_id,
                d.title_zh,
                d.min_level,
                "yes" if d.citizen_downloadable else "no",
                d.status,
                str(d.schema_version),
            )
            for d in services.list_datasets(uow)
        ]
    _table(("dataset", "provider", "title", "min level", "download", "status", "schema"), rows)


@datasets_cli.command("show")
@click.argument("dataset_id")
def show_dataset(dataset_id: str) -> None:
    """Print a dataset with its schema, as JSON."""
    with _catalogue() as uow:
        d = services.get_dataset(uow, dataset_id)
        document = {
            "id": d.id,
            "provider": d.provider_id,
            "title_zh": d.title_zh,
            "title_en": d.title_en,
            "description_zh": d.description_zh,
            "description_en": d.description_en,
            "min_level": d.min_level,
            "citizen_downloadable": d.citizen_downloadable,
            "status": d.status,
            "schema_version": d.schema_version,
            "schema": d.json_schema,
        }
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


# -- the sandbox agencies on their own ------------------------------------------------------------


@click.command("providers")
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5001, show_default=True, type=int, help="Port to listen on.")
def serve_sandbox_agencies(host: str, port: int) -> None:
    """Serve the sandbox agencies on their own (they are also mounted in `mydata demo`)."""
    from werkzeug.serving import run_simple

    from providers.sandbox.agency import agency_settings_for, create_agency_app
    from providers.sandbox.catalogue import AGENCIES, MOUNT_PREFIX

    if not current_app.config["MYDATA_SANDBOX"]:
        raise click.UsageError("sandbox mode is off: there are no sandbox agencies (MYDATA_SANDBOX=false)")
    agencies = create_agency_app(agency_settings_for(current_app))
    base = f"http://{host}:{port}"
    click.echo(f"Sandbox agencies at {base}/<provider>/mydata/v1/query; faults at {base}/sandbox/faults")
    for agency in AGENCIES:
        click.echo(f"  {agency.id:14} {base}/{agency.id}   ({agency.name_zh})")
    issuer = current_app.config["MYDATA_ISSUER"]
    click.echo(
        f"The catalogue points at {issuer}{MOUNT_PREFIX}/<provider>; to fetch from here instead:\n"
        f"  mydata providers update <provider> --base-url {base}/<provider>"
    )
    try:
        run_simple(host, port, agencies, threaded=True, use_reloader=False)
    finally:
        agencies.extensions["sandbox.agency"].stop()
