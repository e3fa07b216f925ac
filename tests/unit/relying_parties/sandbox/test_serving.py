"""The sandbox relying parties are configured as the seeder registered them, mounted and served alone."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from identity.oauth.models import OAuthClient
from mydata import cli
from mydata.db import get_db
from relying_parties.sandbox import bank, school
from relying_parties.sandbox.seed import RELYING_PARTIES
from relying_parties.sandbox.serving import RELYING_PARTIES as SERVED


@pytest.mark.parametrize("profile", [bank.PROFILE, school.PROFILE], ids=["bank", "school"])
def test_each_relying_party_asks_for_what_was_registered(profile: Any) -> None:
    registered = next(p for p in RELYING_PARTIES if p.client_id == profile.client_id)
    organisation_id, path, _ = SERVED[profile.slug]
    assert organisation_id == registered.id
    assert profile.service_id == registered.service.id
    assert profile.required_datasets == registered.service.required_datasets
    assert profile.optional_datasets == registered.service.optional_datasets
    assert path + "/callback" == registered.callback_path
    assert profile.authorization_details == [{"type": "mydata_delivery", "service": registered.service.id}]


def test_the_sandbox_mounts_both_under_the_issuer(app: Flask) -> None:
    mounted = app.extensions["relying_parties.sandbox_apps"]
    assert mounted["bank"].extensions["sandbox_rp"].deployment.redirect_uri == "http://localhost/sandbox/bank/callback"
    page = app.test_client().get("/sandbox/school/")
    assert page.status_code == 200
    assert "中低收入戶學雜費減免" in page.text
    assert page.headers["Set-Cookie"].startswith("sandbox_school_session=")


def test_serving_one_alone_adds_its_callback_to_the_client(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    with app.app_context():
        cli.seed(app)
    served: dict[str, Any] = {}
    monkeypatch.setattr("werkzeug.serving.run_simple", lambda host, port, wsgi, **_: served.update(app=wsgi, port=port))
    result = app.test_cli_runner().invoke(args=["sandbox", "rp", "school", "--port", "5002"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:5002/callback" in result.output
    assert served["port"] == 5002
    assert served["app"].extensions["sandbox_rp"].deployment.base_url == "http://127.0.0.1:5002"
    with get_db(app).unit_of_work() as uow:
        client = uow.session.get(OAuthClient, "sandbox-school-web")
        assert client is not None
        assert client.redirect_uris == ["http://localhost/sandbox/school/callback", "http://127.0.0.1:5002/callback"]


def test_mounting_writes_nothing_and_the_records_stay_owner_only(app: Flask) -> None:
    keys_file = app.extensions["relying_parties.sandbox_apps"]["bank"].extensions["sandbox_rp"].deployment.keys_file
    folder = keys_file.parent
    assert not folder.exists()  # the seeder creates it, owner-only, with the keys
    rp = app.extensions["relying_parties.sandbox_apps"]["bank"].extensions["sandbox_rp"]
    rp.store.save(rp.store.new(0.0, "zh"))
    assert folder.stat().st_mode & 0o777 == 0o700
