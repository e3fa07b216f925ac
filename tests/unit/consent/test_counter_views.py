"""The citizen's counter page (/me/counter, 臨櫃核驗, DESIGN §6.5; issue 12): code, QR, countdown, states.

The clerk's side runs here through the services (:func:`consent.counter.claim` and what follows), so
that each state of the citizen's page can be seen; the two pages together are in tests/e2e.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from consent import counter
from consent.counter import Clerk
from consent.counter_views import SESSION_KEY
from consent.models import CounterUse
from consent.pdf import qr_data_uri
from identity import contacts
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from mydata.models import OutboxMessage
from providers.sandbox.seed import seed_sandbox_catalogue
from tests.factories.consent import fake_fetcher
from tests.factories.identity import LoginAs, make_citizen, text

pytestmark = pytest.mark.db

CITIZEN = "A123456789"
OTHER_CITIZEN = "B223456782"
CLERK = "E224680132"
TAIPEI = ZoneInfo("Asia/Taipei")
CODE = re.compile(r'<[^>]*id="counter-code"[^>]*>\s*([2-9A-Z]{4}-[2-9A-Z]{4})\s*<')


@pytest.fixture(autouse=True)
def sandbox(app: Flask, tmp_path: Path) -> None:
    """Seed the sandbox catalogue and a platform signing key (the ledger signs tree heads)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        seed_sandbox_catalogue(uow, keys_dir=tmp_path / "agency-keys", agencies_url="http://localhost/agencies")
        key_store(uow).rotate()
        uow.commit()


@pytest.fixture
def clerk(app: Flask, clock: FrozenClock) -> Clerk:
    """Return persona 4 as a clerk of the sandbox bank."""
    with app.app_context(), get_db().unit_of_work() as uow:
        account = make_citizen(uow, CLERK, clock.now())
        uow.commit()
        return Clerk(account.id, "sandbox-bank", "沙盒銀行", "Sandbox Bank")


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def start(client: FlaskClient, datasets: tuple[str, ...] = ("nhi.enrolment", "household.registration")) -> str:
    """Pick datasets on /me/counter and send the form; return the new use's page path."""
    token = csrf_token(client.get("/me/counter").get_data(as_text=True))
    answer = client.post("/me/counter", data={"csrf_token": token, "datasets": list(datasets)})
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert re.fullmatch(r"/me/counter/[0-9a-f-]{36}", location)
    return location


def code_on(client: FlaskClient, page: str) -> str:
    match = CODE.search(client.get(page).get_data(as_text=True))
    assert match, "no code on the page"
    return match.group(1)


def use_id(page: str) -> str:
    return page.rsplit("/", 1)[1]


def stored(app: Flask, use: str) -> dict[str, object]:
    """Return the use's row as stored, column by column."""
    with app.app_context(), get_db().unit_of_work() as uow:
        found = uow.session.get(CounterUse, use)
        assert found is not None
        return {column.name: getattr(found, column.name) for column in CounterUse.__table__.columns}


def claim(app: Flask, clerk: Clerk, code: str, now: dt.datetime) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        counter.claim(uow, clerk=clerk, code=code, now=now)
        uow.commit()


def confirmation_held(app: Flask, client: FlaskClient, citizen_id: str, use: str, now: dt.datetime) -> str:
    """Return the confirmation code as the key this browser holds opens it."""
    with client.session_transaction() as held:
        key = held[SESSION_KEY]["key"]
    with app.app_context(), get_db().unit_of_work() as uow:
        view = counter.citizen_view(uow, citizen_id=citizen_id, use_id=use, page_key=key, now=now)
    assert view.confirmation is not None
    return view.confirmation


def status(client: FlaskClient, page: str, lang: str) -> str:
    answer = client.get(f"{page}/status?lang={lang}")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    assert "<html" not in html  # a fragment for the status region, not a page
    assert CITIZEN not in html
    return text(answer)


def taiwan(moment: dt.datetime, fmt: str) -> str:
    """Format *moment* in Taiwan time, as the pages show times."""
    return moment.astimezone(TAIPEI).strftime(fmt)


def uses(app: Flask) -> int:
    with app.app_context(), get_db().unit_of_work() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(CounterUse)) or 0)


# -- login and level ------------------------------------------------------------------------------


