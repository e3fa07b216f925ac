"""The API reference at /docs in a real headless Chromium (issue 13, "API reference at /docs").

* Swagger UI renders /openapi.json under the platform's CSP: the operations show (the delivery API
  among them) and the console reports no CSP violation or script error.
* Everything the page loads comes from the platform itself.
* axe-core finds no serious or critical violation, in both languages, operations open or closed.
* A keyboard opens an operation; a 360 px phone does not scroll sideways.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from axe_selenium_python import Axe
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.test_portal import BLOCKING, LANGS, PHONE_WIDTH, no_sideways_scroll, phone
from tests.factories.live import LivePlatform, serve_platform

pytestmark = pytest.mark.e2e

DELIVERY = ".opblock-summary-path[data-path='/api/v1/delivery']"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("e2e-api-reference")) as live:
        yield live


def open_reference(driver: WebDriver, base: str, lang: str = "en") -> WebElement:
    """Load /docs and wait until Swagger UI has rendered the delivery operation; return its path element."""
    driver.get(f"{base}/docs?lang={lang}")
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, DELIVERY))
    return driver.find_element(By.CSS_SELECTOR, DELIVERY)


def operation_of(path_element: WebElement) -> WebElement:
    return path_element.find_element(By.XPATH, "./ancestor::div[contains(@class, 'opblock ')][1]")


@pytest.mark.parametrize("lang", LANGS)
def test_the_reference_renders_every_operation_under_the_platform_policy(
    page: WebDriver, platform: LivePlatform, lang: str
) -> None:
    open_reference(page, platform.base, lang)
    document = platform.app.test_client().get("/openapi.json").json
    # Swagger UI shows an operation under each of its tags.
    expected = sum(len(op["tags"]) for operations in document["paths"].values() for op in operations.values())
    assert len(page.find_elements(By.CSS_SELECTOR, ".opblock")) == expected
    assert page.find_element(By.TAG_NAME, "h1").text == ("API reference" if lang == "en" else "API 參考文件")
    # Every file, script and stylesheet the page fetched came from the platform.
    fetched = page.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched
    assert [url for url in fetched if not url.startswith(platform.base + "/")] == []
    assert f"{platform.base}/openapi.json" in fetched


def test_an_operation_shows_its_example_and_its_errors(page: WebDriver, platform: LivePlatform) -> None:
    path = open_reference(page, platform.base)
    operation = operation_of(path)
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(page, 10).until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".responses-table"))
    statuses = {cell.text for cell in operation.find_elements(By.CSS_SELECTOR, ".response-col_status")}
    assert {"200", "401", "403", "410", "503"} <= statuses
    assert "application/jose" in operation.text
    # No "Try it out" (js/api-reference.js says why): the page sends no request.
    assert not page.find_elements(By.CSS_SELECTOR, ".try-out__btn, .execute")


def test_the_keyboard_opens_an_operation(page: WebDriver, platform: LivePlatform) -> None:
    path = open_reference(page, platform.base)
    operation = operation_of(path)
    control = operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control")
    body = page.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(200):  # Tab on until the delivery operation's control has the focus
        if page.switch_to.active_element == control:
            break
        page.switch_to.active_element.send_keys(Keys.TAB)
    assert page.switch_to.active_element == control
    assert control.value_of_css_property("outline-style") != "none"  # the focus can be seen
    control.send_keys(Keys.ENTER)
    WebDriverWait(page, 10).until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".responses-table"))
    assert control.get_attribute("aria-expanded") == "true"


def serious_violations(driver: WebDriver) -> list[dict[str, object]]:
    axe = Axe(driver)
    axe.inject()
    results = axe.run()
    return [v for v in results["violations"] if v["impact"] in BLOCKING]


@pytest.mark.parametrize("lang", LANGS)
def test_axe_core_finds_no_serious_violation(page: WebDriver, platform: LivePlatform, lang: str) -> None:
    path = open_reference(page, platform.base, lang)
    assert page.find_element(By.TAG_NAME, "html").get_attribute("lang") == ("en" if lang == "en" else "zh-Hant-TW")
    found = serious_violations(page)
    assert not found, Axe(page).report(found)
    # Opened, an operation shows its parameters, bodies, examples and responses: check those too.
    operation = operation_of(path)
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    WebDriverWait(page, 10).until(lambda d: operation.find_elements(By.CSS_SELECTOR, ".responses-table"))
    page.find_element(By.CSS_SELECTOR, ".opblock-summary-path[data-path='/api/v1/agencies']").click()
    found = serious_violations(page)
    assert not found, Axe(page).report(found)


@pytest.mark.parametrize("lang", LANGS)
def test_a_phone_never_scrolls_sideways(page: WebDriver, platform: LivePlatform, lang: str) -> None:
    phone(page)
    path = open_reference(page, platform.base, lang)
    assert no_sideways_scroll(page)[1] == PHONE_WIDTH
    scroll_width, viewport = no_sideways_scroll(page)
    assert scroll_width <= viewport, f"the list is {scroll_width} px wide on a {viewport} px phone"
    operation_of(path).find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    page.find_element(By.CSS_SELECTOR, ".opblock-summary-path[data-path='/api/v1/agencies']").click()
    WebDriverWait(page, 10).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".responses-table")) >= 2)
    scroll_width, viewport = no_sideways_scroll(page)
    assert scroll_width <= viewport, f"an open operation is {scroll_width} px wide on a {viewport} px phone"
