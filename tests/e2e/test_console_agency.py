"""The agency console and the operator's schema review in a real headless Chromium (issue 13).

* An agency officer (陳志強, moi-household) registers a dataset and proposes a new schema version
  through the forms; the operator (趙曉雯) approves the version on /console/operator/schemas, and the
  catalogue publishes it (acceptance 2, the schema half; the dataset half is in the unit tests).
* axe-core finds no serious or critical violation on each page, in both languages (acceptance 5).
* At 360 px width, no page scrolls sideways.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.test_portal import LANGS, log_in, no_sideways_scroll, phone, serious_violations, with_lang
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform

pytestmark = pytest.mark.e2e
#: Console lines the page fixture lets pass: the 4xx answers these tests ask for on purpose.
TOLERATED_CONSOLE_PROBLEMS = ("status of 40",)

OFFICER = "F135792464"  # 陳志強, agency_officer of moi-household
OPERATOR = "L200000002"  # 趙曉雯
DATASET = "household.registration"

AGENCY_PAGES = [
    "/console/agency",
    "/console/agency/providers/new",
    "/console/agency/providers/moi-household",
    "/console/agency/datasets/new",
    f"/console/agency/datasets/{DATASET}",
    "/console/agency/health",
    "/console/agency/usage",
]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("e2e-agency"), clock=ShiftedClock()) as live:
        yield live


def check(driver: WebDriver, url: str) -> None:
    """Open *url* in both languages: no error page, no serious axe violation, no sideways scroll at 360 px."""
    for lang in LANGS:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.get(with_lang(url, lang))
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == (
            "en" if lang == "en" else "zh-Hant-TW"
        )
        assert not driver.find_elements(By.CLASS_NAME, "error-code"), f"{url}: an error page"
        found = serious_violations(driver)
        assert not found, Axe(driver).report(found)
        phone(driver)
        driver.get(with_lang(url, lang))
        width, viewport = no_sideways_scroll(driver)
        assert width <= viewport, f"{url} ({lang}) scrolls sideways at 360 px: {width} > {viewport}"


def fill(driver: WebDriver, values: dict[str, str]) -> None:
    for name, value in values.items():
        element = driver.find_element(By.ID, f"field-{name}")
        element.clear()
        element.send_keys(value)


def test_the_agency_consoles_pages_are_accessible_in_both_languages_and_fit_a_phone(
    page: WebDriver, platform: LivePlatform
) -> None:
    log_in(page, platform.base, OFFICER)
    for path in AGENCY_PAGES:
        check(page, platform.base + path)


def test_health_calls_the_agencys_own_providers(page: WebDriver, platform: LivePlatform) -> None:
    log_in(page, platform.base, OFFICER, lang="en")
    page.get(f"{platform.base}/console/agency/health?lang=en")
    rows = [row.text for row in page.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert len(rows) == 1, rows
    assert "moi-household" in rows[0]
    assert "healthy" in rows[0]
    assert "not healthy" not in rows[0]


def test_a_form_with_errors_is_accessible(page: WebDriver, platform: LivePlatform) -> None:
    log_in(page, platform.base, OFFICER, lang="en")
    page.get(f"{platform.base}/console/agency/datasets/new?lang=en")
    fill(page, {"id": "Not An Id", "schema": "{"})
    page.find_element(By.CSS_SELECTOR, "form.console-form button[type=submit]").click()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".error-summary"))
    assert page.find_element(By.ID, "field-schema").get_attribute("aria-invalid") == "true"
    found = serious_violations(page)
    assert not found, Axe(page).report(found)


def test_a_schema_version_proposed_by_the_officer_is_published_once_the_operator_approves_it(
    page: WebDriver, platform: LivePlatform
) -> None:
    published = requests.get(f"{platform.base}/api/v1/catalogue/datasets/{DATASET}/schema", timeout=30).json()
    schema = published["schema"]
    schema.setdefault("properties", {})["remarks"] = {"type": "string"}
    new_schema = json.dumps(schema, ensure_ascii=False)

    log_in(page, platform.base, OFFICER, lang="en")
    page.get(f"{platform.base}/console/agency/datasets/{DATASET}?lang=en")
    textarea = page.find_element(By.ID, "field-schema")
    textarea.clear()
    page.execute_script("arguments[0].value = arguments[1];", textarea, new_schema)
    page.find_element(By.CSS_SELECTOR, f"form[action='/console/agency/datasets/{DATASET}/schema'] button").click()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=status]"))
    assert "waits for an operator's approval" in page.find_element(By.CSS_SELECTOR, "[role=status]").text
    still = requests.get(f"{platform.base}/api/v1/catalogue/datasets/{DATASET}/schema", timeout=30).json()
    assert still["schema_version"] == published["schema_version"]

    page.delete_all_cookies()
    log_in(page, platform.base, OPERATOR, lang="en")
    check(page, f"{platform.base}/console/operator/schemas")
    page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    page.get(f"{platform.base}/console/operator/schemas?lang=en")
    subject = f"{DATASET}@{published['schema_version'] + 1}"
    page.find_element(By.XPATH, f"//button[contains(., 'Approve version {subject}')]").click()
    WebDriverWait(page, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[role=status]"))
    assert f"{subject} is published" in page.find_element(By.CSS_SELECTOR, "[role=status]").text
    after = requests.get(f"{platform.base}/api/v1/catalogue/datasets/{DATASET}/schema", timeout=30).json()
    assert after["schema_version"] == published["schema_version"] + 1
    assert after["schema"]["properties"]["remarks"] == {"type": "string"}
