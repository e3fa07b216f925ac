"""The web shell: landing page in both languages, health, errors, security headers, CSRF, OpenAPI."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint, Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from mydata.security import SECURITY_HEADERS


def test_landing_page_is_traditional_chinese_by_default(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-Hant-TW">' in page
    assert "政府機關的個人資料，由您自己掌握" in page
    assert 'href="#main"' in page
    assert 'id="main"' in page


def test_language_switch_gives_english_and_is_remembered(client: FlaskClient) -> None:
    page = client.get("/?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Your data from government agencies, in your hands" in page
    assert "政府機關的個人資料" not in page
    # The choice is kept for the next page, and the switch links back to Chinese.
    again = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in again
    assert re.search(r'href="/\?lang=zh_Hant_TW"[^>]*>中文<', again)


def test_unknown_language_falls_back_to_chinese(client: FlaskClient) -> None:
    assert '<html lang="zh-Hant-TW">' in client.get("/?lang=xx").get_data(as_text=True)


def test_page_has_landmarks(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    for landmark in ("<header", "<main", "<footer", "<nav"):
        assert landmark in page


@pytest.mark.db
def test_healthz_checks_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "rate_limits": "ok", "sandbox": True}


def test_healthz_reports_an_unreachable_database(app: Flask, client: FlaskClient) -> None:
    from mydata.db import get_db, make_engine

    get_db(app).engine = make_engine("sqlite:////nonexistent/folder/x.sqlite")
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "unavailable"


@pytest.mark.parametrize("path", ["/", "/healthz", "/openapi.json", "/no-such-page", "/static/css/mydata.css"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    response.close()
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # plain http


def test_hsts_over_https(client: FlaskClient) -> None:
    response = client.get("/", base_url="https://platform.test")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def test_not_found_is_a_friendly_page_in_the_reader_language(client: FlaskClient) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    page = response.get_data(as_text=True)
    assert "找不到這個頁面" in page
    assert "Traceback" not in page
    english = client.get("/no-such-page?lang=en").get_data(as_text=True)
    assert "We could not find this page" in english


def test_api_errors_are_json(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"
    assert "error_description" in response.json


def test_unexpected_error_shows_no_trace(app: Flask, client: FlaskClient) -> None:
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internal detail")

    app.register_blueprint(bp)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.get("/boom")
    assert response.status_code == 500
    page = response.get_data(as_text=True)
    assert "secret internal detail" not in page
    assert "Traceback" not in page
    assert "我們這邊出了問題" in page


def test_form_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    bp = Blueprint("form", __name__)

    @bp.post("/form")
    def form() -> str:
        return "accepted"

    app.register_blueprint(bp)
    refused = client.post("/form", data={"name": "x"})
    assert refused.status_code == 400
    assert "表單已經過期" in refused.get_data(as_text=True)


def test_form_post_with_csrf_token_is_accepted(app: Flask, client: FlaskClient) -> None:
    from flask_wtf.csrf import generate_csrf

    bp = Blueprint("form", __name__)

    @bp.get("/form")
    def show() -> str:
        return generate_csrf()

    @bp.post("/form")
    def submit() -> str:
        return "accepted"

    app.register_blueprint(bp)
    token = client.get("/form").get_data(as_text=True)
    assert client.post("/form", data={"csrf_token": token}).get_data(as_text=True) == "accepted"


def test_openapi_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    assert document["openapi"] == "3.1.0"
    validate(document)
    assert "/healthz" in document["paths"]
    assert document["paths"]["/healthz"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]


def test_session_cookie_flags(app: Flask) -> None:
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"


def test_templates_follow_a_change_of_language_within_a_request(app: Flask) -> None:
    from flask import render_template_string
    from flask_babel import force_locale

    page = "{{ _('Skip to main content') }}"
    with app.test_request_context("/?lang=en"):
        assert render_template_string(page) == "Skip to main content"
        with force_locale("zh_Hant_TW"):
            chinese = render_template_string(page)
        assert chinese != "Skip to main content"
        assert render_template_string(page) == "Skip to main content"
