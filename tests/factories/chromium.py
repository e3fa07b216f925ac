"""A headless Debian Chromium for end-to-end tests (never a downloaded browser)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: What a Content-Security-Policy violation or a failing script writes to the browser's console.
CONSOLE_PROBLEMS = ("Content Security Policy", "Refused to", "Uncaught")


@contextmanager
def headless_chromium() -> Iterator[WebDriver]:
    """Start one headless Chromium with a fresh profile; quit it and remove the profile after."""
    profile = tempfile.mkdtemp(prefix="mydata-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def console_problems(driver: WebDriver) -> list[str]:
    """Return (and clear) the console messages that show a CSP violation or a script error."""
    return [e["message"] for e in driver.get_log("browser") if any(s in e["message"] for s in CONSOLE_PROBLEMS)]
