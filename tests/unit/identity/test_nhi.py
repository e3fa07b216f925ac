"""NHI card login: card number and registration password, the per-card lock, the per-address cap."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from identity.models import LoginSession, NhiCard
from mydata.clock import FrozenClock
from mydata.db import get_db
from tests.factories.identity import make_citizen, make_nhi_card, post_form, text

pytestmark = pytest.mark.db


@pytest.fixture
def card(app: Flask) -> str:
    """Register 王小明's NHI card (password Sandbox-2026)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        return make_nhi_card(uow, make_citizen(uow, "A123456789"))


def log_in(client: FlaskClient, card: str, password: str, lang: str = "") -> object:
    return post_form(client, "/login/nhi", {"card_number": card, "password": password}, lang)


def taipei(moment: dt.datetime) -> str:
    return moment.astimezone(ZoneInfo("Asia/Taipei")).strftime("%Y-%m-%d %H:%M")


def test_right_password_logs_in_at_level_low(app: Flask, client: FlaskClient, card: str) -> None:
    response = post_form(client, "/login/nhi", {"card_number": card, "password": "Sandbox-2026"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/me"
    page = text(client.get("/me?lang=en"))
    assert "王小明" in page
    assert "A12****789" in page
    assert "NHI card" in page
    with app.app_context(), get_db().unit_of_work() as uow:
        session = uow.session.scalars(select(LoginSession)).one()
        assert (session.level, session.amr, session.method) == ("low", ["sc", "pwd"], "nhi_card")


def test_card_number_may_be_typed_with_spaces(client: FlaskClient, card: str) -> None:
    response = post_form(client, "/login/nhi", {"card_number": "0000 1111 0001", "password": "Sandbox-2026"})
    assert response.status_code == 303


def test_password_is_stored_as_an_argon2id_hash(app: Flask, card: str) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        stored = uow.session.get(NhiCard, card)
        assert stored is not None
        assert stored.password_hash.startswith("$argon2id$")
        assert "Sandbox-2026" not in stored.password_hash


def test_wrong_password_says_how_many_attempts_are_left(client: FlaskClient, card: str) -> None:
    response = log_in(client, card, "wrong", "en")
    assert response.status_code == 401
    page = text(response)
    assert "The NHI card number or the registration password is not correct. After 4 more wrong attempts" in page
    assert 'href="#nhi-password"' in page
    assert "健保卡卡號或註冊密碼不正確" in text(log_in(client, card, "wrong", "zh_Hant_TW"))


def normalised(page: str, card_number: str) -> str:
    """Return a login page without what differs by chance or by what was typed (token, nonce, card number)."""
    page = re.sub(r'name="(csrf_token|nonce)" value="[^"]*"', r'name="\1" value=""', page)
    return page.replace(card_number, "CARD")


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the Argon2 verifications (each one is the costly work of a login attempt)."""
    calls: list[str] = []
    real = PasswordHasher.verify

    def verify(self: PasswordHasher, password_hash: str | bytes, password: str | bytes) -> bool:
        calls.append(str(password_hash)[:9])
        return real(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    return calls


@pytest.mark.parametrize("lang", ["en", "zh_Hant_TW"])
def test_an_unknown_card_is_answered_exactly_like_a_wrong_password(
    client: FlaskClient, card: str, verifications: list[str], lang: str
) -> None:
    unknown = "999988887777"
    wrong = log_in(client, card, "wrong", lang)
    assert verifications == ["$argon2id"]
    missing = log_in(client, unknown, "wrong", lang)
    assert verifications == ["$argon2id", "$argon2id"]  # the same work: a hash of the same cost is verified
    assert missing.status_code == wrong.status_code == 401
    assert normalised(text(missing), unknown) == normalised(text(wrong), card)
    if lang == "en":
        assert "The NHI card number or the registration password is not correct." in text(missing)


def test_an_unknown_card_locks_like_a_real_one(
    client: FlaskClient, card: str, clock: FrozenClock, verifications: list[str]
) -> None:
    unknown = "999988887777"
    for left in (4, 3, 2, 1):
        pages = [text(log_in(client, number, "wrong", "en")) for number in (card, unknown)]
        assert f"After {left} more wrong attempt" in pages[0]
        assert normalised(pages[1], unknown) == normalised(pages[0], card)
    fifth = [log_in(client, number, "wrong", "en") for number in (card, unknown)]
    assert [r.status_code for r in fifth] == [429, 429]
    assert normalised(text(fifth[1]), unknown) == normalised(text(fifth[0]), card)
    assert len(verifications) == 10

    clock.advance(60)
    locked = [log_in(client, number, "Sandbox-2026", "en") for number in (card, unknown)]
    assert [r.status_code for r in locked] == [429, 429]
    # The limiter rewrites the header against the wall clock, hence the one second of slack.
    assert abs(int(locked[0].headers["Retry-After"]) - int(locked[1].headers["Retry-After"])) <= 1
    assert normalised(text(locked[1]), unknown) == normalised(text(locked[0]), card)
    assert len(verifications) == 10  # locked: the password is not even checked, for either card

    clock.advance(14 * 60)
    assert log_in(client, card, "Sandbox-2026").status_code == 303
    assert log_in(client, unknown, "wrong").status_code == 401


def test_malformed_card_number_is_a_form_error(client: FlaskClient, card: str) -> None:
    response = log_in(client, "12345", "x", "en")
    assert response.status_code == 400
    page = text(response)
    assert "The NHI card number is the 12 digits printed on the card." in page
    assert 'aria-invalid="true"' in page


def test_sixth_attempt_is_refused_while_locked_then_works_after_15_minutes(
    client: FlaskClient, card: str, clock: FrozenClock
) -> None:
    for left in (4, 3, 2, 1):
        page = text(log_in(client, card, "wrong", "en"))
        assert f"After {left} more wrong attempt" in page
        clock.advance(60)
    fifth = log_in(client, card, "wrong", "en")
    until = clock.now() + dt.timedelta(minutes=15)
    assert fifth.status_code == 429
    assert f"You can try again after {taipei(until)} (Taiwan time)" in text(fifth)

    clock.advance(60)
    sixth = log_in(client, card, "Sandbox-2026", "en")  # the right password, but the card is locked
    assert sixth.status_code == 429
    assert f"You can try again after {taipei(until)}" in text(sixth)
    # The limiter rewrites the header against the wall clock, hence the one second of slack.
    assert 14 * 60 - 1 <= int(sixth.headers["Retry-After"]) <= 14 * 60
    assert taipei(until) in text(log_in(client, card, "Sandbox-2026", "zh_Hant_TW"))

    clock.advance(14 * 60)
    assert log_in(client, card, "Sandbox-2026").status_code == 303


def test_failures_spread_over_more_than_15_minutes_do_not_lock(
    client: FlaskClient, card: str, clock: FrozenClock
) -> None:
    for _ in range(4):
        log_in(client, card, "wrong")
        clock.advance(5 * 60)
    # The first failure is now 20 minutes old: only three count, the fifth failure does not lock.
    assert log_in(client, card, "wrong").status_code == 401
    assert log_in(client, card, "Sandbox-2026").status_code == 303


def test_the_lock_is_per_card_not_per_address(app: Flask, client: FlaskClient, card: str) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        other = make_nhi_card(uow, make_citizen(uow, "B223456782"))
    for _ in range(5):
        log_in(client, card, "wrong")
    assert log_in(client, card, "Sandbox-2026").status_code == 429
    assert log_in(client, other, "Sandbox-2026").status_code == 303


def test_right_password_clears_earlier_failures(client: FlaskClient, card: str) -> None:
    for _ in range(4):
        log_in(client, card, "wrong")
    assert log_in(client, card, "Sandbox-2026").status_code == 303
    for _ in range(4):
        assert log_in(client, card, "wrong").status_code == 401


def test_failed_attempts_per_address_are_capped(app: Flask, client: FlaskClient, card: str) -> None:
    app.config["IDENTITY_LOGIN_RATE"] = "3 per minute"
    # Three different unknown cards: no card lock is involved, only the per-address cap.
    for number in ("999988887771", "999988887772", "999988887773"):
        assert log_in(client, number, "x").status_code == 401
    refused = log_in(client, card, "Sandbox-2026", "en")
    assert refused.status_code == 429
    assert "Too many attempts" in text(refused)
