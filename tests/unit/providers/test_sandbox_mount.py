"""The sandbox agencies inside the platform: mounted under /sandbox/agencies, seeded by `mydata sandbox seed`."""

from __future__ import annotations

import stat

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from mydata.app import create_app
from mydata.clock import FrozenClock
from mydata.config import Settings
from mydata.db import get_db
from providers import services
from providers.models import Dataset, Provider
from providers.sandbox.keys import agency_keys_dir, load_agency_key

pytestmark = pytest.mark.db

PROVIDERS = ["bli", "mof-fia", "moi-household", "nhia"]


def seed(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["sandbox", "seed"])
    assert result.exit_code == 0, result.output
    assert "seeded: sandbox agencies, providers and datasets" in result.output


def test_mounted_agencies_answer_under_the_prefix_once_seeded(app: Flask, client: FlaskClient) -> None:
    before = client.get("/sandbox/agencies/bli/mydata/v1/health")
    assert before.status_code == 503
    seed(app)
    health = client.get("/sandbox/agencies/bli/mydata/v1/health")
    assert health.status_code == 200
    assert health.json == {"status": "ok", "provider": "bli", "datasets": ["labor.insurance"]}
    # An unsigned query is refused by the mounted agency itself.
    refused = client.post("/sandbox/agencies/bli/mydata/v1/query", data="x.y.z", content_type="application/jwt")
    assert refused.status_code == 401


def test_mounted_agencies_start_with_persona_5_faults(client: FlaskClient) -> None:
    faults = client.get("/sandbox/agencies/sandbox/faults").json["faults"]
    assert {(f["dataset"], f["kind"]) for f in faults if f["national_id"] == "H120000004"} == {
        ("household.registration", "timeout"),
        ("tax.income", "error"),
        ("labor.insurance", "bad_signature"),
    }


def test_seed_registers_the_sandbox_catalogue_and_is_idempotent(app: Flask) -> None:
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        providers = {
            p.id: (p.agency.name_zh, p.base_url, p.status, p.jwks, p.updated_at) for p in services.list_providers(uow)
        }
        datasets = {
            d.id: (d.provider_id, d.min_level, d.status, d.schema_version, d.updated_at)
            for d in services.list_datasets(uow)
        }
    assert sorted(providers) == PROVIDERS
    assert providers["moi-household"][:3] == (
        "內政部戶政司",
        f"{app.config['MYDATA_ISSUER']}/sandbox/agencies/moi-household",
        "active",
    )
    assert providers["nhia"][0] == "衛生福利部中央健康保險署"
    assert {d: v[:3] for d, v in datasets.items()} == {
        "household.registration": ("moi-household", "substantial", "active"),
        "tax.income": ("mof-fia", "substantial", "active"),
        "tax.property": ("mof-fia", "substantial", "active"),
        "labor.insurance": ("bli", "substantial", "active"),
        "nhi.enrolment": ("nhia", "low", "active"),
    }
    keys = agency_keys_dir(app.config["MYDATA_SETTINGS"].instance_path)
    for provider_id, (_name, _url, _status, jwks, _updated) in providers.items():
        key = load_agency_key(keys, provider_id)
        assert key is not None
        assert jwks == key.jwks()
        assert "d" not in jwks["keys"][0]
        assert stat.S_IMODE((keys / f"{provider_id}.jwk.json").stat().st_mode) == 0o600

    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        assert {
            p.id: (p.agency.name_zh, p.base_url, p.status, p.jwks, p.updated_at) for p in services.list_providers(uow)
        } == providers
        assert {
            d.id: (d.provider_id, d.min_level, d.status, d.schema_version, d.updated_at)
            for d in services.list_datasets(uow)
        } == datasets


def test_reseeding_follows_a_new_issuer_but_keeps_operator_decisions(
    app: Flask, settings: Settings, clock: FrozenClock
) -> None:
    seed(app)
    with app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_dataset(uow, "tax.property", actor="operator")
    moved = create_app(settings.replace(issuer="http://10.0.0.5:8000"), clock_=clock)
    get_db(moved).session_factory = get_db(app).session_factory
    seed(moved)
    with app.app_context(), get_db().unit_of_work() as uow:
        urls = uow.session.scalars(select(Provider.base_url).order_by(Provider.id)).all()
        assert urls == [f"http://10.0.0.5:8000/sandbox/agencies/{p}" for p in PROVIDERS]
        assert uow.session.get(Dataset, "tax.property").status == "suspended"  # type: ignore[union-attr]
    get_db(moved).engine.dispose()


def test_sandbox_routes_are_absent_when_sandbox_mode_is_off(production_app: Flask) -> None:
    client = production_app.test_client()
    for path in (
        "/sandbox/agencies/bli/mydata/v1/health",
        "/sandbox/agencies/sandbox/faults",
        "/sandbox/agencies/mof-fia/mydata/v1/query",
    ):
        assert client.get(path).status_code == 404, path
    assert client.put("/sandbox/agencies/sandbox/faults", json={}).status_code == 404
    assert "providers.sandbox_agencies" not in production_app.extensions
    result = production_app.test_cli_runner().invoke(args=["sandbox", "providers", "--port", "0"])
    assert result.exit_code != 0
    assert "sandbox mode is off" in result.output


def test_an_invalid_faults_file_stops_start_up_naming_the_setting(settings: Settings, tmp_path: object) -> None:
    from pathlib import Path

    from mydata.errors import ConfigError

    bad = Path(str(tmp_path)) / "faults.toml"
    bad.write_text('[[fault]]\nnational_id = "*"\ndataset = "*"\nkind = "explode"\n')
    with pytest.raises(ConfigError) as raised:
        create_app(settings.replace(sandbox_faults_file=str(bad)))
    assert raised.value.setting == "MYDATA_SANDBOX_FAULTS_FILE"
    assert "kind must be one of" in raised.value.problem