def test_every_counter_page_asks_for_a_login_first(client: FlaskClient) -> None:
    for path in ("/me/counter", "/me/counter/some-use"):
        answer = client.get(path)
        assert answer.status_code == 303
        assert answer.headers["Location"].startswith(f"/login?next={path}")
    fragment = client.get("/me/counter/some-use/status?lang=en")
    assert fragment.status_code == 401
    assert "<html" not in fragment.text
    assert 'data-state="logged-out"' in fragment.text
    assert "/login?next=/me/counter/some-use" in fragment.text


def test_the_picker_offers_the_catalogue_in_both_languages(client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    english = client.get("/me/counter?lang=en")
    assert english.status_code == 200
    assert english.headers["Cache-Control"] == "no-store"
    html = english.get_data(as_text=True)
    assert 'class="counter-picker"' in html
    assert 'value="nhi.enrolment"' in html
    assert 'value="tax.income"' in html
    assert "Show my data at a counter" in text(english)
    assert "臨櫃核驗" in text(client.get("/me/counter?lang=zh_Hant_TW"))


def test_a_dataset_above_the_level_asks_for_a_step_up_that_comes_back(
    app: Flask, client: FlaskClient, login_as: LoginAs
) -> None:
    login_as(CITIZEN, method="nhi_card")
    html = client.get("/me/counter").get_data(as_text=True)
    assert "/login?next=/me/counter?datasets%3Dtax.income&amp;level=substantial" in html
    assert 'value="tax.income"' not in html
    answer = client.post(
        "/me/counter", data={"csrf_token": csrf_token(html), "datasets": ["nhi.enrolment", "tax.income"]}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/login?next=/me/counter?datasets%3Dnhi.enrolment,tax.income")
    assert "level=substantial" in answer.headers["Location"]
    assert uses(app) == 0
    # Back from the step-up, the same choice is ticked.
    login_as(CITIZEN, method="mobile")
    resumed = client.get("/me/counter?datasets=nhi.enrolment,tax.income").get_data(as_text=True)
    assert re.search(r'value="tax.income"[^>]*checked', resumed)


def test_nothing_picked_says_so_at_the_field(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    token = csrf_token(client.get("/me/counter").get_data(as_text=True))
    answer = client.post("/me/counter?lang=en", data={"csrf_token": token})
    assert answer.status_code == 400
    html = answer.get_data(as_text=True)
    assert "Choose at least one dataset to show." in text(answer)
    assert 'aria-describedby="datasets-error"' in html
    assert 'id="datasets-error"' in html
    assert uses(app) == 0


def test_a_post_without_its_csrf_token_is_refused(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    assert client.post("/me/counter", data={"datasets": "nhi.enrolment"}).status_code == 400
    assert uses(app) == 0
    page = start(client)
    refused = client.post(f"{page}/cancel", data={})
    assert refused.status_code == 400
    assert stored(app, use_id(page))["status"] == "offered"


# -- the code, its QR code and its countdown ------------------------------------------------------


def test_the_code_page_shows_the_code_its_qr_code_the_datasets_and_until_when(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    until = taiwan(clock.now() + dt.timedelta(minutes=20), "%H:%M")
    answer = client.get(f"{page}?lang=en")
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    html = answer.get_data(as_text=True)
    code = code_on(client, page)
    assert counter.normalise_code(code) is not None
    assert qr_data_uri(f"http://localhost/counter?code={code}") in html
    page_text = text(answer)
    assert f"Valid until {until}" in page_text
    assert 'data-seconds-left="1200"' in html
    assert "National Health Insurance enrolment" in page_text
    assert f'action="{page}/cancel"' in html
    assert re.search(r'id="counter-status"[^>]*role="status"[^>]*aria-live="polite"', html)
    assert f'data-status-url="{page}/status"' in html
    assert "js/counter.js" in html
    assert "Waiting for the clerk to enter your code" in page_text
    # The code is kept only in this browser's session: a reload shows it again, the database has its hash.
    assert code_on(client, page) == code
    assert code.replace("-", "") not in str(stored(app, use_id(page)))
    assert f"有效至 {until}" in text(client.get(f"{page}?lang=zh_Hant_TW"))
    # While it is open, the picker sends this browser back to it.
    back = client.get("/me/counter")
    assert back.status_code == 303
    assert back.headers["Location"] == page


def test_a_new_code_cancels_the_open_one(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    first = start(client)
    assert client.get("/me/counter").status_code == 303
    token = csrf_token(client.get("/me/counter?datasets=nhi.enrolment").get_data(as_text=True))
    second = client.post("/me/counter", data={"csrf_token": token, "datasets": "nhi.enrolment"}).headers["Location"]
    assert second != first
    assert stored(app, use_id(first))["status"] == "cancelled"
    assert "has been cancelled" in status(client, first, "en")


def test_the_page_and_its_status_in_both_languages_while_waiting(client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    assert "Waiting for the clerk to enter your code" in status(client, page, "en")
    assert "等待櫃員輸入您的代碼" in status(client, page, "zh_Hant_TW")
    assert 'data-state="offered"' in client.get(f"{page}/status").text


# -- a clerk enters the code ----------------------------------------------------------------------


def test_once_a_clerk_enters_the_code_the_status_shows_the_confirmation_code(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, clerk: Clerk
) -> None:
    citizen = login_as(CITIZEN, method="eid")
    page = start(client)
    clock.advance(5 * 60)
    by = taiwan(clock.now() + dt.timedelta(minutes=2), "%H:%M:%S")
    claim(app, clerk, code_on(client, page), clock.now())
    confirmation = confirmation_held(app, client, citizen.citizen_id, use_id(page), clock.now())
    chinese = status(client, page, "zh_Hant_TW")
    assert "沙盒銀行" in chinese
    assert confirmation in chinese
    english_html = client.get(f"{page}/status?lang=en").get_data(as_text=True)
    assert re.search(rf'id="confirmation"[^>]*>\s*{confirmation}\s*<', english_html)
    assert 'data-state="claimed"' in english_html
    english = status(client, page, "en")
    assert "A clerk of Sandbox Bank entered your code. Tell them this confirmation code:" in english
    assert f"within 2 minutes (by {by})" in english
    # The page itself shows it too (a reload, or a browser without JavaScript).
    assert confirmation in text(client.get(f"{page}?lang=en"))


def test_a_browser_without_the_page_key_is_sent_to_the_email(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, clerk: Clerk
) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    claim(app, clerk, code_on(client, page), clock.now())
    client.delete_cookie("mydata_session")  # another browser of the same login: no page key, no code
    english = status(client, page, "en")
    assert "look at the email we sent you, or cancel and start again" in english
    assert 'id="confirmation"' not in client.get(f"{page}/status").text
    assert "電子郵件" in status(client, page, "zh_Hant_TW")
    assert 'id="counter-code"' not in client.get(page).text
    picker = client.get("/me/counter?lang=en")
    assert picker.status_code == 200  # the picker, not a page this browser cannot show
    assert "You have a counter code open in another browser. A new code made here cancels it." in text(picker)


def test_the_emails_the_page_points_to_are_in_the_citizens_language(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, clerk: Clerk
) -> None:
    citizen = login_as(CITIZEN, method="eid")
    with app.app_context(), get_db().unit_of_work() as uow:
        contacts.set_confirmed_address(uow, citizen.citizen_id, "wang@example.com", clock.now())  # Chinese by default
        uow.commit()
    page = start(client)
    claim(app, clerk, code_on(client, page), clock.now())
    confirmation = confirmation_held(app, client, citizen.citizen_id, use_id(page), clock.now())
    with app.app_context(), get_db().unit_of_work() as uow:
        counter.confirm(uow, clerk=clerk, use_id=use_id(page), confirmation=confirmation, now=clock.now())
        uow.commit()
        counter.fetch_for_clerk(uow, clerk=clerk, use_id=use_id(page), fetcher=fake_fetcher(), now=clock.now())
        uow.commit()
        sent = [
            (m.subject, m.body)
            for m in uow.session.scalars(select(OutboxMessage).where(OutboxMessage.recipient == "wang@example.com"))
        ]
    assert len(sent) == 2
    code_mail, shown_mail = sorted(sent, key=lambda mail: confirmation not in mail[1])
    assert "臨櫃核驗確認碼" in code_mail[0]
    assert f"您的確認碼是 {confirmation}" in code_mail[1]
    assert "沙盒銀行" in shown_mail[0]
    assert "出示" in shown_mail[0]
    assert "臨櫃人員" in shown_mail[1]
    assert CITIZEN not in code_mail[1] + shown_mail[1]


def test_once_shown_the_page_says_to_whom_and_when(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, clerk: Clerk
) -> None:
    citizen = login_as(CITIZEN, method="eid")
    page = start(client)
    claim(app, clerk, code_on(client, page), clock.now())
    confirmation = confirmation_held(app, client, citizen.citizen_id, use_id(page), clock.now())
    clock.advance(60)
    shown_at = taiwan(clock.now(), "%Y-%m-%d %H:%M")
    with app.app_context(), get_db().unit_of_work() as uow:
        counter.confirm(uow, clerk=clerk, use_id=use_id(page), confirmation=confirmation, now=clock.now())
        uow.commit()
        counter.fetch_for_clerk(uow, clerk=clerk, use_id=use_id(page), fetcher=fake_fetcher(), now=clock.now())
        uow.commit()
    chinese = status(client, page, "zh_Hant_TW")
    assert "已出示給沙盒銀行" in chinese
    assert shown_at in chinese
    english_html = client.get(f"{page}/status?lang=en").get_data(as_text=True)
    assert 'data-state="shown"' in english_html
    assert 'href="/me/history"' in english_html
    english = status(client, page, "en")
    assert "Shown to Sandbox Bank" in english
    assert "15 minutes" in english
    assert confirmation not in english
    assert "Shown to Sandbox Bank" in text(client.get(f"{page}?lang=en"))
    assert client.get("/me/counter").status_code == 200  # no longer open: the picker again


# -- endings --------------------------------------------------------------------------------------


def test_cancelling_ends_the_code_and_says_so(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    html = client.get(page).get_data(as_text=True)
    done = client.post(f"{page}/cancel", data={"csrf_token": csrf_token(html)})
    assert done.status_code == 303
    assert done.headers["Location"] == "/me/counter?cancelled=1"
    assert stored(app, use_id(page))["status"] == "cancelled"
    after = client.get("/me/counter?cancelled=1&lang=en")
    assert after.status_code == 200
    assert re.search(r'role="status"[^>]*>\s*Your counter code was cancelled', after.get_data(as_text=True))
    assert "您的臨櫃核驗代碼已取消" in text(client.get("/me/counter?cancelled=1&lang=zh_Hant_TW"))
    ended = client.get(f"{page}/status?lang=en").get_data(as_text=True)
    assert 'data-state="cancelled"' in ended
    assert 'href="/me/counter"' in ended
    assert "This counter code has been cancelled" in status(client, page, "en")
    assert "這組臨櫃核驗代碼已取消" in status(client, page, "zh_Hant_TW")
    assert 'id="counter-code"' not in client.get(page).text


def test_an_unused_code_expires_after_twenty_minutes(
    client: FlaskClient, clock: FrozenClock, login_as: LoginAs
) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    clock.advance(10 * 60)
    assert 'data-state="offered"' in client.get(f"{page}/status").text  # the page's polling keeps the login
    clock.advance(10 * 60)
    assert 'data-state="expired"' in client.get(f"{page}/status").text
    assert "expired" in status(client, page, "en")
    assert "已過期" in status(client, page, "zh_Hant_TW")
    assert client.get("/me/counter").status_code == 200


def test_a_confirmation_not_entered_in_two_minutes_voids_the_code(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, clerk: Clerk
) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    claim(app, clerk, code_on(client, page), clock.now())
    clock.advance(2 * 60)
    assert 'data-state="void"' in client.get(f"{page}/status").text
    assert "within 2 minutes" in status(client, page, "en")
    assert "start again" in status(client, page, "en")
    assert "已失效" in status(client, page, "zh_Hant_TW")


def test_another_citizens_use_is_not_found(app: Flask, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    login_as(OTHER_CITIZEN, method="mobile")
    token = csrf_token(client.get("/me/counter").get_data(as_text=True))
    assert client.get(page).status_code == 404
    assert client.get(f"{page}/status").status_code == 404
    assert client.post(f"{page}/cancel", data={"csrf_token": token}).status_code == 404
    assert stored(app, use_id(page))["status"] == "offered"


# -- the dashboard and the page rules -------------------------------------------------------------


def test_the_dashboard_leads_to_the_counter(client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, method="eid")
    assert 'href="/me/counter"' in client.get("/me").text
    assert "Show my data at a counter" in text(client.get("/me?lang=en"))
    assert "臨櫃核驗" in text(client.get("/me?lang=zh_Hant_TW"))


@pytest.mark.parametrize("lang", ["zh_Hant_TW", "en"])
def test_the_counter_pages_keep_the_page_rules(client: FlaskClient, login_as: LoginAs, lang: str) -> None:
    login_as(CITIZEN, method="eid")
    page = start(client)
    for path in ("/me/counter?datasets=nhi.enrolment", page):
        answer = client.get(f"{path}&lang={lang}" if "?" in path else f"{path}?lang={lang}")
        html = answer.get_data(as_text=True)
        assert answer.status_code == 200, path
        assert "style=" not in html, path  # CSP: style-src 'self'
        assert "<script>" not in html, path
        assert html.count("<h1") == 1, path
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids)), path
