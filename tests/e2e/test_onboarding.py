"""Onboarding end to end in a real headless Chromium (issue 13, acceptance 1).

On a live sandbox platform:

1. 林美華, an account with no role, applies for a new organisation from /console/rp/apply and lands in
   the console, her organisation pending;
2. the operator 趙曉雯 (a second browser) approves it in the organisations queue;
3. 林美華, now its developer, registers a client by pasting the third party's public keys, and proposes
   a service asking for the household registration;
4. the operator approves the service;
5. a third-party bank (Authlib and joserfc, not our code) completes the delivery flow for that service
   with the client of step 3: PAR, 王小明 logs in and consents, token, delivery, decrypt and verify;
6. the transaction shows in the organisation's log (the console page, and the JSON API with a client
   assertion signed by the third party's key) and in the operator's statistics.

axe-core runs on every page the way passes (in English; the per-console tests cover both languages).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from axe_selenium_python import Axe
from joserfc import jwt
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.test_portal import log_in, serious_violations
from tests.factories.chromium import console_problems, headless_chromium
from tests.factories.live import LivePlatform, ShiftedClock, serve_platform
from tests.integration.test_delivery_third_party import REDIRECT_URI, ThirdPartyBank

pytestmark = pytest.mark.e2e

APPLICANT = "B223456782"  # 林美華, no role before she applies
OPERATOR = "L200000002"  # 趙曉雯, the sandbox operator
CITIZEN = "A123456789"  # 王小明
ORGANISATION = "lin-credit"
SERVICE = f"{ORGANISATION}.mortgage"
BUSINESS_NUMBER = "24536806"  # valid (weighted check divisible by 5), and no sandbox organisation holds it
DATASET = "household.registration"


@pytest.fixture(scope="module")
def platform_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, platform_clock: ShiftedClock) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("e2e-onboarding"), clock=platform_clock) as live:
        yield live


@pytest.fixture
def applicant(platform: LivePlatform) -> Iterator[WebDriver]:
    """林美華's browser, logged in with her eID card."""
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        log_in(driver, platform.base, APPLICANT, lang="en")
        yield driver
        problems = [p for p in console_problems(driver) if "status of 40" not in p]
        assert not problems, problems


@pytest.fixture
def operator(platform: LivePlatform) -> Iterator[WebDriver]:
    """趙曉雯's browser, logged in with her eID card."""
    with headless_chromium() as driver:
        driver.set_script_timeout(60)
        log_in(driver, platform.base, OPERATOR, lang="en")
        yield driver
        problems = [p for p in console_problems(driver) if "status of 40" not in p]
        assert not problems, problems


def check(driver: WebDriver, where: str) -> None:
    """No error page, and no serious or critical axe-core violation."""
    assert not driver.find_elements(By.CLASS_NAME, "error-code"), f"{where}: an error page"
    found = serious_violations(driver)
    assert not found, f"{where}: " + Axe(driver).report(found)


def fill(driver: WebDriver, values: dict[str, str]) -> None:
    for field, value in values.items():
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)


def submit(driver: WebDriver, form: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f"{form} button[type=submit]").click()


def wait_for_status(driver: WebDriver, expected: str) -> None:
    """Wait until the page (the one a form led to: the same address, maybe) says *expected* in a status message."""

    def said(d: WebDriver) -> bool:
        try:
            return any(expected in e.text for e in d.find_elements(By.CSS_SELECTOR, "[role=status]"))
        except StaleElementReferenceException:  # the page changed under us: look again
            return False

    WebDriverWait(driver, 20, ignored_exceptions=(StaleElementReferenceException,)).until(said)


def approve(driver: WebDriver, base: str, kind: str, subject_id: str) -> None:
    """Approve an item of an operator's review queue, and see it said."""
    driver.get(f"{base}/console/operator/{kind}?lang=en")
    check(driver, f"the {kind} queue")
    form = f"form[action='/console/operator/{kind}/{subject_id}/decision']"
    driver.find_element(By.CSS_SELECTOR, f"{form} button[name=action][value=approve]").click()
    wait_for_status(driver, f"{subject_id} is approved.")
    check(driver, f"the {kind} queue after the approval")


def register_client(driver: WebDriver, base: str, jwks: dict[str, Any]) -> str:
    """Register the third party's client in the console, its public keys pasted; return its client id."""
    driver.get(f"{base}/console/rp/clients?lang=en")
    check(driver, "the clients")
    fill(driver, {"client-name": "Lin Credit loans", "client-redirect-uris": REDIRECT_URI})
    element = driver.find_element(By.ID, "client-jwks")
    driver.execute_script("arguments[0].value = arguments[1];", element, json.dumps(jwks))
    submit(driver, "form[action^='/console/rp/clients']")
    WebDriverWait(driver, 20).until(lambda d: "mdrat_" in d.page_source)
    assert driver.find_element(By.TAG_NAME, "h1").text == "The client is registered"
    check(driver, "the registered client")
    client_id = driver.find_element(By.CSS_SELECTOR, "dl.console-secret dd code").text
    assert client_id
    return client_id


