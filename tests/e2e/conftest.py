"""What every browser test shares: one headless Chromium per module, and a fresh visitor per test.

A module defines its own ``platform`` (a live sandbox, tests/factories/live.py). The ``page`` fixture
gives each test the module's browser with no cookies at desktop width, and fails the test if the
browser's console logged a problem (a CSP violation, a script error, a failed load); a module whose
tests ask for 4xx answers on purpose lists the lines to let pass in ``TOLERATED_CONSOLE_PROBLEMS``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.live import LivePlatform


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        yield driver


@pytest.fixture
def page(browser: WebDriver, platform: LivePlatform, request: pytest.FixtureRequest) -> Iterator[WebDriver]:
    """Give each test a new visitor (no cookies) at desktop width, and no console problems after."""
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    browser.get(f"{platform.base}/healthz")
    browser.delete_all_cookies()
    browser.get_log("browser")
    yield browser
    tolerated = getattr(request.module, "TOLERATED_CONSOLE_PROBLEMS", ())
    problems = [p for p in console_problems(browser) if not any(t in p for t in tolerated)]
    assert not problems, problems
