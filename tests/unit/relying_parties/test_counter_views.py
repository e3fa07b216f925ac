"""The clerk's counter pages (臨櫃核驗, DESIGN §6.5; issue 12, the clerk's side and acceptance 2).

The citizen's side is called through the services (consent.counter): the citizen offers a code and
reads the confirmation code on their page. The agencies are replaced by the sandbox's data, served
in process (no HTTP): the pages over real HTTP are the integration and e2e tests' part.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from consent import counter, downloads
from consent.downloads import Citizen
from consent.models import CounterUse
from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.limits import limiter
from providers.protocol import Outcome
from providers.sandbox.data import dataset_for
from relying_parties import counter_views, services
from relying_parties.models import APPROVED, PENDING
from tests.factories.consent import fake_fetcher
from tests.factories.identity import LoginAs, make_citizen, text
from tests.unit.relying_parties.conftest import BANK, make_organisation

pytestmark = pytest.mark.db

CLERK = "E224680132"  # 張雅婷, the sandbox's counter clerk
CITIZEN = "A123456789"  # 王小明
DATASETS = ("household.registration", "nhi.enrolment")
TAIPEI = ZoneInfo("Asia/Taipei")


def sandbox_fetcher(outcomes: Mapping[str, Outcome] | None = None):  # type: ignore[no-untyped-def]
    """Return a fetcher that answers with the sandbox agencies' data (or the outcome given), recording calls."""
    return fake_fetcher(outcomes, data=dataset_for, provider="sandbox", generated_at="2026-12-05T01:00:00Z")


@dataclass
class Desk:
    """The test bank's counter: the clerk's and the citizen's accounts, and the agencies' stand-in."""

    app: Flask
    clock: FrozenClock
    clerk_id: str
    citizen: Citizen
    fetcher: Any

    def offer(self, datasets: tuple[str, ...] = DATASETS) -> counter.Offer:
        """Let the citizen offer a new code (as their page does)."""
        with self.app.test_request_context(), get_db().unit_of_work() as uow:
            entries = [e for e in counter.catalogue(uow).datasets if e.id in datasets]
            made = counter.offer(uow, citizen=self.citizen, entries=entries, now=self.clock.now())
            uow.commit()
            return made

    def confirmation(self, made: counter.Offer) -> str:
        """Return the confirmation code the citizen's page shows."""
        with self.app.test_request_context(), get_db().unit_of_work() as uow:
            view = counter.citizen_view(
                uow,
                citizen_id=self.citizen.citizen_id,
                use_id=made.use.id,
                page_key=made.page_key,
                now=self.clock.now(),
            )
        assert view.confirmation is not None, view.state
        return view.confirmation

    def status(self, made: counter.Offer) -> str:
        with self.app.app_context(), get_db().unit_of_work() as uow:
            use = uow.session.get(CounterUse, made.use.id)
            assert use is not None
            return use.status


@pytest.fixture
def desk(app: Flask, catalogue: None, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> Desk:
    """The approved test bank (測試銀行), 張雅婷 with its counter role, 王小明 as the citizen."""
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow)
        clerk = make_citizen(uow, CLERK, clock.now())
        grant_role(uow, clerk.id, "counter", BANK, clock.now())
        account = make_citizen(uow, CITIZEN, clock.now())
        citizen = Citizen(account.id, CITIZEN, account.name, "high")
        uow.commit()
    fetcher = sandbox_fetcher()
    monkeypatch.setattr(counter_views, "fetch_datasets", fetcher)
    limiter.reset()
    return Desk(app, clock, clerk.id, citizen, fetcher)


@pytest.fixture
def clerk(desk: Desk, login_as: LoginAs) -> Desk:
    """The desk with the clerk logged in with her eID card (level high)."""
    login_as(CLERK, "eid")
    return desk


def csrf(client: FlaskClient, path: str = "/counter") -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert match, f"no form on {path}"
    return match.group(1)


def enter(client: FlaskClient, code: str, lang: str = "") -> TestResponse:
    """Type a citizen's code into the counter form and submit it."""
    return client.post("/counter" + (f"?lang={lang}" if lang else ""), data={"csrf_token": csrf(client), "code": code})


def confirm(client: FlaskClient, use_id: str, confirmation: str, lang: str = "") -> TestResponse:
    """Type the confirmation code on the use's page and submit it."""
    path = f"/counter/{use_id}/confirm" + (f"?lang={lang}" if lang else "")
    return client.post(path, data={"csrf_token": csrf(client), "confirmation": confirmation})


def taipei(moment: dt.datetime, pattern: str = "%H:%M") -> str:
    return moment.astimezone(TAIPEI).strftime(pattern)