def propose_service(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/console/rp/services?lang=en")
    check(driver, "the services")
    fill(
        driver,
        {
            "service-name": SERVICE.removeprefix(f"{ORGANISATION}."),
            "service-name_zh": "房屋貸款",
            "service-name_en": "Mortgage",
            "service-purpose_zh": "審核房屋貸款申請。",
            "service-purpose_en": "To assess a mortgage application.",
            "service-purpose_code": "067",
            "service-retention_days": "90",
        },
    )
    Select(driver.find_element(By.CSS_SELECTOR, f"select[name='dataset-{DATASET}']")).select_by_value("required")
    submit(driver, "form[action^='/console/rp/services']")
    wait_for_status(driver, f"The service {SERVICE} is proposed")
    check(driver, "the services after the proposal")


def assertion(bank: ThirdPartyBank) -> str:
    """A private_key_jwt client assertion (RFC 7523 §3) for the platform, signed by the bank's key."""
    now = int(time.time())
    claims = {
        "iss": bank.client_id,
        "sub": bank.client_id,
        "aud": bank.issuer,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": "ES256", "kid": "third-party-sig"}, claims, bank.sig_key)


def test_a_new_organisation_onboards_and_its_first_delivery_shows_in_the_logs(
    applicant: WebDriver, operator: WebDriver, platform: LivePlatform, platform_clock: ShiftedClock
) -> None:
    base = platform.base
    # 1. 林美華 applies for a new organisation and lands in the console, pending.
    applicant.get(f"{base}/console/rp/apply?lang=en")
    check(applicant, "the application form")
    fill(
        applicant,
        {
            "apply-name_zh": "林氏信貸",
            "apply-name_en": "Lin Credit",
            "apply-registration_number": BUSINESS_NUMBER,
            "apply-id": ORGANISATION,
            "apply-contact_name": "林美華",
            "apply-contact_email": "mydata@lin-credit.example",
            "apply-contact_phone": "+886 2 2345 6789",
        },
    )
    Select(applicant.find_element(By.ID, "apply-type")).select_by_value("bank")
    submit(applicant, "form[action='/console/rp/apply']")
    wait_for_status(applicant, f"Your application for {ORGANISATION} is recorded")
    assert applicant.current_url.split("?")[0] == f"{base}/console/rp"
    assert "pending" in applicant.find_element(By.TAG_NAME, "main").text
    check(applicant, "the console after applying")

    # 2. The operator approves the organisation.
    approve(operator, base, "organisations", ORGANISATION)

    # 3. Its developer registers the third party's client and proposes a service.
    bank = ThirdPartyBank(platform, platform_clock, register=lambda jwks: register_client(applicant, base, jwks))
    propose_service(applicant, base)

    # 4. The operator approves the service.
    approve(operator, base, "services", SERVICE)

    # 5. The third party completes the delivery flow for the new service.
    delivery = bank.consented(CITIZEN, details=[{"type": "mydata_delivery", "service": SERVICE}])
    [granted] = delivery.authorization_details
    assert (granted["service"], granted["datasets"]) == (SERVICE, [DATASET])
    answer = bank.deliver(delivery.access_token)
    assert answer.status_code == 200, answer.text
    package = bank.open(answer.text, delivery)
    assert package["service"] == SERVICE
    assert package["datasets"][DATASET]["status"] == "ok"
    assert package["datasets"][DATASET]["data"]["members"][0]["name"] == "王小明"
    case_id = delivery.id_token["txn"]

    # 6. The transaction is in the organisation's log: the console page ...
    applicant.get(f"{base}/console/rp/transactions?lang=en")
    table = applicant.find_element(By.CSS_SELECTOR, ".table-scroll table.transactions")
    assert case_id in (table.get_attribute("outerHTML") or "")
    assert CITIZEN not in applicant.page_source
    check(applicant, "the transaction log")
    # ... the JSON API, with a client assertion signed by the third party's key ...
    listed = requests.get(
        f"{base}/api/v1/organisation/transactions",
        headers={"Authorization": f"Bearer {assertion(bank)}"},
        timeout=10,
    )
    assert listed.status_code == 200, listed.text
    [transaction] = [t for t in listed.json()["transactions"] if t["case_id"] == case_id]
    assert (transaction["service_id"], transaction["status"]) == (SERVICE, "delivered")
    assert transaction["outcomes"] == {DATASET: "ok"}
    # ... and the operator's statistics: the new relying party with its one transaction.
    operator.get(f"{base}/console/operator/statistics?lang=en")
    cell = operator.find_element(By.CSS_SELECTOR, f"#table-per-rp th[data-key='{ORGANISATION}'] + td")
    assert cell.get_attribute("textContent") == "1"
    check(operator, "the statistics")
