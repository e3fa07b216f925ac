"""`mydata providers ...` and `mydata datasets ...` as an operator types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient

from providers.schemas import load_schema

from .conftest import public_jwks

pytestmark = pytest.mark.db


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def test_issue_operator_token_prints_the_token_alone_and_it_works(app: Flask, client: FlaskClient) -> None:
    result = run(app, "providers", "issue-operator-token", "night shift")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("mdop_")
    assert "\n" not in token
    assert "keep it secret" in result.stderr
    response = client.get("/api/v1/providers", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    listed = run(app, "providers", "operator-tokens")
    assert "night shift" in listed.stdout
    assert "live" in listed.stdout
    assert token not in listed.stdout
    token_id = listed.stdout.splitlines()[1].split()[0]
    assert run(app, "providers", "revoke-operator-token", token_id).exit_code == 0
    assert client.get("/api/v1/providers", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_register_and_approve_a_provider_and_its_dataset(app: Flask, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks("mof-2026")))
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(load_schema("tax.income"), ensure_ascii=False))
    steps = [
        ["providers", "register-agency", "mof-test", "--name-zh", "財政部測試中心", "--name-en", "Test Centre"],
        [
            "providers",
            "register",
            "mof-test",
            "--agency",
            "mof-test",
            "--base-url",
            "https://mof.example",
            "--jwks",
            str(jwks),
        ],
        ["providers", "approve", "mof-test"],
        [
            "datasets",
            "register",
            "test.income",
            "--provider",
            "mof-test",
            "--title-zh",
            "所得",
            "--title-en",
            "Income",
            "--description-zh",
            "說明",
            "--description-en",
            "Description",
            "--schema",
            str(schema),
            "--min-level",
            "substantial",
        ],
        ["datasets", "approve", "test.income"],
        ["datasets", "update", "test.income", "--min-level", "high", "--not-citizen-downloadable"],
    ]
    for step in steps:
        result = run(app, *step)
        assert result.exit_code == 0, (step, result.output)
    providers = run(app, "providers", "list").stdout
    assert "mof-test" in providers
    assert "財政部測試中心" in providers
    assert "active" in providers
    assert "mof-2026" in providers
    datasets = run(app, "datasets", "list").stdout
    assert "test.income" in datasets
    assert "high" in datasets
    shown = json.loads(run(app, "datasets", "show", "test.income").stdout)
    assert shown["citizen_downloadable"] is False
    assert shown["schema"]["$id"].endswith("tax.income.json")
    assert run(app, "providers", "suspend", "mof-test").exit_code == 0
    assert run(app, "datasets", "suspend", "test.income").exit_code == 0


def test_refusals_end_with_the_reason(app: Flask, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(public_jwks()))
    result = run(
        app, "providers", "register", "p", "--agency", "nobody", "--base-url", "https://p.example", "--jwks", str(jwks)
    )
    assert result.exit_code == 1
    assert "unknown_agency" in result.output
    leaked = tmp_path / "leaked.json"
    leaked.write_text(json.dumps({"keys": [{**public_jwks()["keys"][0], "d": "c2VjcmV0"}]}))
    run(app, "providers", "register-agency", "a", "--name-zh", "甲", "--name-en", "A")
    result = run(
        app, "providers", "register", "p", "--agency", "a", "--base-url", "https://p.example", "--jwks", str(leaked)
    )
    assert "private_key_in_jwks" in result.output
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    result = run(app, "providers", "update", "p", "--jwks", str(not_json))
    assert result.exit_code == 1
    assert "not JSON" in result.output
    assert run(app, "providers", "update", "p").exit_code == 2
    bad_id = run(app, "providers", "register-agency", "Bad Id", "--name-zh", "甲", "--name-en", "A")
    assert "invalid_request" in bad_id.output
    assert '"id"' in bad_id.output
