"""Screenshots of the citizen's main pages, in both languages, on a desktop and on a 360 px phone.

A sandbox platform is served on a fresh SQLite database (as the browser tests do); persona 1 (王小明)
logs in with the eID card, applies at the sandbox bank (delivered), has a consent for the sandbox
school waiting for delivery, and opens the school's consent screen. Each page is saved as a small
palette PNG in this folder: ``<page>-<zh|en>-<desktop|phone>.png``.

The counter's pages (``counter-*``, docs/counter.md) and the operator console's (``console-*``,
docs/operators.md) are shot after some activity of their own: ``--only counter``, ``--only console``.

    make screenshots, or: PYTHONPATH=. .venv/bin/python docs/screenshots/make.py [--only dashboard]
"""

from __future__ import annotations

import argparse
import base64
import io
import logging
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from consent import consents  # noqa: E402
from consent.consents import ServiceTerms  # noqa: E402
from identity import services as identity_services  # noqa: E402
from mydata.clock import clock  # noqa: E402
from mydata.db import get_db  # noqa: E402
from providers import services as providers_services  # noqa: E402
from relying_parties.sandbox.seed import RELYING_PARTIES  # noqa: E402
from tests.factories.chromium import headless_chromium  # noqa: E402
from tests.factories.live import EID_PIN, LivePlatform, serve_platform  # noqa: E402

PERSONA = "A123456789"
CLERK = "E224680132"  # 張雅婷, counter clerk of the sandbox bank
OPERATOR = "L200000002"  # 趙曉雯, the platform's operator
LANGS = {"zh": "zh_Hant_TW", "en": "en"}
#: (name, CSS width, device pixel ratio, mobile, height) of each screen; the phone is 360 CSS px (acceptance 7),
#: and the most of a long page kept, in CSS px: its top is what a reader of the README needs.
SCREENS = (("desktop", 1280, 1, False, 1400), ("phone", 360, 1.5, True, 1300))
COLOURS = 64  # a palette this size keeps anti-aliased Chinese text crisp and the files small


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, css))


def log_in(driver: WebDriver, base: str, national_id: str = PERSONA) -> None:
    driver.get(f"{base}/login")
    driver.find_element(By.ID, "eid-national_id").send_keys(national_id)
    driver.find_element(By.ID, "eid-pin").send_keys(EID_PIN)
    driver.find_element(By.ID, "eid-submit").click()
    wait_for(driver, ".portal-cards")


def apply_at_the_bank(driver: WebDriver, base: str) -> None:
    """Apply for the bank's credit card and agree: the bank collects the data at once."""
    driver.get(f"{base}/sandbox/bank/")
    driver.find_element(By.ID, "apply-with-mydata").click()
    wait_for(driver, "button[name=decision][value=approve]")
    driver.find_element(By.CSS_SELECTOR, "button[name=decision][value=approve]").click()
    WebDriverWait(driver, 30).until(lambda d: "/sandbox/bank/application" in d.current_url)


def grant_the_school_a_consent(live: LivePlatform) -> None:
    """Give the persona a consent the school has not collected yet (it waits for delivery)."""
    school = RELYING_PARTIES[1]
    terms = ServiceTerms(
        organisation_id=school.id,
        organisation_name=school.name_zh,
        service_id=school.service.id,
        purpose=school.service.purpose_zh,
        retention=f"P{school.service.retention_days}D",
        level="substantial",
        datasets_required=school.service.required_datasets,
        datasets_optional=school.service.optional_datasets,
    )
    with live.app.app_context(), get_db().unit_of_work() as uow:
        citizen = identity_services.find_citizen(uow, PERSONA)
        assert citizen is not None
        now = clock().now()
        consent = consents.record_request(uow, client_id=school.client_id, terms=terms, now=now)
        consents.grant(uow, consent.id, citizen_id=citizen.id, national_id=PERSONA, optional_chosen=(),
                       amr=("sc", "pin", "hwk"), now=now)  # fmt: skip
        uow.commit()


def open_the_school_consent_screen(driver: WebDriver, base: str) -> None:
    driver.get(f"{base}/sandbox/school/")
    driver.find_element(By.ID, "apply-with-mydata").click()
    wait_for(driver, "button[name=decision][value=approve]")


