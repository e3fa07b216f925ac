"""The operator's statistics page (/console/operator/statistics, issue 13 acceptance 4).

The acceptance test seeds transactions through the consent services, computes the expected figures
with its own small code from GET /ledger/entries only, and compares them with the page's tables.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
from collections import Counter
from html.parser import HTMLParser
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from providers.services import list_providers, provider_client
from tests.factories.identity import LoginAs, make_citizen, text
from tests.factories.transactions import BANK_CLIENT, CITIZENS, SCHOOL_CLIENT, seed_transactions

pytestmark = pytest.mark.db

OPERATOR = "L200000002"
PAGE = "/console/operator/statistics"
TAIWAN = dt.timezone(dt.timedelta(hours=8))
#: What the test knows of the clients it registered: the ledger names clients, the page organisations.
ORGANISATION_OF = {BANK_CLIENT: "sandbox-bank", SCHOOL_CLIENT: "sandbox-school"}


@pytest.fixture
def operator(app: Flask, clock: FrozenClock, login_as: LoginAs) -> None:
    """Log the test client in as the operator (eID, level high)."""
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, OPERATOR, clock.now())
        grant_role(uow, citizen.id, "operator", "platform", clock.now())
    login_as(OPERATOR)


@pytest.fixture
def first_day(app: Flask, clock: FrozenClock) -> dt.date:
    """Seed the transactions (tests/factories/transactions.py); return their first day in Taiwan."""
    with app.app_context(), get_db().unit_of_work() as uow:
        key_store(uow).rotate()
        return seed_transactions(uow, clock)


class Tables(HTMLParser):
    """Collect each table's rows by the table's id: {row key: the row's cells' text}."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, list[str]]] = {}
        self._table: str | None = None
        self._key: str | None = None
        self._cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id")
            self.tables[self._table or ""] = {}
        elif tag == "tr":
            self._key, self._cells = None, []
        elif tag in ("th", "td"):
            self._cell = []
            if found.get("data-key"):
                self._key = found["data-key"]

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self._cells.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._table is not None and self._key is not None:
            self.tables[self._table][self._key] = self._cells
        elif tag == "table":
            self._table = None


def tables(page: str) -> dict[str, dict[str, list[str]]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def counts(table: dict[str, list[str]]) -> dict[str, int]:
    return {key: int(cells[-1]) for key, cells in table.items()}


# -- the independent computation: the test's own code, from the public ledger API only -------------


def ledger_entries(client: FlaskClient) -> list[dict[str, Any]]:
    """Read every entry from GET /ledger/entries, 1,000 at a time, checking each against its leaf input."""
    found: list[dict[str, Any]] = []
    while True:
        answer = client.get(f"/ledger/entries?start={len(found)}&end={len(found) + 999}")
        if answer.status_code == 400:  # past the last entry
            return found
        assert answer.status_code == 200
        assert answer.json is not None
        batch = answer.json["entries"]
        for item in batch:
            assert json.loads(base64.b64decode(item["leaf_input"])) == item["entry"]
            found.append(item["entry"])
        if len(batch) < 1000:
            return found


def percentile(values: list[float], p: int) -> float:
    ranked = sorted(values)
    return ranked[max(1, math.ceil(p * len(ranked) / 100)) - 1]


def expected_figures(entries: list[dict[str, Any]], first: dt.date, last: dt.date) -> dict[str, Any]:
    """Compute the statistics page's figures from ledger entries alone."""

    def when(entry: dict[str, Any]) -> dt.datetime:
        return dt.datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%f%z")

    start = dt.datetime(first.year, first.month, first.day, tzinfo=TAIWAN)
    end = dt.datetime(last.year, last.month, last.day, tzinfo=TAIWAN) + dt.timedelta(days=1)
    inside = [e for e in entries if start <= when(e) < end]
    asked = [e for e in inside if e["event"] == "consent.requested"]
    days = Counter(when(e).astimezone(TAIWAN).date().isoformat() for e in asked)
    every_day = [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
    names = {"delivery.completed": "delivered", "consent.denied": "denied", "consent.expired": "expired",
             "consent.revoked": "revoked", "delivery.failed": "provider_failures"}  # fmt: skip
    outcomes = dict.fromkeys(names.values(), 0)
    for entry in inside:
        if entry["event"] in names:
            outcomes[names[entry["event"]]] += 1
    granted = {e["consent_id"]: when(e) for e in entries if e["event"] == "consent.granted"}
    latencies = [
        (when(e) - granted[e["consent_id"]]).total_seconds() for e in inside if e["event"] == "delivery.completed"
    ]
    return {
        "transactions": len(asked),
        "per_day": {day: days[day] for day in every_day},
        "per_dataset": dict(Counter(d for e in asked for d in e["datasets"])),
        "per_rp": dict(Counter(ORGANISATION_OF[e["actor"]] for e in asked)),
        "outcomes": outcomes,
        "latency": {f"p{p}": f"{percentile(latencies, p):.1f}" for p in (50, 95, 99)},
    }


def test_the_page_shows_the_numbers_the_ledger_gives(client: FlaskClient, first_day: dt.date, operator: None) -> None:
    last = first_day + dt.timedelta(days=1)
    first = first_day - dt.timedelta(days=5)
    expected = expected_figures(ledger_entries(client), first, last)
    # The seeded set has something in every figure.
    assert expected["transactions"] == 7
    assert all(expected["outcomes"].values())

    answer = client.get(f"{PAGE}?from={first}&to={last}&lang=en")
    assert answer.status_code == 200
    page = text(answer)
    shown = tables(page)
    assert f"From {first} to {last}: 7 transactions." in page
    assert counts(shown["table-per-day"]) == expected["per_day"]
    assert counts(shown["table-per-dataset"]) == expected["per_dataset"]
    assert counts(shown["table-per-rp"]) == expected["per_rp"]
    assert counts(shown["table-outcomes"]) == expected["outcomes"]
    assert {key: cells[-1] for key, cells in shown["table-latency"].items()} == expected["latency"]
    # The provider failures by kind come from the consents (the ledger says only that a delivery failed).
    assert counts(shown["table-failures"]) == {"timeout": 1, "unavailable": 1}


def test_the_page_shows_no_personal_data(client: FlaskClient, first_day: dt.date, operator: None) -> None:
    page = text(client.get(f"{PAGE}?from={first_day}&to={first_day}&lang=en"))
    assert "transactions." in page
    for national_id in CITIZENS:
        assert national_id not in page
    assert "王小明" not in page


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Statistics", "Transactions per day", "Transactions per relying party", "Delivery latency",
                "Provider health", "Provider failures by kind", "Table: Transactions per dataset"]),
        ("zh_Hant_TW", ["統計", "每日交易", "各服務提供者的交易", "傳送延遲", "資料提供系統狀態", "資料提供失敗的種類",
                        "表格：各資料集的交易"]),
    ],
)  # fmt: skip
def test_the_page_speaks_both_languages(
    client: FlaskClient, first_day: dt.date, operator: None, lang: str, words: list[str]
) -> None:
    page = text(client.get(f"{PAGE}?from={first_day}&to={first_day}&lang={lang}"))
    for word in words:
        assert word in page
    # The charts are SVG, each named by its title and description.
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg"') == 5
    assert 'aria-labelledby="chart-per-day-title chart-per-day-desc"' in page


