"""The organisation's transaction log (issue 13): the service, the JSON API with a client assertion, the console page.

The data is made through the real services: consents through consent.consents (requested, granted,
delivered, denied), counter uses through consent.counter (offered, claimed by the bank's clerk,
confirmed). A second bank has a consent and a client of its own: it must never show in the first's log.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient

from consent import consents, counter
from consent.consents import ServiceTerms
from consent.downloads import Citizen
from identity.oauth.clients import register_client
from identity.oauth.server import pairwise_subject
from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db, unit_of_work
from mydata.limits import limiter
from relying_parties import transactions
from relying_parties.interfaces import InvalidInput
from relying_parties.transactions import TransactionFilter, organisation_transactions
from tests.factories.identity import LoginAs, make_citizen, text
from tests.factories.oauth import TestRelyingParty, rsa_key
from tests.unit.relying_parties.conftest import BANK, make_organisation, make_service

pytestmark = pytest.mark.db

OTHER_BANK = "other-bank"
CITIZEN = "B223456782"  # 林美華
CLERK = "E224680132"  # 張雅婷, the bank's counter clerk
DEVELOPER = "A123456789"  # 王小明, the sandbox bank's developer
PATH = "/api/v1/organisation/transactions"
START = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)  # 10:00 in Taiwan


def terms(organisation_id: str = BANK, name: str = "loans") -> ServiceTerms:
    return ServiceTerms(
        organisation_id=organisation_id,
        organisation_name="測試銀行",
        service_id=f"{organisation_id}.{name}",
        purpose="審核房屋貸款申請。",
        retention="P1Y",
        level="substantial",
        datasets_required=("household.registration", "tax.income"),
        datasets_optional=("tax.property",),
    )


@dataclass
class Log:
    """What the fixture made: the cases by name, the clients, and the times."""

    cases: dict[str, str]
    bank_rp: TestRelyingParty
    other_rp: TestRelyingParty
    citizen_id: str


@pytest.fixture
def log(app: Flask, clock: FrozenClock, catalogue: None) -> Log:
    """Two banks; the test bank has four consents (one a day) and a counter use, the other bank one consent."""
    bank_rp = TestRelyingParty(client_id="test-bank-web", redirect_uri="https://bank.example/cb")
    other_rp = TestRelyingParty(client_id="other-bank-web", redirect_uri="https://other.example/cb")
    cases: dict[str, str] = {}
    # The request's own unit of work, as the views use: pairwise subjects read the platform's secret through it.
    with app.test_request_context():
        uow = unit_of_work()
        make_organisation(uow)
        make_service(uow)
        make_service(uow, name="cards")
        make_organisation(uow, OTHER_BANK, registration_number="04595257")
        make_service(uow, OTHER_BANK, "mortgages")
        for rp, organisation_id in ((bank_rp, BANK), (other_rp, OTHER_BANK)):
            register_client(uow, clock, name="網路銀行", jwks=rp.jwks(), redirect_uris=[rp.redirect_uri], sandbox=True,
                            organisation_id=organisation_id, client_id=rp.client_id)  # fmt: skip
        citizen = make_citizen(uow, CITIZEN, START)
        clerk = make_citizen(uow, CLERK, START)
        grant_role(uow, clerk.id, "counter", BANK, START)

        def consent(day: int, organisation_id: str = BANK, name: str = "loans", client_id: str = bank_rp.client_id):
            return consents.record_request(
                uow, client_id=client_id, terms=terms(organisation_id, name), now=START + dt.timedelta(days=day)
            )

        delivered = consent(0)
        consents.grant(uow, delivered.id, citizen_id=citizen.id, national_id=CITIZEN, optional_chosen=(),
                       amr=("sc",), now=START)  # fmt: skip
        consents.complete_delivery(uow, delivered, national_id=CITIZEN, document_hashes={},
                                   outcomes={"household.registration": "ok", "tax.income": "timeout"},
                                   now=START + dt.timedelta(minutes=1))  # fmt: skip
        denied = consent(1)
        consents.deny(uow, denied.id, citizen_id=citizen.id, national_id=CITIZEN, now=START + dt.timedelta(days=1))
        cards = consent(2, name="cards")
        requested = consent(3)
        other = consent(1, OTHER_BANK, "mortgages", other_rp.client_id)
        pairwise_subject(CITIZEN, BANK)  # the platform's pairwise secret exists once a client got a `sub`
        uow.commit()
        entries = [e for e in counter.catalogue(uow).datasets if e.id in ("household.registration",)]
        at_desk = START + dt.timedelta(days=2, hours=1)
        made = counter.offer(uow, citizen=Citizen(citizen.id, CITIZEN, citizen.name, "high"), entries=entries,
                             now=at_desk)  # fmt: skip
        counter.claim(uow, clerk=counter.Clerk(clerk.id, BANK, "測試銀行", "Test Bank"), code=made.code, now=at_desk)
        uow.commit()
        cases = {"delivered": delivered.id, "denied": denied.id, "cards": cards.id, "requested": requested.id,
                 "other": other.id, "counter": made.use.id}  # fmt: skip
        return Log(cases, bank_rp, other_rp, citizen.id)


@pytest.fixture
def uow(app: Flask) -> Iterator[UnitOfWork]:
    with app.app_context():
        yield unit_of_work()


# -- the service ------------------------------------------------------------------------------------


def test_the_log_holds_the_organisations_consents_and_counter_uses_newest_first(log: Log, uow: UnitOfWork) -> None:
    page = organisation_transactions(uow, BANK)
    ids = [t.case_id for t in page.transactions]
    c = log.cases
    assert ids == [c["requested"], c["counter"], c["cards"], c["denied"], c["delivered"]]
    assert page.next_cursor is None
    by_id = {t.case_id: t for t in page.transactions}
    delivered = by_id[c["delivered"]]
    assert (delivered.kind, delivered.status, delivered.service_id) == ("consent", "delivered", f"{BANK}.loans")
    assert delivered.outcomes == {"household.registration": "ok", "tax.income": "timeout"}
    assert delivered.datasets == ("household.registration", "tax.income")
    # The `sub` the bank's client got in its ID token: pairwise for the organisation.
    assert delivered.subject == pairwise_subject(CITIZEN, BANK)
    assert by_id[c["requested"]].subject is None  # nobody answered yet
    use = by_id[c["counter"]]
    assert (use.kind, use.status, use.service_id, use.datasets) == (
        "counter",
        "claimed",
        None,
        ("household.registration",),
    )


def test_another_organisations_cases_never_show_and_no_personal_data_does(log: Log, uow: UnitOfWork) -> None:
    mine = organisation_transactions(uow, BANK).transactions
    assert log.cases["other"] not in {t.case_id for t in mine}
    theirs = organisation_transactions(uow, OTHER_BANK).transactions
    assert [t.case_id for t in theirs] == [log.cases["other"]]
    shown = repr(mine)
    for personal in (CITIZEN, "林美華", log.citizen_id, CLERK, "張雅婷"):
        assert personal not in shown
    # The other bank's client knows the same citizen by another `sub`.
    assert pairwise_subject(CITIZEN, OTHER_BANK) not in shown


def test_filters_by_service_status_kind_and_taiwan_days(log: Log, uow: UnitOfWork) -> None:
    c = log.cases

    def ids(**wanted: object) -> list[str]:
        return [t.case_id for t in organisation_transactions(uow, BANK, TransactionFilter(**wanted)).transactions]  # type: ignore[arg-type]

    assert ids(service_id=f"{BANK}.cards") == [c["cards"]]
    assert ids(status="denied") == [c["denied"]]
    assert ids(status="claimed") == [c["counter"]]
    assert ids(kind="counter") == [c["counter"]]
    assert ids(kind="consent") == [c["requested"], c["cards"], c["denied"], c["delivered"]]
    day = START.astimezone(transactions.TAIWAN).date()
    assert ids(since=day + dt.timedelta(days=1), until=day + dt.timedelta(days=2)) == [
        c["counter"],
        c["cards"],
        c["denied"],
    ]
    assert ids(until=day) == [c["delivered"]]
    for wrong in ({"status": "lost"}, {"kind": "letter"}, {"since": day, "until": day - dt.timedelta(days=1)}):
        with pytest.raises(InvalidInput):
            ids(**wrong)


def test_pages_follow_one_another_without_repeats(log: Log, uow: UnitOfWork) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        page = organisation_transactions(uow, BANK, cursor=cursor, page_size=2)
        seen += [t.case_id for t in page.transactions]
        cursor = page.next_cursor
    assert cursor is None
    assert seen == [t.case_id for t in organisation_transactions(uow, BANK).transactions]
    with pytest.raises(InvalidInput):
        organisation_transactions(uow, BANK, cursor="not-a-cursor")
    with pytest.raises(InvalidInput):
        organisation_transactions(uow, BANK, page_size=transactions.MAX_PAGE_SIZE + 1)


# -- the JSON API ------------------------------------------------------------------------------------


def bearer(assertion: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {assertion}"}


def test_the_api_answers_the_clients_organisation_with_a_client_assertion(
    log: Log, client: FlaskClient, issuer: str
) -> None:
    answer = client.get(f"{PATH}?page_size=2", headers=bearer(log.bank_rp.assertion(issuer)))
    assert answer.status_code == 200, answer.json
    body = answer.json
    assert [t["case_id"] for t in body["transactions"]] == [log.cases["requested"], log.cases["counter"]]
    assert body["next_cursor"]
    rest = client.get(
        f"{PATH}?page_size=10&cursor={body['next_cursor']}", headers=bearer(log.bank_rp.assertion(issuer))
    )
    assert [t["case_id"] for t in rest.json["transactions"]] == [
        log.cases["cards"], log.cases["denied"], log.cases["delivered"]
    ]  # fmt: skip
    delivered = rest.json["transactions"][-1]
    assert delivered["subject"] == pairwise_subject_of(client, CITIZEN, BANK)
    assert delivered["outcomes"] == {"household.registration": "ok", "tax.income": "timeout"}
    assert dt.datetime.fromisoformat(delivered["time"]) == START
    filtered = client.get(f"{PATH}?status=denied", headers=bearer(log.bank_rp.assertion(issuer)))
    assert [t["case_id"] for t in filtered.json["transactions"]] == [log.cases["denied"]]
    assert CITIZEN not in answer.get_data(as_text=True) + rest.get_data(as_text=True)


def pairwise_subject_of(client: FlaskClient, national_id: str, sector: str) -> str:
    with client.application.app_context():
        return pairwise_subject(national_id, sector)


def test_another_organisations_client_gets_its_own_log_only(log: Log, client: FlaskClient, issuer: str) -> None:
    answer = client.get(PATH, headers=bearer(log.other_rp.assertion(issuer)))
    assert answer.status_code == 200
    assert [t["case_id"] for t in answer.json["transactions"]] == [log.cases["other"]]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "Send `Authorization: Bearer <client assertion>`"),
        ("not bearer", "Send `Authorization: Bearer <client assertion>`"),
        ("wrong signature", "does not verify (bad_signature)"),
        ("wrong aud", "`aud` must be the issuer identifier as a single string"),
        ("array aud", "`aud` must be the issuer identifier as a single string"),
        ("expired", "expired"),
        ("too long", "longer than 8192 bytes"),
        ("unknown", "does not exist"),
    ],
)
def test_a_bad_assertion_is_refused_with_invalid_client(
    log: Log, client: FlaskClient, issuer: str, case: str, reason: str
) -> None:
    rp = log.bank_rp
    headers = {
        "missing": {},
        "not bearer": {"Authorization": f"DPoP {rp.assertion(issuer)}"},
        "wrong signature": bearer(rp.assertion(issuer, key=TestRelyingParty("", "").signing_key)),
        "wrong aud": bearer(rp.assertion(issuer + "/oauth/token")),
        "array aud": bearer(rp.assertion([issuer])),  # type: ignore[arg-type]
        "expired": bearer(rp.assertion(issuer, now=int(START.timestamp()) - 3600)),
        "too long": bearer("a" * 9000),
        "unknown": bearer(TestRelyingParty("nobody", "").assertion(issuer)),
    }[case]
    answer = client.get(PATH, headers=headers)
    assert answer.status_code == 401
    assert answer.json["error"] == "invalid_client"
    assert reason in answer.json["error_description"]
    assert "transactions" not in answer.json
    # RFC 6750 §3.1: an error code in the challenge only when a credential was presented.
    presented = case not in ("missing", "not bearer")
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="mydata-organisation-transactions"' + (
        ', error="invalid_token"' if presented else ""
    )


def test_an_rs256_assertion_is_refused(log: Log, client: FlaskClient, issuer: str) -> None:
    answer = client.get(PATH, headers=bearer(log.bank_rp.assertion(issuer, alg="RS256", key=rsa_key())))
    assert answer.status_code == 401
    assert "ES256 or PS256" in answer.json["error_description"]


def test_an_assertion_is_used_once(log: Log, client: FlaskClient, issuer: str) -> None:
    assertion = log.bank_rp.assertion(issuer)
    assert client.get(PATH, headers=bearer(assertion)).status_code == 200
    replayed = client.get(PATH, headers=bearer(assertion))
    assert replayed.status_code == 401
    assert replayed.json["error"] == "invalid_client"
    assert "used before" in replayed.json["error_description"]


@pytest.mark.parametrize("query", ["page_size=0", "page_size=101", "cursor=%%%", "status=lost", "since=yesterday"])
def test_bad_query_parameters_are_a_400_naming_the_field(
    log: Log, client: FlaskClient, issuer: str, query: str
) -> None:
    answer = client.get(f"{PATH}?{query}", headers=bearer(log.bank_rp.assertion(issuer)))
    assert answer.status_code == 400
    assert answer.json["error"] == "invalid_request"
    assert query.split("=")[0] in answer.json["fields"]


def test_the_api_is_rate_limited(log: Log, app: Flask, client: FlaskClient, issuer: str) -> None:
    app.config["TRANSACTIONS_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    statuses = [client.get(PATH, headers=bearer(log.bank_rp.assertion(issuer))).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_api_is_documented_with_its_errors(client: FlaskClient) -> None:
    operation = client.get("/openapi.json").json["paths"][PATH]["get"]
    assert set(operation["responses"]) >= {"200", "400", "401", "429"}
    assert operation["security"] == [{"clientAssertion": []}]
    names = {p["name"] for p in operation["parameters"]}
    assert {"since", "until", "service", "status", "kind", "page_size", "cursor"} <= names


# -- the console page --------------------------------------------------------------------------------


@pytest.fixture
def developer(app: Flask, clock: FrozenClock, login_as: LoginAs, log: Log) -> None:
    """王小明, a developer of the test bank, logged in at level high."""
    with app.app_context(), get_db().unit_of_work() as uow:
        account = make_citizen(uow, DEVELOPER, clock.now())
        grant_role(uow, account.id, "rp_developer", BANK, clock.now())
    login_as(DEVELOPER)


@pytest.mark.parametrize(("lang", "words"), [("en", "Transaction log"), ("zh_Hant_TW", "交易紀錄")])
def test_the_page_shows_the_log_in_both_languages(
    log: Log, developer: None, client: FlaskClient, lang: str, words: str
) -> None:
    answer = client.get(f"/console/rp/transactions?lang={lang}")
    assert answer.status_code == 200
    page = text(answer)
    assert words in page
    for name in ("requested", "counter", "cards", "denied", "delivered"):
        assert log.cases[name] in page
    assert log.cases["other"] not in page
    assert CITIZEN not in page
    assert "林美華" not in page
    assert 'class="table-scroll"' in answer.get_data(as_text=True)


def test_the_page_filters_and_pages(log: Log, developer: None, client: FlaskClient) -> None:
    page = text(client.get(f"/console/rp/transactions?lang=en&service={BANK}.cards"))
    assert log.cases["cards"] in page
    assert log.cases["delivered"] not in page
    first = client.get("/console/rp/transactions?lang=en&page_size=2").get_data(as_text=True)
    assert log.cases["delivered"] not in first
    assert "cursor=" in first
    refused = client.get("/console/rp/transactions?lang=en&since=2026-12-01&until=2026-11-01")
    assert refused.status_code == 400
    assert 'aria-invalid="true"' in refused.get_data(as_text=True)


def test_the_csv_export_has_a_bom_and_no_formula(log: Log, developer: None, client: FlaskClient) -> None:
    answer = client.get("/console/rp/transactions?format=csv")
    assert answer.status_code == 200
    assert answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    raw = answer.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 1 + 5
    case_column = rows[0].index("case_id")
    assert {row[case_column] for row in rows[1:]} == {
        log.cases[n] for n in ("requested", "counter", "cards", "denied", "delivered")
    }
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert json.dumps(rows).count(CITIZEN) == 0


def test_a_member_of_two_organisations_picks_one(
    app: Flask, clock: FrozenClock, log: Log, developer: None, client: FlaskClient
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        account = make_citizen(uow, DEVELOPER, clock.now())
        grant_role(uow, account.id, "rp_developer", OTHER_BANK, clock.now())
    page = client.get("/console/rp/transactions?lang=en").get_data(as_text=True)
    assert f'value="{OTHER_BANK}"' in page
    other = text(client.get(f"/console/rp/transactions?lang=en&organisation={OTHER_BANK}"))
    assert log.cases["other"] in other
    assert log.cases["delivered"] not in other
    refused = client.get("/console/rp/transactions?lang=en&organisation=someone-else")
    assert refused.status_code == 403
