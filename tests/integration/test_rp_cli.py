"""`mydata rp issue-token ORG` as a real process: only the token on stdout, and the token registers a client."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from mydata import cli
from mydata.app import create_app
from mydata.config import Settings
from mydata.db import get_db
from relying_parties import services
from relying_parties.models import APPROVED, PENDING
from tests.factories.oauth import TestRelyingParty

MYDATA = str(Path(sys.executable).with_name("mydata"))


def run(args: list[str], instance: Path) -> subprocess.CompletedProcess[str]:
    """Run `mydata ARGS` on the instance folder's embedded database."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MYDATA_")}
    env = {**clean, "MYDATA_INSTANCE_PATH": str(instance), "MYDATA_SANDBOX": "true"}
    return subprocess.run([MYDATA, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Flask]:
    """Migrate the embedded database of an instance folder, with an approved and a pending organisation."""
    app = create_app(Settings(instance_path=tmp_path / "instance", sandbox=True))
    cli.upgrade(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        for organisation_id, number, status in (("rp-bank", "22099131", APPROVED), ("rp-new", "04595257", PENDING)):
            services.register_organisation(
                uow,
                organisation_id=organisation_id,
                name_zh="銀行",
                name_en="Bank",
                organisation_type="bank",
                registration_number=number,
                contacts=[{"name": "王", "email": "it@bank.example", "phone": "+886 2 2345 6789"}],
                actor="test",
                status=status,
            )
    yield app
    get_db(app).engine.dispose()


def register(app: Flask, token: str) -> int:
    """Register a client with *token*; return the HTTP status."""
    relying_party = TestRelyingParty(client_id="", redirect_uri="https://bank.example/cb")
    metadata = {"client_name": "網銀", "redirect_uris": [relying_party.redirect_uri], "jwks": relying_party.jwks()}
    response = app.test_client().post("/oauth/register", json=metadata, headers={"Authorization": f"Bearer {token}"})
    return response.status_code


def test_issue_token_prints_the_token_alone_and_a_reissue_revokes_it(platform: Flask) -> None:
    instance = Path(platform.instance_path)
    first = run(["rp", "issue-token", "rp-bank"], instance)
    assert first.returncode == 0, first.stderr
    token = first.stdout.removesuffix("\n")
    assert first.stdout == token + "\n"
    assert token.startswith("mdiat_")
    assert " " not in token
    assert register(platform, token) == 201
    assert register(platform, token) == 201  # reusable (RFC 7591 §3 leaves it to the server) until reissued

    second = run(["rp", "issue-token", "rp-bank"], instance)
    assert second.returncode == 0, second.stderr
    assert register(platform, token) == 401
    assert register(platform, second.stdout.strip()) == 201


def test_issue_token_refuses_an_organisation_not_approved(platform: Flask) -> None:
    result = run(["rp", "issue-token", "rp-new"], Path(platform.instance_path))
    assert result.returncode != 0
    assert result.stdout == ""
    assert "organisation_not_approved" in result.stderr
    assert "'rp-new' is pending" in result.stderr
    assert "Traceback" not in result.stderr