def wrong(confirmation: str) -> str:
    return f"{(int(confirmation) + 1) % 1_000_000:06d}"


def field_error(page: str, field: str) -> str:
    """Return the error message tied to *field* (by aria-describedby), checking the markup that ties it."""
    input_tag = re.search(rf'<input[^>]*id="{field}"[^>]*>', page)
    assert input_tag, f"no #{field}"
    assert 'aria-invalid="true"' in input_tag.group(0)
    assert f"{field}-error" in input_tag.group(0)  # aria-describedby
    assert "autofocus" in input_tag.group(0)  # the focus stays in the field
    message = re.search(rf'<p[^>]*id="{field}-error"[^>]*role="alert"[^>]*>(.*?)</p>', page, re.S)
    assert message, f"no alert tied to #{field}"
    return re.sub(r"\s+", " ", message.group(1)).strip()


# -- the whole path ---------------------------------------------------------------------------------


def test_the_clerk_enters_the_code_confirms_sees_the_data_and_downloads_a_pdf_that_verifies(
    clerk: Desk, client: FlaskClient
) -> None:
    made = clerk.offer()
    page = client.get("/counter")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = text(page)
    assert re.search(r'<form[^>]*class="counter-entry"', html)
    field = re.search(r'<input[^>]*id="counter-code"[^>]*>', html)
    assert field
    for attribute in ("autofocus", 'autocomplete="off"', 'autocapitalize="characters"', 'spellcheck="false"'):
        assert attribute in field.group(0)
    assert '<label for="counter-code">客戶的代碼</label>' in html
    assert "測試銀行" in html  # whom the clerk works for

    entered = enter(client, made.code.lower())  # as typed: no hyphen, lower case
    assert entered.status_code == 303
    assert entered.headers["Location"] == f"/counter/{made.use.id}"

    offered = client.get(f"/counter/{made.use.id}")
    assert offered.status_code == 200
    html = text(offered)
    assert "戶籍資料" in html
    assert "健保投保資料" in html
    assert "衛生福利部中央健康保險署" in html  # the agency
    assert clerk.fetcher.calls == []  # the titles only: no data yet
    field = re.search(r'<input[^>]*id="confirmation"[^>]*>', html)
    assert field
    for attribute in ('inputmode="numeric"', 'autocomplete="off"', 'pattern="[0-9]{6}"', "autofocus"):
        assert attribute in field.group(0)
    deadline = clerk.clock.now() + dt.timedelta(minutes=2)
    assert taipei(deadline, "%H:%M:%S") in html

    confirmed = confirm(client, made.use.id, clerk.confirmation(made))
    assert confirmed.status_code == 303
    assert confirmed.headers["Location"] == f"/counter/{made.use.id}/data"

    shown = client.get(f"/counter/{made.use.id}/data")
    assert shown.status_code == 200
    html = text(shown)
    assert "王小明" in html  # the clerk matches the person
    assert "戶號" in html  # a table of the household registration (datasets/household.registration.html)
    assert dataset_for(CITIZEN, "household.registration")["household_number"] in html  # type: ignore[index]
    assert taipei(clerk.clock.now() + dt.timedelta(minutes=15)) in html  # this view ends at
    assert f'href="/counter/{made.use.id}/pdf"' in html
    assert 'href="/counter"' in html  # next citizen
    assert [c["txn"] for c in clerk.fetcher.calls] == [made.use.id]

    pdf = client.get(f"/counter/{made.use.id}/pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    disposition = pdf.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    found = re.search(r"-([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\.pdf", disposition)
    assert found, disposition
    with clerk.app.test_request_context(), get_db().unit_of_work() as uow:
        verified = downloads.verify_document(uow, found.group(1), now=clerk.clock.now(), uploaded=pdf.data)
    assert verified.matches is True


def test_a_scanned_code_only_fills_the_field(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    page = client.get(f"/counter?code={made.display_code.lower()}")
    assert page.status_code == 200
    assert f'value="{made.display_code}"' in page.text
    assert clerk.status(made) == "offered"  # never submitted by itself


def test_the_page_speaks_english_too(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    html = text(client.get("/counter?lang=en"))
    assert '<label for="counter-code">Citizen\'s code</label>' in html
    assert "Test Bank" in html
    location = enter(client, made.code).headers["Location"]
    html = text(client.get(location))
    assert "Confirmation code from the citizen's phone" in html
    assert "Household registration" in html


# -- refusals (acceptance 2) ------------------------------------------------------------------------


def test_a_code_used_twice_is_refused(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    assert enter(client, made.display_code).status_code == 303
    again = enter(client, made.display_code)
    assert again.status_code == 400
    message = field_error(text(again), "counter-code")
    assert "已經使用過" in message
    assert "再錯 4 次" in message


def test_an_expired_code_is_refused(desk: Desk, client: FlaskClient, login_as: LoginAs) -> None:
    made = desk.offer()
    desk.clock.advance(20 * 60 + 1)
    login_as(CLERK, "eid")
    refused = enter(client, made.code, lang="en")
    assert refused.status_code == 400
    message = field_error(text(refused), "counter-code")
    assert "This code has expired (a code lasts 20 minutes): ask the citizen for a new one." in message
    assert "4 tries left before your entry is locked for 15 minutes." in message


def test_an_unknown_and_a_cancelled_code_say_so(clerk: Desk, client: FlaskClient) -> None:
    refused = enter(client, "2345-6789", lang="en")
    assert refused.status_code == 400
    assert "This is not a citizen's code" in field_error(text(refused), "counter-code")
    made = clerk.offer()
    clerk.offer()  # a new offer cancels the citizen's earlier one
    refused = enter(client, made.code, lang="en")
    assert "The citizen cancelled this code" in field_error(text(refused), "counter-code")
    assert "3 tries left" in field_error(text(refused), "counter-code")


def test_a_wrong_confirmation_is_refused_and_a_late_one_voids_the_use(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    enter(client, made.code)
    confirmation = clerk.confirmation(made)
    refused = confirm(client, made.use.id, wrong(confirmation))
    assert refused.status_code == 400
    message = field_error(text(refused), "confirmation")
    assert "確認碼不正確" in message
    assert "再錯 4 次" in message
    assert clerk.fetcher.calls == []

    clerk.clock.advance(121)
    late = confirm(client, made.use.id, confirmation)
    assert late.status_code == 400
    html = text(late)
    assert "已超過 2 分鐘" in html
    assert 'href="/counter"' in html
    assert clerk.status(made) == "void"
    assert client.get(f"/counter/{made.use.id}/data").status_code == 410


def test_a_sixth_wrong_entry_while_the_lock_lasts_is_refused_and_says_until_when(
    clerk: Desk, client: FlaskClient
) -> None:
    made = clerk.offer()
    answers = [enter(client, f"2345-678{n}") for n in range(2, 6)]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert "再錯 1 次" in field_error(text(answers[-1]), "counter-code")
    until = taipei(clerk.clock.now() + dt.timedelta(minutes=15))
    fifth = enter(client, "2345-6786")
    assert fifth.status_code == 429
    assert f"您的輸入已鎖定至 {until}（臺灣時間）" in field_error(text(fifth), "counter-code")

    clerk.clock.advance(60)
    sixth = enter(client, made.code, lang="en")  # even the right code, while the lock lasts
    assert sixth.status_code == 429
    assert f"Too many wrong entries. Your entry is locked until {until} (Taiwan time)." in field_error(
        text(sixth), "counter-code"
    )
    assert clerk.status(made) == "offered"


def test_wrong_confirmation_codes_count_towards_the_same_lock(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    enter(client, "2345-6789")  # one wrong code first
    enter(client, made.code)
    confirmation = clerk.confirmation(made)
    answers = [confirm(client, made.use.id, wrong(confirmation), lang="en") for _ in range(3)]
    assert [a.status_code for a in answers] == [400, 400, 400]
    assert "1 try left before your entry is locked for 15 minutes." in field_error(text(answers[-1]), "confirmation")
    mistyped = confirm(client, made.use.id, "12345", lang="en")  # not a guess: it does not count
    assert mistyped.status_code == 400
    assert field_error(text(mistyped), "confirmation") == "The confirmation code is 6 digits: type it again."
    locked = confirm(client, made.use.id, wrong(confirmation))
    assert locked.status_code == 429
    until = taipei(clerk.clock.now() + dt.timedelta(minutes=15))
    assert f"Your entry is locked until {until} (Taiwan time)." in field_error(text(locked), "confirmation")
    assert 15 * 60 - 1 <= int(locked.headers["Retry-After"]) <= 15 * 60
    assert confirm(client, made.use.id, confirmation).status_code == 429  # even the right one, while it lasts


def test_the_view_ends_after_fifteen_minutes(clerk: Desk, client: FlaskClient) -> None:
    made = clerk.offer()
    enter(client, made.code)
    confirm(client, made.use.id, clerk.confirmation(made))
    clerk.clock.advance(8 * 60)
    assert client.get(f"/counter/{made.use.id}/data").status_code == 200
    clerk.clock.advance(7 * 60 + 1)
    ended = client.get(f"/counter/{made.use.id}/data")
    assert ended.status_code == 410
    assert "請客戶提供新的代碼" in text(ended)
    assert client.get(f"/counter/{made.use.id}/pdf").status_code == 410


def test_a_failed_dataset_is_named_and_gives_no_pdf(
    clerk: Desk, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = clerk.offer()
    enter(client, made.code)
    confirm(client, made.use.id, clerk.confirmation(made))
    monkeypatch.setattr(counter_views, "fetch_datasets", sandbox_fetcher({"nhi.enrolment": Outcome.TIMEOUT}))
    shown = client.get(f"/counter/{made.use.id}/data")
    assert shown.status_code == 200
    assert "提供機關未及時回應" in text(shown)
    pdf = client.get(f"/counter/{made.use.id}/pdf")
    assert pdf.status_code == 503
    assert pdf.mimetype == "text/html"
    assert "提供機關未及時回應" in text(pdf)


def test_another_clerks_use_is_not_found(clerk: Desk, client: FlaskClient, login_as: LoginAs) -> None:
    made = clerk.offer()
    enter(client, made.code)
    with clerk.app.app_context(), get_db().unit_of_work() as uow:
        other = make_citizen(uow, "F135792464", clerk.clock.now())
        grant_role(uow, other.id, "counter", BANK, clerk.clock.now())
    login_as("F135792464", "eid")
    assert client.get(f"/counter/{made.use.id}").status_code == 404


# -- who may use the counter --------------------------------------------------------------------------


def test_a_clerk_of_an_unapproved_organisation_is_refused(
    app: Flask, catalogue: None, client: FlaskClient, login_as: LoginAs, clock: FrozenClock
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow, status=PENDING)
        grant_role(uow, make_citizen(uow, CLERK, clock.now()).id, "counter", BANK, clock.now())
    login_as(CLERK, "eid")
    refused = client.get("/counter?lang=en")
    assert refused.status_code == 403
    assert "Your organisation Test Bank is not approved yet: the counter is closed." in text(refused)


def test_a_clerk_of_a_suspended_organisation_is_refused(desk: Desk, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CLERK, "eid")
    with desk.app.app_context(), get_db().unit_of_work() as uow:
        services.suspend_organisation(uow, BANK, actor="test")
    refused = client.get("/counter")
    assert refused.status_code == 403
    assert "您的機構 測試銀行 已被停權：臨櫃核驗暫停服務" in text(refused)


def test_an_account_without_the_counter_role_is_refused(desk: Desk, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CITIZEN, "eid")
    refused = client.get("/counter?lang=en")
    assert refused.status_code == 403
    assert "This account has no counter role; ask your organisation's administrator" in text(refused)


def test_a_clerk_of_several_organisations_works_for_the_first_approved_one_by_id(
    app: Flask, catalogue: None, clock: FrozenClock
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        account_id = make_citizen(uow, CLERK, clock.now()).id
        for organisation_id, number, status in (
            ("c-bank", "22099104", APPROVED),
            ("b-bank", "22099109", APPROVED),
            ("a-bank", "22099110", PENDING),
        ):
            make_organisation(uow, organisation_id, status=status, registration_number=number)
            grant_role(uow, account_id, "counter", organisation_id, clock.now())
        grant_role(uow, account_id, "rp_developer", "a-bank", clock.now())  # another role does not count
        clerk = services.counter_clerk(uow, account_id)
    assert (clerk.citizen_id, clerk.organisation_id) == (account_id, "b-bank")
    assert (clerk.organisation_name_zh, clerk.organisation_name_en) == ("測試銀行", "Test Bank")


def test_anonymous_is_sent_to_log_in(desk: Desk, client: FlaskClient) -> None:
    sent = client.get("/counter?code=2345-6789")
    assert sent.status_code == 303
    assert sent.headers["Location"].startswith("/login?")
    assert "level=high" in sent.headers["Location"]
    assert "next=/counter?code%3D2345-6789" in sent.headers["Location"]


def test_a_level_low_session_must_step_up(desk: Desk, client: FlaskClient, login_as: LoginAs) -> None:
    login_as(CLERK, "nhi_card")
    sent = client.get("/counter")
    assert sent.status_code == 303
    assert "level=high" in sent.headers["Location"]
    assert "prompt=login" in sent.headers["Location"]


def test_every_try_is_rate_limited(clerk: Desk, client: FlaskClient) -> None:
    clerk.app.config["COUNTER_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    assert [enter(client, "2345-6789").status_code for _ in range(2)] == [400, 400]
    refused = enter(client, "2345-6789")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    assert "嘗試次數太多" in text(refused)
    limiter.reset()
