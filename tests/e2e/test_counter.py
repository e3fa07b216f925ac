"""Counter verification end to end, with two headless Chromium browsers (issue 12, acceptance 1, 3 and 4).

The citizen (王小明, on a 360 px phone) picks datasets and gets a code; the clerk (張雅婷, counter of
沙盒銀行, on a desktop, by keyboard alone) types it, asks for the confirmation code the citizen's page
shows without a reload, types it, sees the data as tables and takes the PDF, which verifies at
/verify/<code>. The citizen's page then says it was shown to 沙盒銀行, and the use is in their
history, verifiable like every entry. axe-core checks every page of both sides in both languages.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import requests
from axe_selenium_python import Axe
from pypdf import PdfReader
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.test_portal import LANGS, log_in, no_sideways_scroll, phone, serious_violations, with_lang
from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.live import Browser, LivePlatform, form_fields, serve_platform

pytestmark = pytest.mark.e2e

CITIZEN = "A123456789"
CLERK = "E224680132"
DATASETS = ("household.registration", "nhi.enrolment")
SHOWN = {"zh_Hant_TW": "已出示給沙盒銀行", "en": "Shown to Sandbox Bank"}
HISTORY = {"zh_Hant_TW": "臨櫃人員查看了您的資料", "en": "A counter clerk looked at your data"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("e2e-counter")) as live:
        yield live


@pytest.fixture(scope="module")
def citizen_browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def clerk_browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        yield driver


def fresh(driver: WebDriver, platform: LivePlatform) -> WebDriver:
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    driver.get(f"{platform.base}/healthz")
    driver.delete_all_cookies()
    driver.get_log("browser")
    return driver


def accessible(driver: WebDriver, what: str) -> None:
    """No serious or critical axe-core violation, and nothing wider than the viewport."""
    found = serious_violations(driver)
    assert not found, f"{what}: " + Axe(driver).report(found)
    width, viewport = no_sideways_scroll(driver)
    assert width <= viewport, f"{what}: {width} px wide on a {viewport} px viewport"


def typed(driver: WebDriver, text: str) -> None:
    """Type into the focused field and press Enter (the clerk's keyboard, no mouse); wait for the next page."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.switch_to.active_element.send_keys(text, Keys.ENTER)
    WebDriverWait(driver, 20).until(expected_conditions.staleness_of(old))


def focused(driver: WebDriver, element_id: str) -> None:
    """The page put the focus in *element_id* (autofocus), so the clerk can type at once."""
    WebDriverWait(driver, 5).until(lambda d: d.switch_to.active_element.get_attribute("id") == element_id)


def verification_code(pages: list[str]) -> str:
    """Return the verification code a PDF prints on every page (other numbers may look like one)."""
    shape = r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}"
    on_every_page = set.intersection(*(set(re.findall(shape, page)) for page in pages))
    assert len(on_every_page) == 1, (on_every_page, pages[0][:500])
    return on_every_page.pop()


def cookies_of(driver: WebDriver) -> requests.Session:
    http = requests.Session()
    for cookie in driver.get_cookies():
        http.cookies.set(cookie["name"], cookie["value"])
    return http


