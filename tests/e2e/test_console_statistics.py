"""The operator's statistics page in a real headless Chromium (issue 13, acceptance 1's last step and 5).

A third-party bank (joserfc, not our code) completes a delivery on a live sandbox platform; the
operator then sees it in the statistics, in both languages, with no serious or critical axe-core
violation, and on a 360 px phone the page never scrolls sideways.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_portal import (
    LANGS,
    PHONE_WIDTH,
    log_in,
    no_sideways_scroll,
    phone,
    serious_violations,
    with_lang,
)
from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform
from tests.integration.test_delivery_third_party import ThirdPartyBank

pytestmark = pytest.mark.e2e

OPERATOR = "L200000002"  # 趙曉雯, the sandbox operator
PAGE = "/console/operator/statistics"


@pytest.fixture(scope="module")
def platform_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_clock: ShiftedClock) -> Iterator[LivePlatform]:
    """Serve the sandbox platform, and let a third-party bank complete one delivery on it."""
    with serve_platform(tmp_path_factory.mktemp("e2e-statistics"), clock=platform_clock) as live:
        bank = ThirdPartyBank(live, platform_clock)
        delivery = bank.consented("A123456789")
        answer = bank.deliver(delivery.access_token)
        assert answer.status_code == 200, answer.text
        yield live


@pytest.fixture(scope="module")
def operator_page(platform: LivePlatform) -> Iterator[WebDriver]:
    """Give the module one browser, logged in as the operator with her eID card."""
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        log_in(driver, platform.base, OPERATOR)
        yield driver


@pytest.fixture
def page(operator_page: WebDriver) -> Iterator[WebDriver]:
    operator_page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    operator_page.get_log("browser")
    yield operator_page
    problems = [p for p in console_problems(operator_page) if "status of 40" not in p]
    assert not problems, problems


@pytest.mark.parametrize("lang", LANGS)
def test_the_delivery_shows_in_the_statistics_and_axe_finds_no_serious_violation(
    page: WebDriver, platform: LivePlatform, platform_clock: ShiftedClock, lang: str
) -> None:
    page.get(with_lang(platform.base + PAGE, lang))
    assert page.find_element(By.TAG_NAME, "html").get_attribute("lang") == ("en" if lang == "en" else "zh-Hant-TW")
    assert not page.find_elements(By.CLASS_NAME, "error-code")
    today = platform_clock.now().astimezone(ZoneInfo("Asia/Taipei")).date()
    # The bank's one transaction and its delivery, read from the tables behind the charts.
    day = page.find_element(By.CSS_SELECTOR, f"#table-per-day th[data-key='{today.isoformat()}'] + td")
    assert day.get_attribute("textContent") == "1"
    delivered = page.find_element(By.CSS_SELECTOR, "#table-outcomes th[data-key='delivered'] + td")
    assert delivered.get_attribute("textContent") == "1"
    assert page.find_elements(By.CSS_SELECTOR, "#table-latency th[data-key='p50']")
    assert len(page.find_elements(By.CSS_SELECTOR, "svg.chart[role=img]")) == 5
    found = serious_violations(page)
    assert not found, found
    # The tables open for those who read rather than look.
    page.find_element(By.CSS_SELECTOR, "details.chart-table summary").click()
    assert page.find_element(By.ID, "table-per-day").is_displayed()


@pytest.mark.parametrize("lang", LANGS)
def test_on_a_phone_the_statistics_never_scroll_sideways(page: WebDriver, platform: LivePlatform, lang: str) -> None:
    phone(page)
    page.get(with_lang(platform.base + PAGE, lang))
    for summary in page.find_elements(By.CSS_SELECTOR, "details.chart-table summary"):
        summary.click()
    scroll_width, viewport = no_sideways_scroll(page)
    assert viewport == PHONE_WIDTH
    assert scroll_width <= viewport, f"the page is {scroll_width} px wide on a {viewport} px phone"
    chart = page.find_element(By.CSS_SELECTOR, "svg.chart")
    assert chart.rect["width"] <= PHONE_WIDTH


def test_a_wrong_period_names_its_field_and_axe_finds_no_serious_violation(
    page: WebDriver, platform: LivePlatform
) -> None:
    later = dt.date(2026, 12, 2)
    page.get(f"{platform.base}{PAGE}?from={later}&to={later - dt.timedelta(days=1)}&lang=en")
    field = page.find_element(By.ID, "stats-from")
    assert field.get_attribute("aria-invalid") == "true"
    assert "must not be after" in page.find_element(By.ID, "stats-from-error").text
    found = serious_violations(page)
    assert not found, found