def show_data(driver: WebDriver, base: str) -> None:
    """Get three datasets at My data: the page that shows them as tables."""
    driver.get(f"{base}/me/data?datasets=household.registration,tax.income,labor.insurance")
    driver.find_element(By.CSS_SELECTOR, "form[action='/me/data'] button[type=submit]").click()
    wait_for(driver, "a[href*='/me/data/download?']")


def counter_desk(base: str) -> None:
    """The counter (docs/counter.md): 王小明's phone and 張雅婷's desk, step by step, in Chinese."""
    phone_screen, desk_screen = SCREENS[1], SCREENS[0]
    with headless_chromium() as citizen, headless_chromium() as clerk:
        log_in(citizen, base)
        log_in(clerk, base, CLERK)

        def on_phone(name: str) -> None:
            screen(citizen, phone_screen[1], phone_screen[2], phone_screen[3])
            shoot(citizen, HERE / f"counter-citizen-{name}-zh-phone.png", phone_screen[1], phone_screen[4])

        def at_the_desk(name: str) -> None:
            shoot(clerk, HERE / f"counter-clerk-{name}-zh-desktop.png", desk_screen[1], 900)

        citizen.get(f"{base}/me/counter?lang=zh_Hant_TW")
        for dataset in ("household.registration", "labor.insurance"):
            citizen.find_element(By.CSS_SELECTOR, f"input[name=datasets][value='{dataset}']").click()
        on_phone("pick")
        citizen.find_element(By.CSS_SELECTOR, "form.counter-picker button[type=submit]").click()
        wait_for(citizen, "#counter-code")
        code = citizen.find_element(By.ID, "counter-code").text.strip()
        on_phone("code")
        clerk.get(f"{base}/counter?lang=zh_Hant_TW")
        clerk.find_element(By.ID, "counter-code").send_keys(code)
        at_the_desk("entry")
        clerk.find_element(By.ID, "counter-code").submit()
        wait_for(clerk, "#confirmation")
        at_the_desk("confirm")
        wait_for(citizen, "#counter-status .counter-state[data-state=claimed]")
        on_phone("confirm")
        confirmation = citizen.find_element(By.CSS_SELECTOR, "#counter-status #confirmation").text
        clerk.find_element(By.ID, "confirmation").send_keys(confirmation.replace(" ", ""))
        clerk.find_element(By.ID, "confirmation").submit()
        wait_for(clerk, ".counter-citizen")
        at_the_desk("data")
        WebDriverWait(citizen, 20).until(lambda d: "已出示給" in d.find_element(By.ID, "counter-status").text)
        on_phone("shown")


def some_activity(driver: WebDriver, live: LivePlatform) -> None:
    """What an operator finds on a working day: a delivery and a refusal, and something in each queue.

    王小明 applies at the sandbox bank (delivered) and says no to the sandbox school (denied); a new
    insurer applies, and the bank proposes a service, with the command line (both wait for review);
    an agency proposes a new schema version; the ledger's tree head is signed and verified.
    """
    log_in(driver, live.base)
    apply_at_the_bank(driver, live.base)
    open_the_school_consent_screen(driver, live.base)
    driver.find_element(By.CSS_SELECTOR, "button[name=decision][value=deny]").click()
    WebDriverWait(driver, 30).until(lambda d: "/sandbox/school/" in d.current_url and "/consent" not in d.current_url)
    driver.delete_all_cookies()
    cli = live.app.test_cli_runner()
    bank = RELYING_PARTIES[0]
    commands = [
        ["rp", "apply", "harbour-insurance", "--name-zh", "海港人壽保險", "--name-en", "Harbour Life Insurance",
         "--type", "other", "--registration-number", "04595257", "--contact-name", "林怡君",
         "--contact-email", "it@harbour-insurance.example", "--contact-phone", "02-2345-6789"],
        ["rp", "add-service", f"{bank.id}.mortgages", "--name-zh", "房屋貸款", "--name-en", "Mortgages",
         "--purpose-zh", "審核房屋貸款申請", "--purpose-en", "To review a mortgage application",
         "--purpose-code", "067", "--dataset", "household.registration", "--dataset", "tax.income",
         "--retention-days", "365"],
        ["ledger", "sign"],
        ["ledger", "verify"],
    ]  # fmt: skip
    for command in commands:
        result = cli.invoke(args=command)
        assert result.exit_code == 0, f"mydata {' '.join(command)}: {result.output}"
    with live.app.app_context(), get_db().unit_of_work() as uow:
        dataset = providers_services.get_dataset(uow, "labor.insurance")
        wider = dict(dataset.json_schema)
        wider["description"] = "勞工保險投保紀錄（新增投保單位統一編號）"
        providers_services.propose_schema(uow, dataset.id, json_schema=wider, actor="cli")


