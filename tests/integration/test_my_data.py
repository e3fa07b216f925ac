"""My data, downloads and document verification over real HTTP, with the sandbox agencies (issue 11, acceptance 1-2).

A citizen's browser (plain HTTP) logs in with the eID card, picks datasets at /me/data, downloads
them as JSON, CSV and PDF, and a third party checks the PDF at /verify/<code>.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Iterator

import pytest
import requests
from pypdf import PdfReader

from identity.sandbox.personas import PERSONAS
from tests.factories.live import Browser, LivePlatform, form_fields, serve_platform

ALL = "household.registration,tax.income,tax.property,labor.insurance,nhi.enrolment"
TITLES = ("戶籍資料", "綜合所得稅各類所得資料", "財產歸屬資料", "勞保投保資料", "健保投保資料")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePlatform]:
    """Serve the sandbox platform with its agencies (persona 5's faults on; a 1 s provider timeout)."""
    with serve_platform(tmp_path_factory.mktemp("data"), overrides={"provider_timeout_seconds": 1}) as live:
        yield live


def logged_in(platform: LivePlatform, national_id: str) -> Browser:
    """Return a browser logged in with the persona's eID card (level high)."""
    browser = Browser(platform.base)
    login = browser.follow(browser.get("/login?next=/me/data"))
    page = browser.follow(browser.log_in(login, "eid", national_id))
    assert page.url.endswith("/me/data"), page.url
    return browser


def text(page: requests.Response) -> str:
    """Return a page's text without its tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))


def fetch(browser: Browser, datasets: str) -> requests.Response:
    """Pick *datasets* at /me/data and return the page that shows them."""
    form = browser.get("/me/data")
    fields = form_fields(form.text, "/me/data")
    return browser.http.post(
        f"{browser.base}/me/data",
        data={"csrf_token": fields["csrf_token"], "datasets": datasets.split(",")},
        allow_redirects=False,
        timeout=30,
    )


def pdf_text(body: bytes) -> str:
    """Return the text of every page of a PDF."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


@pytest.mark.parametrize("persona", PERSONAS[:4], ids=lambda p: f"persona{p.number}")
def test_personas_download_json_csv_and_pdf_and_the_pdf_verifies(platform: LivePlatform, persona: object) -> None:
    national_id, name = persona.national_id, persona.name  # type: ignore[attr-defined]
    browser = logged_in(platform, national_id)
    shown = fetch(browser, ALL)
    assert shown.status_code == 200, shown.text[:500]
    assert "/me/data/download?" in shown.text

    as_json = browser.get(f"/me/data/download?datasets={ALL}&format=json")
    assert as_json.status_code == 200, as_json.text[:300]
    assert as_json.headers["Cache-Control"] == "no-store"
    assert as_json.headers["Content-Disposition"].startswith('attachment; filename="mydata-')
    document = as_json.json()
    assert set(document["documents"]) <= set(ALL.split(","))
    assert document["documents"], "the agencies' signed documents are in the JSON"
    assert all(jws.count(".") == 2 for jws in document["documents"].values())
    assert document["manifest"]["verification_url"].startswith(platform.base + "/verify/")

    as_csv = browser.get(f"/me/data/download?datasets={ALL}&format=csv")
    assert as_csv.status_code == 200
    assert as_csv.headers["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(as_csv.content))
    household = archive.read("household.registration.csv")
    assert household.startswith("\ufeff".encode()), "UTF-8 with BOM"
    assert name in household.decode("utf-8")

    single = browser.get("/me/data/download?datasets=nhi.enrolment&format=csv")
    assert single.headers["Content-Type"].startswith("text/csv")
    assert single.content.startswith(b"\xef\xbb\xbf")

    as_pdf = browser.get(f"/me/data/download?datasets={ALL}&format=pdf")
    assert as_pdf.status_code == 200
    assert as_pdf.headers["Content-Type"] == "application/pdf"
    content = pdf_text(as_pdf.content)
    assert name in content
    delivered = [t for t, d in zip(TITLES, ALL.split(","), strict=True) if d in document["documents"]]
    assert delivered
    for title in delivered:
        assert title in content
    # The verification code is on every page (other numbers of the data may have its shape).
    reader = PdfReader(io.BytesIO(as_pdf.content))
    shape = r"[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}"
    on_every_page = set.intersection(*(set(re.findall(shape, page.extract_text())) for page in reader.pages))
    assert len(on_every_page) == 1, (on_every_page, content[:500])
    code = re.search(shape, on_every_page.pop())
    assert code

    verifier = Browser(platform.base)  # anyone else: not logged in
    check = verifier.get(f"/verify/{code.group(0)}")
    assert check.status_code == 200
    page = text(check)
    assert "SHA-256" in page

    assert hashlib.sha256(as_pdf.content).hexdigest() in page
    assert name not in check.text
    assert national_id not in check.text
    assert "household.registration" in page
    assert "戶籍資料" in page
    fields = form_fields(check.text, f"/verify/{code.group(0)}")
    same = verifier.http.post(
        f"{platform.base}/verify/{code.group(0)}",
        data={"csrf_token": fields["csrf_token"]},
        files={"file": ("document.pdf", as_pdf.content, "application/pdf")},
        timeout=30,
    )
    assert same.status_code == 200
    assert "verify-match" in same.text
    assert "verify-mismatch" not in same.text
    changed = bytearray(as_pdf.content)
    changed[len(changed) // 2] ^= 0x01
    tampered = verifier.http.post(
        f"{platform.base}/verify/{code.group(0)}",
        data={"csrf_token": fields["csrf_token"]},
        files={"file": ("document.pdf", bytes(changed), "application/pdf")},
        timeout=30,
    )
    assert "verify-mismatch" in tampered.text
    assert 'verify-match"' not in tampered.text
    assert name not in tampered.text
    assert national_id not in tampered.text


def test_an_unknown_code_gets_a_clear_page(platform: LivePlatform) -> None:
    page = Browser(platform.base).get("/verify/2222-3333-4444")
    assert page.status_code == 404
    assert "document_not_found" in page.text


def test_persona_6_sees_no_record_for_labour_insurance(platform: LivePlatform) -> None:
    browser = logged_in(platform, "L200000002")
    shown = fetch(browser, "labor.insurance")
    assert shown.status_code == 200
    assert 'data-outcome="no_record"' in shown.text
    assert "查無資料" in text(shown)
    assert "error-summary" not in shown.text
    english = browser.get("/me/data?lang=en")
    assert "Labour insurance enrolment" in english.text
    assert "No record" in text(fetch(browser, "labor.insurance"))


def test_persona_5_sees_each_failure_named_and_can_retry(platform: LivePlatform) -> None:
    browser = logged_in(platform, "H120000004")
    shown = fetch(browser, "household.registration,tax.income,labor.insurance,nhi.enrolment")
    assert shown.status_code == 200
    for outcome in ("timeout", "unavailable", "bad_signature"):
        assert f'data-outcome="{outcome}"' in shown.text
    page = text(shown)
    assert "未及時回應" in page  # timeout
    assert "簽章" in page  # bad signature
    assert "error-summary" in shown.text
    retry = form_fields(shown.text, "/me/data")
    assert retry["datasets"] == "household.registration"
    again = browser.post("/me/data", retry)
    assert again.status_code == 200
    assert 'data-outcome="timeout"' in again.text
    # The health insurance data of persona 5 has no fault: it is shown.
    assert "健保投保資料" in page
    refused = browser.get("/me/data/download?datasets=tax.income&format=pdf")
    assert refused.status_code == 503
    assert 'data-outcome="unavailable"' in refused.text


def test_downloads_are_ledger_events_of_their_own_cases(platform: LivePlatform) -> None:
    browser = logged_in(platform, "B223456782")
    assert browser.get("/me/data/download?datasets=nhi.enrolment&format=json").status_code == 200
    history = browser.get("/api/v1/me/history").json()["events"]
    downloads = [e for e in history if e["event"] == "download.completed"]
    assert downloads
    assert downloads[0]["datasets"] == ["nhi.enrolment"]
    assert downloads[0]["consent_id"] != downloads[-1]["consent_id"] or len(downloads) == 1
    assert json.dumps(history).count(browser.base) == 0


def test_bad_download_requests_are_4xx(platform: LivePlatform) -> None:
    browser = logged_in(platform, "A123456789")
    assert browser.get("/me/data/download?datasets=nhi.enrolment&format=docx").status_code == 400
    assert browser.get("/me/data/download?datasets=no.such&format=pdf").status_code == 400
    assert browser.get("/me/data/download?format=pdf").status_code == 400
    assert Browser(platform.base).get("/me/data/download?datasets=nhi.enrolment&format=pdf").status_code == 303


def test_the_history_page_says_a_download_and_its_verification_and_filters_them(platform: LivePlatform) -> None:
    browser = logged_in(platform, "E224680132")
    document = browser.get("/me/data/download?datasets=nhi.enrolment&format=json")
    assert document.status_code == 200
    assert Browser(platform.base).get(document.json()["manifest"]["verification_url"]).status_code == 200

    page = text(browser.get("/me/history?lang=en"))
    assert "You downloaded your data" in page
    assert "Someone checked a document you downloaded" in page
    # Filtered (the module's other tests may have given this persona more events of both kinds).
    downloads = browser.get("/me/history?format=json&event=download.completed").json()["events"]
    assert downloads
    assert {event["event"] for event in downloads} == {"download.completed"}, downloads
    exported = browser.get("/me/history?format=csv&lang=en&event=document.verified")
    assert exported.status_code == 200
    assert exported.content.startswith(b"\xef\xbb\xbf")
    _header, *rows = exported.content.decode("utf-8-sig").strip().splitlines()
    assert rows
    assert all("Someone checked a document you downloaded" in row for row in rows)
