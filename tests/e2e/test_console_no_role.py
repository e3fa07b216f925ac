"""An account with no staff role at the consoles, in a real headless Chromium (issue 13): the console
list says so and links the organisation's application, and a console refuses it with the same link;
axe-core finds no serious or critical violation on either page in both languages, and neither scrolls
sideways on a 360 px phone."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.e2e.test_portal import (  # the portal's fixtures and steps
    LANGS,
    log_in,
    no_sideways_scroll,
    phone,
    platform,
    platform_clock,
    serious_violations,
    with_lang,
)
from tests.factories.live import LivePlatform

__all__ = ["platform", "platform_clock"]

pytestmark = pytest.mark.e2e
#: Console lines the page fixture lets pass: the 4xx answers these tests ask for on purpose.
TOLERATED_CONSOLE_PROBLEMS = ("status of 40",)

NO_ROLE = "B223456782"  # 林美華: a citizen, no staff role
PAGES = ["/console", "/console/operator"]


def test_an_account_with_no_role_is_shown_the_way_to_apply(page: WebDriver, platform: LivePlatform) -> None:
    log_in(page, platform.base, NO_ROLE)
    for lang in LANGS:
        for path in PAGES:
            page.get(with_lang(platform.base + path, lang))
            apply = page.find_element(By.CSS_SELECTOR, ".console-apply a[href='/console/rp/apply']")
            assert apply.text
            found = serious_violations(page)
            assert not found, f"{path} ({lang}): {found}"
    page.find_element(By.CSS_SELECTOR, ".console-apply a").click()
    assert page.current_url.split("?")[0].endswith("/console/rp/apply")
    assert page.find_elements(By.CSS_SELECTOR, "form")


@pytest.mark.parametrize("lang", LANGS)
def test_neither_page_scrolls_sideways_on_a_phone(page: WebDriver, platform: LivePlatform, lang: str) -> None:
    log_in(page, platform.base, NO_ROLE)
    phone(page)
    for path in PAGES:
        page.get(with_lang(platform.base + path, lang))
        scroll_width, viewport = no_sideways_scroll(page)
        assert scroll_width <= viewport, f"{path}: the page is {scroll_width} px wide on a {viewport} px phone"