@pytest.mark.parametrize("lang", LANGS)
def test_a_citizen_shows_a_clerk_their_data_at_the_counter(
    citizen_browser: WebDriver, clerk_browser: WebDriver, platform: LivePlatform, lang: str
) -> None:
    citizen, clerk = fresh(citizen_browser, platform), fresh(clerk_browser, platform)

    # The citizen, on a phone, picks two datasets and gets the code.
    log_in(citizen, platform.base, CITIZEN, lang)
    phone(citizen)
    citizen.get(with_lang(f"{platform.base}/me/counter", lang))
    accessible(citizen, "the citizen's picker")
    for dataset in DATASETS:
        citizen.find_element(By.CSS_SELECTOR, f"form.counter-picker input[name=datasets][value='{dataset}']").click()
    citizen.find_element(By.CSS_SELECTOR, "form.counter-picker button[type=submit]").click()
    WebDriverWait(citizen, 20).until(lambda d: d.find_elements(By.ID, "counter-code"))
    code = citizen.find_element(By.ID, "counter-code").text.strip()
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", code), code
    assert citizen.find_element(By.CSS_SELECTOR, "#counter-qr").get_attribute("src").startswith("data:image/png")
    accessible(citizen, "the citizen's code")

    # The clerk logs in with their eID card and types the code: the focus is already in the field.
    log_in(clerk, platform.base, CLERK, lang)
    clerk.get(with_lang(f"{platform.base}/counter", lang))
    focused(clerk, "counter-code")
    accessible(clerk, "the clerk's entry")
    typed(clerk, code.lower().replace("-", ""))
    WebDriverWait(clerk, 20).until(lambda d: d.find_elements(By.ID, "confirmation"))
    focused(clerk, "confirmation")
    offered = clerk.find_element(By.CSS_SELECTOR, ".counter-datasets").text
    assert ("戶籍" if lang != "en" else "Household") in offered
    assert "王小明" not in clerk.page_source  # the datasets, not the data, before the confirmation
    accessible(clerk, "the clerk's confirmation step")

    # The citizen's page shows the confirmation code without a reload.
    WebDriverWait(citizen, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#counter-status .counter-state[data-state=claimed]")
    )
    confirmation = citizen.find_element(By.CSS_SELECTOR, "#counter-status #confirmation").text.strip()
    assert re.fullmatch(r"[0-9]{6}", confirmation.replace(" ", "")), confirmation
    accessible(citizen, "the citizen's confirmation code")

    # The clerk types it: the data as tables, with the citizen's name, and the PDF.
    typed(clerk, confirmation.replace(" ", ""))
    WebDriverWait(clerk, 30).until(lambda d: d.current_url.split("?")[0].endswith("/data"))
    assert "王小明" in clerk.find_element(By.CSS_SELECTOR, ".counter-citizen").text
    assert clerk.find_elements(By.CSS_SELECTOR, "main table")
    accessible(clerk, "the clerk's data")
    pdf_link = clerk.find_element(By.CSS_SELECTOR, "a[href$='/pdf']").get_attribute("href")
    document = cookies_of(clerk).get(pdf_link, timeout=30)
    assert document.status_code == 200, document.text[:300]
    assert document.content.startswith(b"%PDF")
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(document.content)).pages]
    assert "王小明" in "\n".join(pages)
    printed = verification_code(pages)
    verifier = Browser(platform.base)  # anyone else, not logged in: the file matches its record
    fields = form_fields(verifier.get(f"/verify/{printed}").text, f"/verify/{printed}")
    checked = verifier.http.post(
        f"{platform.base}/verify/{printed}",
        data={"csrf_token": fields["csrf_token"]},
        files={"file": ("counter.pdf", document.content, "application/pdf")},
        timeout=30,
    )
    assert checked.status_code == 200
    assert "verify-match" in checked.text

    # The citizen's page says to whom it was shown, without a reload.
    WebDriverWait(citizen, 20).until(lambda d: SHOWN[lang] in d.find_element(By.ID, "counter-status").text)
    accessible(citizen, "the citizen's page after the showing")

    # The use is in the citizen's history, and its entry verifies.
    citizen.get(with_lang(f"{platform.base}/me/history", lang))
    assert HISTORY[lang] in citizen.find_element(By.TAG_NAME, "main").text
    row = next(r for r in citizen.find_elements(By.CSS_SELECTOR, "main tr, main li") if HISTORY[lang] in r.text)
    row.find_element(By.CSS_SELECTOR, "a[href^='/me/history/']:not([download])").click()
    WebDriverWait(citizen, 20).until(lambda d: "/me/history/" in d.current_url)
    assert "counter:sandbox-bank" in citizen.page_source
    assert "FAILED" not in citizen.find_element(By.TAG_NAME, "main").text

    for driver in (citizen, clerk):
        assert not [p for p in console_problems(driver) if "status of 40" not in p]


def test_the_code_and_the_lock_refuse_with_clear_messages(clerk_browser: WebDriver, platform: LivePlatform) -> None:
    clerk = fresh(clerk_browser, platform)
    log_in(clerk, platform.base, CLERK, "en")
    clerk.get(with_lang(f"{platform.base}/counter", "en"))
    for _ in range(4):
        typed(clerk, "ZZZZ-ZZZZ")
        error = clerk.find_element(By.ID, "counter-code-error").text
        assert "tries left" in error or "try left" in error
        focused(clerk, "counter-code")
    accessible(clerk, "a refused code")
    typed(clerk, "ZZZZ-ZZZZ")
    assert "locked until" in clerk.find_element(By.TAG_NAME, "main").text
    accessible(clerk, "a locked entry")
