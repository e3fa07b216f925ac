"""The usage history in a real headless Chromium: no serious axe-core violation, no sideways scrolling at 360 px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from consent import consents
from consent.ledger import LedgerEvent, ledger
from identity.models import Citizen
from mydata.clock import clock
from mydata.db import get_db
from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.consent import TERMS
from tests.factories.live import LivePlatform, serve_platform

pytestmark = pytest.mark.e2e

NATIONAL_ID = "F135792464"  # persona 3, 陳志強, who has an NHI card
LANGS = ["zh_Hant_TW", "en"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    """Serve a seeded sandbox platform whose ledger holds a delivery and a download of persona 3."""
    with serve_platform(tmp_path_factory.mktemp("history")) as platform:
        yield platform


@pytest.fixture(scope="module")
def browser(live: LivePlatform) -> Iterator[WebDriver]:
    """Log persona 3 in with the NHI card in one Chromium, then give the citizen some history."""
    with headless_chromium() as driver:
        driver.get(f"{live.base}/login")
        driver.find_element(By.ID, "nhi-card_number").send_keys("000011110003")
        driver.find_element(By.ID, "nhi-password").send_keys("Sandbox-2026")
        driver.find_element(By.ID, "nhi-submit").click()
        WebDriverWait(driver, 15).until(lambda d: d.current_url.split("?")[0].endswith("/me"))
        app = live.app
        with app.app_context(), get_db(app).unit_of_work() as uow:
            citizen = uow.session.query(Citizen).filter_by(national_id=NATIONAL_ID).one()
            now = clock().now()
            consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=now)
            consents.grant(uow, consent.id, citizen_id=citizen.id, national_id=NATIONAL_ID,
                           optional_chosen=("tax.property",), amr=["pwd"], now=now)  # fmt: skip
            uow.commit()
            claimed = consents.claim_for_delivery(uow, consent.id, national_id=NATIONAL_ID, now=now)
            consents.complete_delivery(uow, claimed, national_id=NATIONAL_ID, outcomes={"tax.income": "ok"},
                                       document_hashes={"tax.income": "ab" * 32}, now=now)  # fmt: skip
            ledger(uow).append(LedgerEvent(event="download.completed", actor="citizen", subject_national_id=NATIONAL_ID,
                                           datasets=("labor.insurance",), consent_id="download-e2e"))  # fmt: skip
            uow.commit()
        yield driver


def serious(driver: WebDriver) -> list[str]:
    """Return axe-core's serious and critical violations on the current page."""
    axe = Axe(driver)
    axe.inject()
    found = axe.run()
    return [
        f"{v['id']}: {v['help']} ({[n['target'] for n in v['nodes']]})"
        for v in found["violations"]
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("width", [1280, 360])
def test_history_and_entry_pages_are_accessible_and_fit_a_phone(
    browser: WebDriver, live: LivePlatform, lang: str, width: int, tmp_path: Path
) -> None:
    browser.set_window_size(width, 900)
    browser.get_log("browser")
    browser.get(f"{live.base}/me/history?lang={lang}")
    links = browser.find_elements(By.CSS_SELECTOR, ".history-list a[href^='/me/history/']")
    assert len(links) >= 3
    entry = next(link.get_attribute("href") for link in links if "receipt" not in (link.get_attribute("href") or ""))
    pages = [f"{live.base}/me/history?lang={lang}", f"{live.base}/me/history?lang={lang}&since=soon", entry]
    for url in pages:
        browser.get(url)
        assert serious(browser) == [], url
        scroll, view = browser.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= view, f"{url} scrolls sideways at {width} px"
    assert browser.find_elements(By.CSS_SELECTOR, ".verdict-passed"), "the entry verified"
    assert console_problems(browser) == []
