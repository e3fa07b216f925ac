"""The login pages as a browser and a screen reader meet them: CSP-clean, labelled, with an error summary."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from identity.sandbox.phones import SandboxPhones
from mydata.db import get_db
from tests.factories.identity import LoginAs, eid_nonce, make_citizen, post_form, text

pytestmark = pytest.mark.db


class Page(HTMLParser):
    """What the checks need from a page: tags with their attributes, and inline script text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.inline_script = ""
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script += data.strip()

    def ids(self) -> list[str]:
        return [a["id"] for _, a in self.tags if "id" in a]


def check_page(html: str) -> Page:
    """Assert the rules every login page keeps; return the parsed page."""
    page = Page(html)
    # CSP (script-src 'self'; style-src 'self'): no inline script, style or event handler.
    assert page.inline_script == ""
    for tag, attrs in page.tags:
        assert tag != "style"
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], tag
        if tag == "script":
            assert attrs.get("src", "").startswith("/static/js/")
    ids = page.ids()
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert not duplicates, duplicates
    labelled = {a.get("for") for t, a in page.tags if t == "label"}
    for tag, attrs in page.tags:
        if tag in ("input", "textarea", "select") and attrs.get("type") != "hidden":
            assert attrs.get("id") in labelled, f"{tag} {attrs.get('name')} has no label"
    for tag, attrs in page.tags:
        if tag == "a" and attrs.get("href", "").startswith("#"):
            assert attrs["href"][1:] in ids, f"link to missing #{attrs['href'][1:]}"
    return page


def error_summary(page: Page) -> dict[str, str]:
    found = [a for t, a in page.tags if "data-error-summary" in a]
    assert len(found) == 1
    return found[0]


@pytest.fixture
def pages_app(eid_app: Flask, phones: SandboxPhones) -> Flask:
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        phones.enrol(uow, make_citizen(uow, "A123456789").id, "A123456789", eid_app.extensions["mydata.clock"].now())
    return eid_app


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_login_page_offers_three_labelled_forms(pages_app: Flask, client: FlaskClient, lang: str) -> None:
    html = client.get(f"/login?lang={lang}").get_data(as_text=True)
    page = check_page(html)
    names = {a.get("name") for t, a in page.tags if t == "input"}
    assert {"national_id", "pin", "card_number", "password", "nonce", "csrf_token", "next", "level"} <= names
    assert sum(1 for t, _ in page.tags if t == "fieldset") == 3
    assert sum(1 for t, _ in page.tags if t == "legend") == 3
    assert not [a for t, a in page.tags if "data-error-summary" in a]


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_errors_are_summarised_with_links_to_the_fields(pages_app: Flask, client: FlaskClient, lang: str) -> None:
    nonce = eid_nonce(client)
    wrong_pin = post_form(client, "/login/eid", {"national_id": "A123456789", "pin": "000000", "nonce": nonce}, lang)
    page = check_page(wrong_pin.get_data(as_text=True))
    summary = error_summary(page)
    assert summary["role"] == "alert"
    assert summary["tabindex"] == "-1"  # forms.js moves the focus there
    assert ("a", {"href": "#eid-pin"}) in page.tags
    empty = post_form(client, "/login/nhi", {"card_number": "", "password": ""}, lang)
    page = check_page(empty.get_data(as_text=True))
    error_summary(page)
    assert ("a", {"href": "#nhi-card_number"}) in page.tags
    assert ("a", {"href": "#nhi-password"}) in page.tags
    invalid = [a for t, a in page.tags if a.get("aria-invalid") == "true"]
    assert {a["id"] for a in invalid} == {"nhi-card_number", "nhi-password"}
    for attrs in invalid:
        assert f"{attrs['id']}-error" in attrs["aria-describedby"].split()


def test_empty_nhi_form_messages_in_both_languages(pages_app: Flask, client: FlaskClient) -> None:
    english = text(post_form(client, "/login/nhi", {"card_number": "", "password": ""}, "en"))
    assert "Enter the card number of your NHI card." in english
    assert "There is a problem" in english
    chinese = text(post_form(client, "/login/nhi", {"card_number": "", "password": ""}, "zh_Hant_TW"))
    assert "請輸入健保卡卡號" in chinese
    assert "有問題需要處理" in chinese


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_mobile_waiting_page_and_simulator(pages_app: Flask, client: FlaskClient, lang: str) -> None:
    post_form(client, "/login/mobile", {"national_id": "A123456789"})
    page = check_page(client.get(f"/login/mobile/wait?lang={lang}").get_data(as_text=True))
    status = [a for t, a in page.tags if a.get("id") == "mobile-status"]
    assert status[0]["aria-live"] == "polite"
    assert ("script", {"src": "/static/js/mobile-login.js", "defer": ""}) in page.tags
    check_page(client.get(f"/sandbox/mobile-id?lang={lang}").get_data(as_text=True))


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_account_page(pages_app: Flask, client: FlaskClient, login_as: LoginAs, lang: str) -> None:
    login_as("A123456789", "eid")
    html = client.get(f"/me?lang={lang}").get_data(as_text=True)
    check_page(html)
    assert "A12****789" in html
    assert "A123456789" not in html


def test_account_page_in_chinese(pages_app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789", "eid")
    page = text(client.get("/me?lang=zh_Hant_TW"))
    assert "王小明" in page
    assert "自然人憑證" in page
    assert "登出" in page


def test_static_scripts_are_served(client: FlaskClient) -> None:
    for name in ("forms.js", "mobile-login.js"):
        response = client.get(f"/static/js/{name}")
        assert response.status_code == 200
        assert "fetch" in response.get_data(as_text=True) or "focus" in response.get_data(as_text=True)
        response.close()