def operator_console(driver: WebDriver, live: LivePlatform) -> None:
    """The operator console (docs/operators.md): 趙曉雯's pages after some activity, in Chinese, two in English."""
    base = live.base
    some_activity(driver, live)
    log_in(driver, base, OPERATOR)
    # Two decisions with their reasons, for the audit list; and one key rotation, for the keys page.
    driver.get(f"{base}/console/operator/datasets?lang=zh_Hant_TW")
    driver.find_element(By.CSS_SELECTOR, "textarea[name=reason]").send_keys("機關系統維護，暫停至今晚 22 時。")
    driver.find_element(By.CSS_SELECTOR, "button[name=action][value=suspend]").click()
    wait_for(driver, "button[name=action][value=reinstate]")
    driver.find_element(By.CSS_SELECTOR, "button[name=action][value=reinstate]").click()
    wait_for(driver, "[role=status]")
    driver.get(f"{base}/console/operator/keys")
    driver.find_element(By.ID, "confirm-rotate").click()
    driver.find_element(By.CSS_SELECTOR, "form[action$='/keys/rotate'] button").click()
    wait_for(driver, "[role=status]")
    width = SCREENS[0][1]
    pages = [
        ("overview", "/console/operator", ("zh", "en")),
        ("organisations", "/console/operator/organisations", ("zh",)),
        ("services", "/console/operator/services", ("zh",)),
        ("schemas", "/console/operator/schemas", ("zh",)),
        ("decisions", "/console/operator/decisions", ("zh",)),
        ("statistics", "/console/operator/statistics", ("zh", "en")),
        ("ledger", "/console/operator/ledger", ("zh",)),
        ("keys", "/console/operator/keys", ("zh",)),
    ]
    screen(driver, width, 1, False)
    for page, path, langs in pages:
        for short in langs:
            driver.get(f"{base}{path}?lang={LANGS[short]}")
            wait_for(driver, "h1")
            shoot(driver, HERE / f"console-{page}-{short}-desktop.png", width, 4000)


def shoot(driver: WebDriver, path: Path, width: int, max_height: int) -> None:
    """Save the top of the current page at *width* CSS px as a palette PNG."""
    height = min(int(driver.execute_script("return document.documentElement.scrollHeight")), max_height)
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    image = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    image.quantize(colors=COLOURS, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"{path.relative_to(HERE.parent.parent)}  {image.width}x{image.height}  {path.stat().st_size // 1024} KB")


def screen(driver: WebDriver, width: int, ratio: float, mobile: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": 800, "deviceScaleFactor": ratio, "mobile": mobile},
    )


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per screenshot, not per request
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", help="one page: login, dashboard, consents, consent, data, history; or counter, or console"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mydata-screens-") as folder, serve_platform(Path(folder)) as live:
        base = live.base
        pages: list[tuple[str, Callable[[WebDriver], None]]] = [
            ("login", lambda d: d.get(f"{base}/login")),
            ("dashboard", lambda d: d.get(f"{base}/me")),
            ("consents", lambda d: d.get(f"{base}/me/consents")),
            ("consent", lambda d: open_the_school_consent_screen(d, base)),
            ("data", lambda d: show_data(d, base)),
            ("history", lambda d: d.get(f"{base}/me/history")),
        ]
        if args.only in (None, "counter"):
            counter_desk(base)
        if args.only in (None, "console"):
            with headless_chromium() as driver:
                operator_console(driver, live)
        if args.only in ("counter", "console"):
            return
        with headless_chromium() as driver:
            for page, visit in pages:
                if page == "dashboard":  # from here on, persona 1 is logged in and has a history
                    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
                    log_in(driver, base)
                    apply_at_the_bank(driver, base)
                    grant_the_school_a_consent(live)
                if args.only and page != args.only:
                    continue
                for short, lang in LANGS.items():
                    driver.get(f"{base}/?lang={lang}")  # the choice is kept in a cookie
                    for name, width, ratio, mobile, max_height in SCREENS:
                        screen(driver, width, ratio, mobile)
                        visit(driver)
                        shoot(driver, HERE / f"{page}-{short}-{name}.png", width, max_height)


if __name__ == "__main__":
    main()
