"""The relying-party console in a real headless Chromium (issue 13, acceptance 5 and the consoles' rules).

* An account with no role applies as an organisation from /console/rp/apply, and lands in the console.
* The sandbox bank's developer registers a client by pasting its JWKS, and sees its token once.
* axe-core finds no serious or critical violation on each page of the console, with and without
  errors on its forms, in both languages; at 360 px no page scrolls sideways.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.test_portal import LANGS, log_in, no_sideways_scroll, phone, serious_violations, wait_for_path
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform
from tests.factories.oauth import TestRelyingParty

pytestmark = pytest.mark.e2e
#: Console lines the page fixture lets pass: the 4xx answers these tests ask for on purpose.
TOLERATED_CONSOLE_PROBLEMS = ("status of 40",)

DEVELOPER = "A123456789"  # 王小明, rp_developer of sandbox-bank
APPLICANT = "B223456782"  # 林美華, no role
SECOND_APPLICANT = "H120000004"  # 黃建國, no role


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("e2e-console-rp"), clock=ShiftedClock()) as live:
        yield live


def fill(driver: WebDriver, values: dict[str, str]) -> None:
    for field, value in values.items():
        element = driver.find_element(By.ID, field)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def paste(driver: WebDriver, field: str, value: str) -> None:
    """Put a long text in a field at once (typing a JWKS key by key takes long)."""
    element = driver.find_element(By.ID, field)
    driver.execute_script("arguments[0].value = arguments[1];", element, value)


def submit(driver: WebDriver, form: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]").click()


# -- the way through -------------------------------------------------------------------------------


def test_an_account_applies_and_lands_in_the_console(page: WebDriver, platform: LivePlatform) -> None:
    log_in(page, platform.base, SECOND_APPLICANT, lang="en")
    page.get(f"{platform.base}/console/rp/apply?lang=en")
    fill(
        page,
        {
            "apply-name_zh": "黃家銀行",
            "apply-name_en": "Huang Bank",
            "apply-registration_number": "53212534",
            "apply-id": "huang-bank",
            "apply-contact_name": "黃建國",
            "apply-contact_email": "mydata@huang.example",
            "apply-contact_phone": "+886 2 2345 6789",
        },
    )
    submit(page, "form[action='/console/rp/apply']")
    wait_for_path(page, "/console/rp")
    assert "huang-bank" in page.find_element(By.CSS_SELECTOR, "[role=status]").text
    assert "pending" in page.find_element(By.TAG_NAME, "main").text


def test_the_developer_registers_a_client_and_sees_its_token_once(page: WebDriver, platform: LivePlatform) -> None:
    log_in(page, platform.base, DEVELOPER, lang="en")
    page.get(f"{platform.base}/console/rp/clients?lang=en")
    rp = TestRelyingParty(client_id="", redirect_uri="https://bank.example/cb")
    fill(page, {"client-name": "Browser bank", "client-redirect-uris": "https://bank.example/cb"})
    paste(page, "client-jwks", json.dumps(rp.jwks()))
    submit(page, "form[action^='/console/rp/clients']")
    WebDriverWait(page, 20).until(lambda d: "mdrat_" in d.page_source)
    assert page.find_element(By.TAG_NAME, "h1").text == "The client is registered"


# -- acceptance 5: axe-core, both languages; 360 px -----------------------------------------------------


def _first_client(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/clients")
    driver.find_element(By.CSS_SELECTOR, "a[href^='/console/rp/clients/']").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "client-jwks"))


def _refused_client(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/clients")
    fill(driver, {"client-name": "x", "client-redirect-uris": "http://bank.example/cb"})
    submit(driver, "form[action^='/console/rp/clients']")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "client-error"))


def _new_registration_token(driver: WebDriver, base: str) -> None:
    _first_client(driver, base)
    submit(driver, "form[action$='/token']")
    WebDriverWait(driver, 20).until(lambda d: "mdrat_" in d.page_source)


def _refused_service(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/services")
    fill(driver, {"service-name": "Bad Name!", "service-retention_days": "0"})
    submit(driver, "form[action^='/console/rp/services']")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".error-summary"))


def _issued_token(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/initial-access-token")
    submit(driver, "form[action^='/console/rp/initial-access-token']")
    WebDriverWait(driver, 20).until(lambda d: "mdiat_" in d.page_source)


def _refused_application(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/apply")
    fill(driver, {"apply-registration_number": "12345678"})
    submit(driver, "form[action='/console/rp/apply']")
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".error-summary"))


@dataclass(frozen=True)
class ConsolePage:
    """A page of the console: who sees it, and how (a path, or steps that end on it)."""

    name: str
    national_id: str
    path: str = ""
    reach: Callable[[WebDriver, str], None] | None = None


PAGES = [
    ConsolePage("overview", DEVELOPER, "/console/rp"),
    ConsolePage("clients", DEVELOPER, "/console/rp/clients"),
    ConsolePage("a client", DEVELOPER, reach=_first_client),
    ConsolePage("a refused client", DEVELOPER, reach=_refused_client),
    ConsolePage("a new registration access token", DEVELOPER, reach=_new_registration_token),
    ConsolePage("services", DEVELOPER, "/console/rp/services"),
    ConsolePage("a refused service", DEVELOPER, reach=_refused_service),
    ConsolePage("initial access token", DEVELOPER, "/console/rp/initial-access-token"),
    ConsolePage("an initial access token issued", DEVELOPER, reach=_issued_token),
    ConsolePage("apply", APPLICANT, "/console/rp/apply"),
    ConsolePage("a refused application", APPLICANT, reach=_refused_application),
]


@pytest.mark.parametrize("console_page", PAGES, ids=[p.name for p in PAGES])
def test_every_console_page_passes_axe_and_fits_a_phone(
    page: WebDriver, platform: LivePlatform, console_page: ConsolePage
) -> None:
    log_in(page, platform.base, console_page.national_id)
    for lang in LANGS:
        for width in ("desktop", "phone"):
            if width == "phone":
                phone(page)
            else:
                page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            page.get(f"{platform.base}/?lang={lang}")  # the choice is kept in a cookie
            if console_page.reach is not None:
                console_page.reach(page, platform.base)
            else:
                page.get(platform.base + console_page.path)
            html_lang = page.find_element(By.TAG_NAME, "html").get_attribute("lang")
            assert html_lang == ("en" if lang == "en" else "zh-Hant-TW")
            assert not page.find_elements(By.CLASS_NAME, "error-code"), f"{console_page.name}: an error page"
            if width == "desktop":
                found = serious_violations(page)
                assert not found, Axe(page).report(found)
            else:
                scroll_width, viewport = no_sideways_scroll(page)
                assert scroll_width <= viewport, (
                    f"{console_page.name} ({lang}): {scroll_width} px on a {viewport} px phone"
                )
