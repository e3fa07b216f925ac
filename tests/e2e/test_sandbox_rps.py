"""A real headless Chromium applies with MyData at the sandbox bank and school (acceptance 1 of issue 6).

From the relying party's start page, through the platform's login and consent screen, back to the
relying party's result page with the verified data; and the refusal. The platform, its sandbox
agencies and the two relying parties are served by one werkzeug server on a migrated, seeded SQLite
database, as `mydata demo` serves them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.live import EID_PIN, serve_platform

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the sandbox platform with its agencies and relying parties; return its base URL."""
    with serve_platform(tmp_path_factory.mktemp("e2e-rps")) as live:
        yield live.base


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Start one headless Chromium for the module."""
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver, server: str) -> Iterator[WebDriver]:
    """Give each test a browser with no cookies left (a new citizen), and no console problems after."""
    browser.get(f"{server}/healthz")
    browser.delete_all_cookies()
    browser.get_log("browser")
    yield browser
    assert not console_problems(browser)


def wait_for_path(driver: WebDriver, path: str, timeout: float = 20) -> None:
    WebDriverWait(driver, timeout).until(lambda d: d.current_url.split("?")[0].endswith(path))


def fill(driver: WebDriver, field_id: str, value: str) -> None:
    element = driver.find_element(By.ID, field_id)
    element.clear()
    element.send_keys(value)


def apply_with_mydata(driver: WebDriver, start_page: str) -> None:
    """Press the relying party's button; MyData asks the citizen to log in (in the authorization's own page)."""
    driver.get(start_page)
    driver.find_element(By.ID, "apply-with-mydata").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "eid-national_id"))
    assert "/oauth/interaction/" in driver.current_url


def log_in_with_eid(driver: WebDriver, national_id: str) -> None:
    fill(driver, "eid-national_id", national_id)
    fill(driver, "eid-pin", EID_PIN)
    driver.find_element(By.ID, "eid-submit").click()


def consent(driver: WebDriver, decision: str) -> None:
    """Answer the consent screen."""
    button = WebDriverWait(driver, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, f"button[name=decision][value={decision}]")
    )
    button.click()


def text_of(driver: WebDriver, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def test_bank_credit_card_application_with_eid(page: WebDriver, server: str) -> None:
    apply_with_mydata(page, f"{server}/sandbox/bank/")
    log_in_with_eid(page, "A123456789")
    consent(page, "approve")

    wait_for_path(page, "/sandbox/bank/application")
    assert text_of(page, "h1") == "已收到您的資料"
    summary = text_of(page, "#summary")
    assert "王小明" in summary
    assert "臺北市大安區龍門里12鄰復興南路二段151巷8號5樓" in summary
    assert "NT$ 884,615" in summary  # the yearly gross income of tax year 2025
    members = text_of(page, "#household-members")
    assert "李淑芬" in members
    assert "王宥翔" in members
    assert "信義雲端科技股份有限公司" in text_of(page, "#income-items")
    periods = text_of(page, "#insured-periods")
    assert "宏遠電腦股份有限公司" in periods
    assert "2018-10-01 – 迄今" in periods
    assert "內政部戶政司" in text_of(page, "#dataset-household\\.registration")
    checks = page.find_elements(By.CSS_SELECTOR, "#verified li")
    # ID token, login, JWE, the platform's JWS, and one agency signature per dataset.
    assert len(checks) == 7
    assert "ECDH-ES+A256KW + A256GCM" in text_of(page, "#verified")


def test_school_tuition_waiver_with_mobile_id_in_english(page: WebDriver, server: str) -> None:
    page.get(f"{server}/sandbox/school/?lang=en")
    assert text_of(page, "h1") == "Tuition waiver for low-income households"
    apply_with_mydata(page, f"{server}/sandbox/school/")
    fill(page, "mobile-national_id", "B223456782")
    page.find_element(By.ID, "mobile-submit").click()
    wait_for_path(page, "/login/mobile/wait")
    # The parent approves on the phone (the sandbox simulator holds the enrolled device key).
    requests.post(f"{server}/sandbox/mobile-id/approve", json={"national_id": "B223456782"}, timeout=10)
    optional = WebDriverWait(page, 20).until(
        lambda d: d.find_element(By.CSS_SELECTOR, "input[name=datasets][value='tax.property']")
    )
    optional.click()  # the parent adds the optional property data
    consent(page, "approve")

    wait_for_path(page, "/sandbox/school/application")
    assert text_of(page, "h1") == "We have received your data"
    summary = text_of(page, "#summary")
    assert "林美華" in summary
    assert "林芷晴" in summary
    assert "NT$ 234,000" in summary
    assert "NT$ 0" in summary  # no property: the optional dataset was granted and says so
    assert "received" in text_of(page, "#dataset-tax\\.property h2")
    assert "none" in text_of(page, "#property-lands")


def test_a_refusal_comes_back_to_the_bank_as_access_denied(page: WebDriver, server: str) -> None:
    apply_with_mydata(page, f"{server}/sandbox/bank/")
    log_in_with_eid(page, "A123456789")
    consent(page, "deny")

    wait_for_path(page, "/sandbox/bank/application")
    assert text_of(page, "h1") == "您未同意提供資料"
    assert page.find_element(By.CSS_SELECTOR, "#denied a").get_attribute("href").endswith("/sandbox/bank/")
