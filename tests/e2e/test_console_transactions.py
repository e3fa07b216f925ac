"""The relying-party console's transaction log in a real headless Chromium (issue 13, acceptance 5).

王小明, the sandbox bank's developer, logs in with his eID card and reads the bank's log on a 360 px
phone in both languages: with rows, on a later page, and with a filter error. axe-core finds no
serious or critical violation, and the page never scrolls sideways (the table scrolls in its region).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from consent import consents, counter
from consent.downloads import Citizen
from identity.services import find_citizen
from mydata.clock import clock
from mydata.db import get_db
from tests.e2e.test_portal import LANGS, log_in, no_sideways_scroll, phone, serious_violations, with_lang
from tests.factories.chromium import headless_chromium
from tests.factories.consent import TERMS
from tests.factories.live import LivePlatform, serve_platform

pytestmark = pytest.mark.e2e

DEVELOPER = "A123456789"  # 王小明, rp_developer of sandbox-bank
CITIZEN = "B223456782"  # 林美華
CLERK = "E224680132"  # 張雅婷, the sandbox bank's counter clerk
TITLE = {"zh_Hant_TW": "交易紀錄", "en": "Transaction log"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    """Serve the sandbox platform."""
    with serve_platform(tmp_path_factory.mktemp("e2e-console-transactions")) as live:
        yield live


@pytest.fixture(scope="module")
def cases(platform: LivePlatform) -> dict[str, str]:
    """The sandbox bank's cases, made through the services: a delivered consent, a request, a counter use."""
    with platform.app.app_context(), get_db().unit_of_work() as uow:
        citizen = find_citizen(uow, CITIZEN)
        clerk = find_citizen(uow, CLERK)
        assert citizen is not None
        assert clerk is not None
        now = clock().now()
        delivered = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=now)
        consents.grant(uow, delivered.id, citizen_id=citizen.id, national_id=CITIZEN, optional_chosen=(),
                       amr=("sc", "pin", "hwk"), now=now)  # fmt: skip
        consents.complete_delivery(uow, delivered, national_id=CITIZEN, document_hashes={}, now=now,
                                   outcomes={"household.registration": "ok", "tax.income": "timeout"})  # fmt: skip
        requested = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=now)
        uow.commit()
        entries = [e for e in counter.catalogue(uow).datasets if e.id == "household.registration"]
        made = counter.offer(uow, citizen=Citizen(citizen.id, CITIZEN, citizen.name, "high"), entries=entries, now=now)
        uow.commit()
        desk = counter.Clerk(clerk.id, "sandbox-bank", "沙盒銀行", "Sandbox Bank")
        counter.claim(uow, clerk=desk, code=made.code, now=now)
        uow.commit()
        return {"delivered": delivered.id, "requested": requested.id, "counter": made.use.id}


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


def check_page(driver: WebDriver, state: str) -> None:
    width, viewport = no_sideways_scroll(driver)
    assert width <= viewport, f"{state}: the page scrolls sideways ({width} > {viewport})"
    found = serious_violations(driver)
    assert not found, f"{state}: " + Axe(driver).report(found)


@pytest.mark.parametrize("lang", LANGS)
def test_the_log_reads_on_a_phone_in_both_languages(
    page: WebDriver, platform: LivePlatform, cases: dict[str, str], lang: str
) -> None:
    log_in(page, platform.base, DEVELOPER, lang)
    phone(page)
    page.get(with_lang(f"{platform.base}/console/rp/transactions", lang))
    assert TITLE[lang] in page.find_element(By.TAG_NAME, "h1").text
    table = page.find_element(By.CSS_SELECTOR, ".table-scroll table.transactions").get_attribute("outerHTML") or ""
    for case_id in cases.values():
        assert case_id in table
    assert CITIZEN not in page.page_source
    assert "林美華" not in page.page_source
    check_page(page, "log")

    page.get(with_lang(f"{platform.base}/console/rp/transactions?page_size=1", lang))
    page.find_element(By.CSS_SELECTOR, "nav.pagination a[rel=next]").click()
    assert "cursor=" in page.current_url
    check_page(page, "second page")

    page.get(with_lang(f"{platform.base}/console/rp/transactions?since=2026-12-01&until=2026-11-01", lang))
    assert page.find_element(By.ID, "filter-until").get_attribute("aria-invalid") == "true"
    assert page.find_elements(By.CSS_SELECTOR, ".error-summary[role=alert]")
    check_page(page, "filter error")
