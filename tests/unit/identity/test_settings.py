"""Account settings (/me/settings): the address confirmed by a single-use link, the language, the notifications."""

from __future__ import annotations

import hashlib
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from identity import contacts
from identity.models import EmailConfirmation
from identity.sandbox.personas import NHI_PASSWORD
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.models import OutboxMessage
from tests.factories.identity import LoginAs, form_token, make_citizen, make_nhi_card, post_form, text
from tests.unit.identity.test_pages import check_page, error_summary

pytestmark = pytest.mark.db

ADDRESS = "wang.xiaoming@example.com"
LINK = re.compile(r"http://localhost(/me/settings/email/[A-Za-z0-9_-]+)")


def _save(client: FlaskClient, lang: str = "", **fields: str | list[str]) -> str:
    data: dict[str, str | list[str]] = {
        "email": ADDRESS,
        "language": "zh_Hant_TW",
        "notifications": ["delivery", "download", "verification"],
        **fields,
    }
    url = "/me/settings" + (f"?lang={lang}" if lang else "")
    response = client.post(url, data={"csrf_token": form_token(client, "/me/settings"), **data})
    return f"{response.status_code} {text(response)}" if response.status_code != 303 else "303"


def _outbox(app: Flask) -> list[OutboxMessage]:
    with app.app_context(), get_db().unit_of_work() as uow:
        messages = list(uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))
        uow.session.expunge_all()
        return messages


def _link(app: Flask) -> str:
    match = LINK.search(_outbox(app)[-1].body)
    assert match, _outbox(app)[-1].body
    return match.group(1)


def test_the_settings_page_needs_a_login(app: Flask, client: FlaskClient) -> None:
    response = client.get("/me/settings")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(("lang", "heading"), [("zh_Hant_TW", "帳號設定"), ("en", "Account settings")])
def test_the_settings_page_in_both_languages(
    app: Flask, client: FlaskClient, login_as: LoginAs, lang: str, heading: str
) -> None:
    login_as("A123456789")
    page = client.get(f"/me/settings?lang={lang}")
    assert page.status_code == 200
    assert heading in text(page)
    assert 'name="csrf_token"' in text(page)
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("language", "subject"), [("zh_Hant_TW", "請確認您的電子郵件地址"), ("en", "Confirm your email address")]
)
def test_a_new_address_gets_a_confirmation_link_in_the_chosen_language(
    app: Flask, client: FlaskClient, login_as: LoginAs, language: str, subject: str
) -> None:
    login_as("A123456789")
    assert _save(client, language=language) == "303"
    [message] = _outbox(app)
    assert message.recipient == ADDRESS
    assert message.subject == subject
    assert message.language == language
    assert "A123456789" not in message.body
    page = text(client.get("/me/settings?lang=en"))
    assert f"{ADDRESS} (waiting for confirmation" in page
    with app.app_context(), get_db().unit_of_work() as uow:
        assert contacts.notification_contact(uow, login_as("A123456789").citizen_id, "delivery") is None


def test_the_link_confirms_the_address_once(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    citizen = login_as("A123456789")
    _save(client)
    link = _link(app)
    token = link.rsplit("/", 1)[1]
    with app.app_context(), get_db().unit_of_work() as uow:
        stored = uow.session.scalars(select(EmailConfirmation)).one()
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()  # the link itself is not stored
    other = app.test_client()  # the mail may be opened in another browser, logged in or not
    landing = other.get(f"{link}?lang=en")
    assert landing.status_code == 200
    assert "Confirm" in text(landing)
    confirmed = other.post(f"{link}?lang=en", data={"csrf_token": _token_of(landing.get_data(as_text=True))})
    assert confirmed.status_code == 200
    assert f"{ADDRESS} is confirmed" in text(confirmed)
    with app.app_context(), get_db().unit_of_work() as uow:
        contact = contacts.notification_contact(uow, citizen.citizen_id, "delivery")
    assert contact == contacts.Contact(email=ADDRESS, language="zh_Hant_TW", name="王小明")

    again = other.post(f"{link}?lang=en", data={"csrf_token": _token_of(landing.get_data(as_text=True))})
    assert again.status_code == 410
    assert "This link has already been used" in text(again)
    assert other.get(f"{link}?lang=zh_Hant_TW").status_code == 410
    assert "這個連結已經使用過" in text(other.get(f"{link}?lang=zh_Hant_TW"))


def test_an_expired_link_is_refused(app: Flask, client: FlaskClient, login_as: LoginAs, clock: FrozenClock) -> None:
    login_as("A123456789")
    _save(client)
    link = _link(app)
    clock.advance(24 * 3600 + 1)
    landing = client.get(f"{link}?lang=en")
    assert landing.status_code == 410
    assert "This link has expired" in text(landing)
    refused = client.post(f"{link}?lang=en", data={"csrf_token": form_token(client)})
    assert refused.status_code == 410
    assert "這個連結已經過期" in text(client.get(f"{link}?lang=zh_Hant_TW"))


def test_an_unknown_link_is_a_clear_404(app: Flask, client: FlaskClient) -> None:
    page = client.get("/me/settings/email/not-a-real-token?lang=en")
    assert page.status_code == 404
    assert "This link is not valid" in text(page)


def test_a_new_link_replaces_the_previous_one(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789")
    _save(client)
    first = _link(app)
    _save(client, email="wang@example.org")
    assert client.get(first).status_code == 404
    assert client.get(_link(app)).status_code == 200


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"email": "not-an-address"}, "Enter an email address such as name@example.com."),
        ({"email": "a" * 250 + "@example.org"}, "Enter an email address such as name@example.com."),
        ({"language": "fr"}, "Not a valid choice."),
        ({"notifications": ["delivery", "spam"]}, "is not a valid choice"),
    ],
)
def test_bad_input_is_a_400_with_the_reason(
    app: Flask, client: FlaskClient, login_as: LoginAs, fields: dict[str, str], error: str
) -> None:
    login_as("A123456789")
    answer = _save(client, lang="en", **fields)
    assert answer.startswith("400 ")
    assert error in answer
    assert _outbox(app) == []


