"""The citizen's counter page in a real headless Chromium (issue 12): what its script does.

On a 360 px phone, in both languages: the countdown runs, the confirmation code appears without a
reload once a clerk enters the code, and the "shown to" line once the clerk confirmed; polling then
stops and the Cancel button goes. axe-core finds no serious or critical violation in any state.
The clerk acts through the services here; the two browsers together are tests/e2e/test_counter.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from consent import counter
from consent.counter import Clerk
from identity.services import find_citizen
from mydata.clock import clock
from mydata.db import get_db
from providers.services import fetch_datasets
from tests.e2e.test_portal import LANGS, log_in, no_sideways_scroll, phone, serious_violations, with_lang
from tests.factories.live import LivePlatform, serve_platform

pytestmark = pytest.mark.e2e

CITIZEN = "A123456789"
CLERK = "E224680132"
SHOWN = {"zh_Hant_TW": "已出示給沙盒銀行", "en": "Shown to Sandbox Bank"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    """Serve the sandbox platform with its agencies."""
    with serve_platform(tmp_path_factory.mktemp("e2e-counter-citizen")) as live:
        yield live


def clerk_of(platform: LivePlatform) -> Clerk:
    with platform.app.app_context(), get_db().unit_of_work() as uow:
        account = find_citizen(uow, CLERK)
        assert account is not None
        return Clerk(account.id, "sandbox-bank", "沙盒銀行", "Sandbox Bank")


def check_page(driver: WebDriver, state: str) -> None:
    width, viewport = no_sideways_scroll(driver)
    assert width <= viewport, f"{state}: the page scrolls sideways ({width} > {viewport})"
    found = serious_violations(driver)
    assert not found, f"{state}: " + Axe(driver).report(found)


@pytest.mark.parametrize("lang", LANGS)
def test_the_page_follows_the_use_without_a_reload(page: WebDriver, platform: LivePlatform, lang: str) -> None:
    log_in(page, platform.base, CITIZEN, lang)
    phone(page)
    page.get(with_lang(f"{platform.base}/me/counter", lang))
    check_page(page, "picker")
    page.find_element(By.CSS_SELECTOR, "form.counter-picker input[value='nhi.enrolment']").click()
    page.find_element(By.CSS_SELECTOR, "form.counter-picker button[type=submit]").click()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.ID, "counter-code"))
    use_id = page.current_url.split("?")[0].rsplit("/", 1)[1]
    code = page.find_element(By.ID, "counter-code").text
    countdown = page.find_element(By.ID, "counter-countdown")
    first = countdown.text
    assert first  # the script fills it in
    WebDriverWait(page, 10).until(lambda _d: countdown.text != first)  # it counts down
    check_page(page, "offered")

    clerk = clerk_of(platform)
    with platform.app.app_context(), get_db().unit_of_work() as uow:
        counter.claim(uow, clerk=clerk, code=code, now=clock().now())
        uow.commit()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.ID, "confirmation"))
    confirmation = page.find_element(By.ID, "confirmation").text
    assert len(confirmation) == 6
    assert confirmation.isdigit()
    assert not page.find_element(By.ID, "counter-code-panel").is_displayed()  # the code was used
    check_page(page, "claimed")

    with platform.app.app_context(), get_db().unit_of_work() as uow:
        counter.confirm(uow, clerk=clerk, use_id=use_id, confirmation=confirmation, now=clock().now())
        uow.commit()
        counter.fetch_for_clerk(uow, clerk=clerk, use_id=use_id, fetcher=fetch_datasets, now=clock().now())
        uow.commit()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#counter-status [data-state=shown]"))
    assert SHOWN[lang] in page.find_element(By.ID, "counter-status").text
    assert not page.find_element(By.CSS_SELECTOR, "form.counter-cancel").is_displayed()
    check_page(page, "shown")