def test_by_default_the_page_covers_the_last_30_days(client: FlaskClient, clock: FrozenClock, operator: None) -> None:
    today = clock.now().astimezone(TAIWAN).date()
    page = text(client.get(f"{PAGE}?lang=en"))
    assert f'name="to" value="{today}"' in page
    assert f'name="from" value="{today - dt.timedelta(days=29)}"' in page
    assert len(tables(page)["table-per-day"]) == 30


@pytest.mark.parametrize("lang", ["en", "zh_Hant_TW"])
def test_an_empty_period_says_so(client: FlaskClient, operator: None, lang: str) -> None:
    page = text(client.get(f"{PAGE}?from=2020-01-01&to=2020-01-31&lang={lang}"))
    empty = "No transactions in this period." if lang == "en" else "這段期間沒有交易。"
    assert empty in page
    assert "table-latency" not in page


@pytest.mark.parametrize(
    ("query", "field", "en", "zh"),
    [
        ("from=2026-13-01&to=2026-12-01", "from", "Enter a day as YYYY-MM-DD", "請以 YYYY-MM-DD 輸入日期"),
        ("from=2026-12-01&to=yesterday", "to", "Enter a day as YYYY-MM-DD", "請以 YYYY-MM-DD 輸入日期"),
        ("from=2026-12-02&to=2026-12-01", "from", "must not be after the last day", "第一天不能晚於最後一天"),
        ("from=2024-01-01&to=2026-12-01", "from", "at most 366 days", "最長 366 天"),
    ],
)
def test_a_wrong_period_is_refused_with_the_field_at_fault(
    client: FlaskClient, operator: None, query: str, field: str, en: str, zh: str
) -> None:
    for lang, words in (("en", en), ("zh_Hant_TW", zh)):
        answer = client.get(f"{PAGE}?{query}&lang={lang}")
        assert answer.status_code == 400
        page = text(answer)
        assert words in page
        assert f'id="stats-{field}-error"' in page
        assert f'aria-describedby="stats-{field}-error" aria-invalid="true"' in page
        assert "table-per-day" not in page


def test_provider_health_and_circuit_breaker_state(
    app: Flask, client: FlaskClient, operator: None, catalogue: None
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        providers = [p.id for p in list_providers(uow)]
    assert providers
    breaker = provider_client(app).breakers[providers[0]]
    for _ in range(breaker.threshold):
        breaker.admit()
        breaker.record(success=False)
    page = text(client.get(f"{PAGE}?lang=en"))
    rows = tables(page)["table-providers"]
    assert len(rows) == len(providers)
    assert 'data-circuit="open"' in page
    assert "Open: no calls for now" in page
    assert "Closed: calls go through" in page
    # The catalogue's agencies are not served in this test: their health checks fail, and say so.
    assert "Failing: unreachable" in page
