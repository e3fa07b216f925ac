"""The sandbox bank and school handle what an integrator must handle, over real HTTP (DESIGN §5.3, §6.2).

A citizen's browser (plain HTTP, tests.factories.live.Browser) applies at the relying party mounted
in the platform's process; the platform, its agencies and the relying parties are real apps on one
server. The happy paths in a real browser are in tests/e2e/test_sandbox_rps.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests

from relying_parties.sandbox.webapp import RelyingParty
from tests.factories.live import Browser, LivePlatform, ShiftedClock, form_fields, serve_platform


@pytest.fixture(scope="module")
def clock() -> ShiftedClock:
    """Return the clock of the platform, its agencies and the relying parties: one time for all."""
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, clock: ShiftedClock) -> Iterator[LivePlatform]:
    """Serve the sandbox platform with its agencies and relying parties."""
    folder = tmp_path_factory.mktemp("rps")
    with serve_platform(folder, overrides={"provider_timeout_seconds": 1}, clock=clock) as live:
        for slug in ("bank", "school"):
            relying_party(live, slug).clock = clock.time
        yield live


@contextmanager
def later(clock: ShiftedClock, seconds: float) -> Iterator[None]:
    """Let *seconds* pass for everyone (the citizen waits), then come back."""
    clock.offset = seconds
    try:
        yield
    finally:
        clock.offset = 0


def relying_party(platform: LivePlatform, slug: str) -> RelyingParty:
    """Return the state of a mounted sandbox relying party."""
    return platform.app.extensions["relying_parties.sandbox_apps"][slug].extensions["sandbox_rp"]  # type: ignore[no-any-return]


def text(page: requests.Response) -> str:
    """Return a page's text without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


def apply(
    platform: LivePlatform, slug: str, national_id: str, *, decision: str = "approve", datasets: str | None = None
) -> tuple[Browser, requests.Response]:
    """Apply at the relying party, log in with the eID card and answer the consent screen.

    Returns the browser and the platform's 303 back to the relying party's callback.
    """
    browser = Browser(platform.base)
    start = browser.get(f"/sandbox/{slug}/")
    assert start.status_code == 200
    to_mydata = browser.post(f"/sandbox/{slug}/apply", form_fields(start.text, f"/sandbox/{slug}/apply"))
    assert to_mydata.status_code == 303, to_mydata.text[:300]
    login = browser.follow(to_mydata)
    screen = browser.follow(browser.log_in(login, "eid", national_id))
    action = screen.url.removeprefix(platform.base)
    answer = {**form_fields(screen.text, action), "decision": decision}
    if datasets:
        answer["datasets"] = datasets
    back = browser.follow(browser.post(action, answer), stop_at=f"{platform.base}/sandbox/{slug}/callback")
    assert back.status_code == 303
    return browser, back


def finish(browser: Browser, back: requests.Response) -> requests.Response:
    """Follow the platform's answer to the callback, then to the application page."""
    callback = browser.get(back.headers["Location"])
    assert callback.status_code == 303, text(callback)[:300]
    assert urlsplit(callback.headers["Location"]).path.endswith("/application")
    return browser.get(callback.headers["Location"])


def test_the_bank_shows_each_agencys_outcome_and_retries_after_retry_after(
    platform: LivePlatform, clock: ShiftedClock
) -> None:
    browser, back = apply(platform, "bank", "H120000004")  # persona 5: the agencies fail
    waiting = finish(browser, back)
    assert waiting.status_code == 200
    page = text(waiting)
    assert "部分機關暫時無法提供資料" in page
    assert "戶籍資料 機關逾時未回應" in page
    assert "綜合所得稅各類所得資料 機關暫停服務" in page
    assert "勞保投保資料 機關簽章驗證失敗" in page
    retry_form = form_fields(waiting.text, "/sandbox/bank/application/retry")

    # Too soon: the bank does not call MyData before Retry-After has passed.
    too_soon = browser.post("/sandbox/bank/application/retry", retry_form)
    assert too_soon.status_code == 429
    assert "還不能重試" in text(too_soon)

    requests.delete(f"{platform.base}/sandbox/agencies/sandbox/faults", timeout=10).raise_for_status()
    with later(clock, 60):
        retried = browser.post("/sandbox/bank/application/retry", retry_form)
    assert retried.status_code == 303
    result = text(browser.get(retried.headers["Location"]))
    assert "已收到您的資料" in result
    assert "黃建國" in result