def test_a_form_without_its_csrf_token_is_refused(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as("A123456789")
    response = client.post("/me/settings", data={"email": ADDRESS, "language": "en"})
    assert response.status_code == 400
    assert _outbox(app) == []


def test_notification_preferences_are_respected(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    citizen = login_as("A123456789")
    _save(client, language="en", notifications=["download"])
    link = _link(app)
    client.post(link, data={"csrf_token": form_token(client, "/me/settings")})
    with app.app_context(), get_db().unit_of_work() as uow:
        wanted = {kind: contacts.notification_contact(uow, citizen.citizen_id, kind) for kind in contacts.KINDS}
    assert wanted == {
        "delivery": None,
        "download": contacts.Contact(email=ADDRESS, language="en", name="王小明"),
        "verification": None,
    }
    page = text(client.get("/me/settings?lang=en"))
    assert f"{ADDRESS} (confirmed)" in page
    assert len(_outbox(app)) == 1  # saving the same address again sends no new link
    _save(client, language="en", notifications=[])
    assert len(_outbox(app)) == 1


def test_the_chosen_language_is_the_portal_default_after_login(
    app: Flask, client: FlaskClient, clock: FrozenClock
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, "A123456789", clock.now())
        card = make_nhi_card(uow, citizen, clock.now())
        contacts.save_settings(
            uow, citizen.id, email="", language="en", notifications=(), link_base="http://localhost", now=clock.now()
        )
    response = post_form(client, "/login/nhi", {"card_number": card, "password": NHI_PASSWORD, "next": "/me"})
    assert response.status_code == 303
    assert any(value.startswith("mydata_lang=en;") for value in response.headers.getlist("Set-Cookie"))


def test_a_language_this_browser_chose_stays_after_login(app: Flask, client: FlaskClient, clock: FrozenClock) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, "A123456789", clock.now())
        card = make_nhi_card(uow, citizen, clock.now())
        contacts.save_settings(
            uow, citizen.id, email="", language="zh_Hant_TW", notifications=(), link_base="http://x", now=clock.now()
        )
    client.get("/login?lang=en")  # the reader switched to English on this visit
    response = post_form(client, "/login/nhi", {"card_number": card, "password": NHI_PASSWORD, "next": "/me"})
    assert response.status_code == 303
    assert not any(value.startswith("mydata_lang=") for value in response.headers.getlist("Set-Cookie"))
    assert "Hello" in client.get("/me").get_data(as_text=True)


def _token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match
    return match.group(1)


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_the_settings_page_is_labelled_and_its_errors_link_to_the_fields(
    app: Flask, client: FlaskClient, login_as: LoginAs, lang: str
) -> None:
    login_as("A123456789")
    check_page(client.get(f"/me/settings?lang={lang}").get_data(as_text=True))
    response = client.post(
        f"/me/settings?lang={lang}",
        data={"csrf_token": form_token(client, "/me/settings"), "email": "nope", "language": "fr"},
    )
    assert response.status_code == 400
    page = check_page(response.get_data(as_text=True))
    summary = error_summary(page)
    assert summary["role"] == "alert"
    assert ("a", {"href": "#settings-email"}) in page.tags
    assert ("a", {"href": "#settings-language"}) in page.tags
    email = next(a for t, a in page.tags if a.get("id") == "settings-email")
    assert email["aria-invalid"] == "true"
    assert "settings-email-error" in email["aria-describedby"].split()
