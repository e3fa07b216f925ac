"""`mydata rp ...` as an operator types it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from identity import services as identity_services
from identity.models import StaffRole
from mydata.db import get_db
from tests.factories.identity import make_citizen
from tests.factories.oauth import TestRelyingParty

from .conftest import REDIRECT_URI, bearer, client_metadata, register

pytestmark = pytest.mark.db


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["rp", *args])


APPLY = [
    "apply",
    "cli-bank",
    "--name-zh",
    "命令列銀行",
    "--name-en",
    "Command Line Bank",
    "--type",
    "bank",
    "--registration-number",
    "04595257",
    "--contact-name",
    "林工程師",
    "--contact-email",
    "it@cli-bank.example",
    "--contact-phone",
    "+886 2 8765 4321",
]


def test_an_operator_onboards_an_organisation_from_the_command_line(
    app: Flask, client: FlaskClient, catalogue: None, tmp_path: Path
) -> None:
    assert run(app, *APPLY).exit_code == 0
    refused = run(app, "issue-token", "cli-bank")
    assert refused.exit_code == 1
    assert refused.stdout == ""
    assert "organisation_not_approved" in refused.stderr
    assert "pending" in refused.stderr
    listed = run(app, "list", "--status", "pending")
    assert "cli-bank" in listed.stdout
    assert "04595257" in listed.stdout

    assert run(app, "approve", "cli-bank").exit_code == 0
    issued = run(app, "issue-token", "cli-bank")
    assert issued.exit_code == 0
    token = issued.stdout.strip()
    assert issued.stdout == token + "\n"
    assert token.startswith("mdiat_")

    relying_party = TestRelyingParty(client_id="", redirect_uri=REDIRECT_URI)
    assert register(client, token, client_metadata(relying_party)).status_code == 201
    reissued = run(app, "issue-token", "cli-bank").stdout.strip()
    assert reissued != token
    assert register(client, token, client_metadata(relying_party)).status_code == 401
    assert client.get("/api/v1/organisation", headers=bearer(reissued)).json["organisation"]["id"] == "cli-bank"

    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(relying_party.jwks()))
    registered = run(
        app, "register-client", "cli-bank", "--name", "網銀", "--jwks", str(jwks), "--redirect-uri", REDIRECT_URI
    )
    assert registered.exit_code == 0, registered.output
    assert registered.stdout.strip().startswith("c_")

    added = run(
        app,
        "add-service",
        "cli-bank.cards",
        "--name-zh",
        "信用卡",
        "--name-en",
        "Cards",
        "--purpose-zh",
        "審核。",
        "--purpose-en",
        "To assess.",
        "--purpose-code",
        "067",
        "--dataset",
        "household.registration",
        "--optional-dataset",
        "tax.property",
        "--retention-days",
        "30",
    )
    assert added.exit_code == 0, added.output
    assert "pending approval" in added.stdout
    assert run(app, "approve-service", "cli-bank.cards").exit_code == 0
    services = run(app, "services", "--organisation", "cli-bank").stdout
    assert "cli-bank.cards" in services
    assert "approved" in services
    assert "tax.property" in services
    assert run(app, "suspend-service", "cli-bank.cards").exit_code == 0
    assert run(app, "suspend", "cli-bank").exit_code == 0
    assert run(app, "issue-token", "cli-bank").exit_code == 1


def test_registering_a_client_without_an_encryption_key_says_why(app: Flask, tmp_path: Path) -> None:
    assert run(app, *APPLY, "--approve").exit_code == 0
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": TestRelyingParty(client_id="", redirect_uri="").jwks()["keys"][:1]}))
    result = run(app, "register-client", "cli-bank", "--name", "x", "--jwks", str(jwks), "--redirect-uri", REDIRECT_URI)
    assert result.exit_code == 1
    assert "invalid_client_metadata" in result.stderr
    assert "encryption key" in result.stderr


def test_an_unknown_organisation_is_named(app: Flask) -> None:
    result = run(app, "issue-token", "nobody")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "organisation_not_found" in result.stderr
    assert "'nobody'" in result.stderr


def test_an_operator_gives_and_takes_a_clerks_counter_role(app: Flask, catalogue: None) -> None:
    """docs/counter.md: an organisation asks the operator to give its clerk the `counter` role."""
    assert run(app, *APPLY, "--approve").exit_code == 0
    unknown = run(app, "grant-role", "cli-bank", "E224680132", "--role", "counter")
    assert unknown.exit_code == 1
    assert "log in to MyData once" in unknown.stderr
    with app.app_context(), get_db().unit_of_work() as uow:
        clerk = make_citizen(uow, "E224680132")
        uow.commit()
        clerk_id = clerk.id

    granted = run(app, "grant-role", "cli-bank", "e224680132", "--role", "counter")
    assert granted.exit_code == 0, granted.stderr
    assert "張雅婷" in granted.stdout
    assert "E224680132" not in granted.stdout  # masked: E22****132
    assert "E22****132" in granted.stdout
    listed = run(app, "staff", "cli-bank")
    assert "counter" in listed.stdout
    assert "張雅婷" in listed.stdout
    with app.app_context(), get_db().unit_of_work() as uow:
        assert identity_services.has_role(uow, clerk_id, "counter", "cli-bank")

    operator = run(app, "grant-role", "cli-bank", "E224680132", "--role", "operator")
    assert operator.exit_code == 2  # not a role of an organisation: click refuses the choice
    bad_id = run(app, "grant-role", "cli-bank", "E22468013", "--role", "counter")
    assert bad_id.exit_code == 1
    assert "national ID" in bad_id.stderr
    nowhere = run(app, "grant-role", "no-such-org", "E224680132", "--role", "counter")
    assert nowhere.exit_code == 1

    revoked = run(app, "revoke-role", "cli-bank", "E224680132", "--role", "counter")
    assert revoked.exit_code == 0, revoked.stderr
    with app.app_context(), get_db().unit_of_work() as uow:
        assert uow.session.get(StaffRole, (clerk_id, "counter", "cli-bank")) is None
    again = run(app, "revoke-role", "cli-bank", "E224680132", "--role", "counter")
    assert again.exit_code == 1
    assert "does not hold" in again.stderr
