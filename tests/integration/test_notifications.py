"""A real delivery over HTTP notifies the citizen by email through a real SMTP server (issue 11, acceptance 5).

The third-party bank of test_delivery_third_party collects a package from a served sandbox platform
while the local SMTP server is down: the delivery succeeds and the email waits in the outbox with
its error; `mydata mail send --once` retries it once the server is back, and sends it exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.factories.live import Browser, LivePlatform, ShiftedClock, form_fields, serve_platform
from tests.factories.smtp import SmtpServer, body
from tests.integration.test_delivery_third_party import ThirdPartyBank

#: What the email may not contain about persona 1: national ID, birth date (AD and ROC), NHI card, address.
PERSONAL_DATA = ("A123456789", "a123456789", "1985-03-14", "1985/03/14", "74/03/14", "000011110001", "臺北市")


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A local SMTP server, stopped: the tests start it when they want it up."""
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def platform_clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture(scope="module")
def platform(
    tmp_path_factory: pytest.TempPathFactory, platform_clock: ShiftedClock, smtp: SmtpServer
) -> Iterator[LivePlatform]:
    with serve_platform(tmp_path_factory.mktemp("notify"), overrides=smtp.settings(), clock=platform_clock) as live:
        yield live


def send_once(platform: LivePlatform) -> str:
    """Run `mydata mail send --once` against the platform's database; return what it printed."""
    result = platform.app.test_cli_runner().invoke(args=["mail", "send", "--once"])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_a_delivery_with_the_mail_server_down_succeeds_and_the_email_goes_out_once_it_is_back(
    platform: LivePlatform, platform_clock: ShiftedClock, smtp: SmtpServer
) -> None:
    bank = ThirdPartyBank(platform, platform_clock)
    delivery = bank.consented("A123456789")
    answer = bank.deliver(delivery.access_token)
    assert answer.status_code == 200, answer.text  # the request only queued the email

    assert send_once(platform) == "Sent 0, failed 1 (to be retried)."
    outbox = delivery.browser.get("/sandbox/outbox").text
    assert "wang.xiaoming@example.com" in outbox
    assert "ConnectionRefusedError" in outbox  # the error is kept with the queued message

    smtp.start()
    assert send_once(platform) == "Sent 0, failed 0 (to be retried)."  # not due yet: it backs off
    platform_clock.offset += 61
    assert send_once(platform) == "Sent 1, failed 0 (to be retried)."
    platform_clock.offset += 3600
    assert send_once(platform) == "Sent 0, failed 0 (to be retried)."

    [received] = smtp.inbox.messages
    assert received["To"] == "wang.xiaoming@example.com"
    assert received["Subject"].startswith("MyData：您的資料已交付給 沙盒銀行")
    text = body(received)
    assert text.startswith("王小明 您好：")  # the citizen's own name, and their language (the default)
    for title in ("戶籍資料", "綜合所得稅各類所得資料", "勞保投保資料"):
        assert f"- {title}" in text
    assert f"{platform.base}/me/history" in text
    for personal in PERSONAL_DATA:
        assert personal not in str(received), personal


def test_the_email_follows_the_language_chosen_in_the_account_settings(
    platform: LivePlatform, platform_clock: ShiftedClock, smtp: SmtpServer
) -> None:
    smtp.start()
    smtp.inbox.messages.clear()
    bank = ThirdPartyBank(platform, platform_clock)
    delivery = bank.consented("B223456782")
    browser = delivery.browser
    page = browser.get("/me/settings")
    assert page.status_code == 200
    assert "lin.meihua@example.com" in page.text  # the sandbox persona's confirmed example address
    csrf = form_fields(page.text, "/me/settings")["csrf_token"]
    fields = {"csrf_token": csrf, "email": "lin.meihua@example.com", "language": "en", "notifications": "delivery"}
    saved = browser.post("/me/settings", fields)
    assert saved.status_code == 303, saved.text[:300]

    assert bank.deliver(delivery.access_token).status_code == 200
    assert send_once(platform) == "Sent 1, failed 0 (to be retried)."
    [received] = smtp.inbox.messages
    assert received["To"] == "lin.meihua@example.com"
    assert received["Subject"].startswith("MyData: your data was delivered to 沙盒銀行")
    assert received["Content-Language"] == "en"
    text = body(received)
    assert text.startswith("Dear 林美華,")
    assert "- Household registration" in text
    assert "B223456782" not in str(received)


def test_a_download_and_a_verification_of_it_each_notify_the_citizen(
    platform: LivePlatform, platform_clock: ShiftedClock, smtp: SmtpServer
) -> None:
    smtp.start()
    smtp.inbox.messages.clear()
    browser = Browser(platform.base)
    login = browser.follow(browser.get("/login?next=/me/data"))
    assert browser.follow(browser.log_in(login, "eid", "E224680132")).url.endswith("/me/data")
    document = browser.get("/me/data/download?datasets=household.registration,nhi.enrolment&format=json")
    assert document.status_code == 200, document.text[:300]
    anyone = Browser(platform.base)
    assert anyone.get(document.json()["manifest"]["verification_url"].removeprefix(platform.base)).status_code == 200

    assert send_once(platform) == "Sent 2, failed 0 (to be retried)."
    downloaded, verified = smtp.inbox.messages
    assert downloaded["To"] == verified["To"] == "zhang.yating@example.com"
    for received in (downloaded, verified):
        text = body(received)
        assert text.startswith("張雅婷 您好：")
        assert "- 戶籍資料" in text
        assert "E224680132" not in str(received)
    assert downloaded["Subject"] != verified["Subject"]