def test_a_consent_revoked_before_the_retry_is_explained(platform: LivePlatform, clock: ShiftedClock) -> None:
    requests.put(
        f"{platform.base}/sandbox/agencies/sandbox/faults",
        json={"national_id": "F135792464", "dataset": "tax.income", "kind": "error"},
        timeout=10,
    ).raise_for_status()
    browser, back = apply(platform, "bank", "F135792464")
    waiting = finish(browser, back)
    assert "機關暫停服務" in text(waiting)
    # The citizen withdraws the consent on MyData (usage history), then the bank tries again.
    csrf = form_fields(browser.get("/me").text, "/logout")["csrf_token"]
    consents = browser.get("/api/v1/me/consents").json()["consents"]
    granted = next(c for c in consents if c["status"] == "granted")
    revoked = browser.http.post(
        f"{platform.base}/api/v1/me/consents/{granted['id']}/revoke", headers={"X-CSRFToken": csrf}, timeout=10
    )
    assert revoked.status_code == 200, revoked.text
    with later(clock, 60):
        retried = browser.post("/sandbox/bank/application/retry", form_fields(waiting.text, "/retry"))
    page = browser.get(retried.headers["Location"])
    # The platform answers 403 consent_revoked (issue 11 acceptance 4); the bank tells its customer.
    assert "您已在 MyData 撤回此次同意" in text(page)


def test_the_school_without_the_optional_property_data(platform: LivePlatform) -> None:
    browser, back = apply(platform, "school", "B223456782")  # the parent leaves tax.property unticked
    result = text(finish(browser, back))
    assert "林美華" in result
    assert "財產歸屬資料 未同意提供" in result
    assert "未提供（請另繳財產證明）" in result


def test_a_reloaded_callback_shows_the_result_without_collecting_again(platform: LivePlatform) -> None:
    browser, back = apply(platform, "school", "B223456782", datasets="tax.property")
    result = finish(browser, back)
    assert "財產歸屬資料 已取得" in text(result)
    again = browser.get(back.headers["Location"])
    assert again.status_code == 303
    assert text(browser.get(again.headers["Location"])) == text(result)


def test_an_answer_with_another_state_or_issuer_is_refused(platform: LivePlatform) -> None:
    browser, back = apply(platform, "bank", "A123456789")
    query = urlsplit(back.headers["Location"]).query
    forged_state = browser.get("/sandbox/bank/callback?" + re.sub(r"state=[^&]+", "state=forged", query))
    assert forged_state.status_code == 400
    assert "verification_failed" in text(forged_state)
    mixed_up = browser.get("/sandbox/bank/callback?" + re.sub(r"iss=[^&]+", "iss=https%3A%2F%2Fevil.example", query))
    assert mixed_up.status_code == 400
    # Neither touched the application: the genuine answer still completes it.
    assert "王小明" in text(finish(browser, back))


def test_the_start_pages_speak_both_languages(platform: LivePlatform) -> None:
    browser = Browser(platform.base)
    assert "信用卡線上申辦" in text(browser.get("/sandbox/bank/"))
    english = browser.get("/sandbox/bank/?lang=en")
    assert "Credit card application" in text(english)
    assert "Credit card application" in text(browser.get("/sandbox/bank/"))  # the choice is remembered
    school = browser.get("/sandbox/school/")
    assert "中低收入戶學雜費減免" in text(school)  # each site has its own cookie
    csp = english.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert f"form-action 'self' {platform.base}" in csp
    cookie = english.headers["Set-Cookie"]
    assert "sandbox_bank_session=" in cookie
    assert "Path=/sandbox/bank" in cookie
    assert "HttpOnly" in cookie
