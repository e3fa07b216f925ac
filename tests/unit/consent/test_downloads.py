"""Self-download services and pages in process, with a fake fetcher (DESIGN §6.5; issue 11 items 1-4).

The same paths against the sandbox agencies over real HTTP are in tests/integration/test_my_data.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from consent import documents, downloads
from consent.data_views import money, roc_date
from consent.downloads import Citizen, DocumentHeader, Download
from consent.interfaces import DocumentExpired, DocumentNotFound, DownloadInvalid
from consent.ledger import ledger
from consent.models import CaseOpening, Document
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db
from mydata.keys import key_store
from mydata.limits import limiter
from providers.protocol import FetchResult, Outcome
from providers.sandbox.seed import seed_sandbox_catalogue
from providers.services import DatasetEntry
from tests.factories.consent import DATA, fake_fetcher
from tests.factories.identity import LoginAs, make_citizen

NATIONAL_ID = "A123456789"


@pytest.fixture
def uow(app: Flask, tmp_path: Path) -> Iterator[UnitOfWork]:
    """Return a unit of work with the sandbox catalogue and a platform signing key."""
    with app.app_context(), get_db().unit_of_work() as unit:
        seed_sandbox_catalogue(unit, keys_dir=tmp_path / "agency-keys", agencies_url="http://localhost/agencies")
        key_store(unit).rotate()
        yield unit


@pytest.fixture
def citizen(uow: UnitOfWork) -> Citizen:
    """Return persona 1 as a logged-in citizen at level high."""
    account = make_citizen(uow, NATIONAL_ID)
    return Citizen(account.id, NATIONAL_ID, account.name, "high")


def issue(uow: UnitOfWork, citizen: Citizen, now: dt.datetime, datasets: tuple[str, ...] = ("nhi.enrolment",)):  # type: ignore[no-untyped-def]
    """Fetch and issue a JSON document; return the download and the issued document."""
    selection = downloads.select_datasets(uow, datasets, citizen.level)
    download = downloads.fetch(uow, citizen=citizen, entries=selection.entries, fetcher=fake_fetcher(), now=now)

    def render(done: Download, header: DocumentHeader) -> bytes:
        return documents.render_json(done, header, verify_url=f"http://localhost/verify/{header.display_code}")

    return download, downloads.issue_document(uow, download, citizen=citizen, fmt="json", render=render, now=now)


@pytest.mark.db
def test_a_document_keeps_only_its_hash_and_metadata_and_the_code_as_a_hash(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    now = clock.now()
    download, issued = issue(uow, citizen, now)
    record = uow.session.get(Document, download.id)
    assert record is not None
    assert record.sha256 == hashlib.sha256(issued.body).hexdigest()
    assert record.valid_until - record.issued_at == dt.timedelta(days=30)
    assert record.datasets == ["nhi.enrolment"]
    stored = json.dumps([record.id, record.citizen_id, record.datasets, record.format, record.code_sha256])
    assert issued.header.code not in stored
    assert "王小明" not in stored
    assert record.code_sha256 == hashlib.sha256(issued.header.code.encode()).hexdigest()


@pytest.mark.db
def test_a_download_is_a_ledger_case_of_its_own_and_the_agencies_see_its_id(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    fetcher = fake_fetcher()
    selection = downloads.select_datasets(uow, ("nhi.enrolment", "tax.income"), "high")
    download = downloads.fetch(uow, citizen=citizen, entries=selection.entries, fetcher=fetcher, now=clock.now())
    assert fetcher.calls == [  # type: ignore[attr-defined]
        {
            "national_id": NATIONAL_ID,
            "datasets": ["nhi.enrolment", "tax.income"],
            "txn": download.id,
            "purpose": "self-download",
        }
    ]
    downloads.record_view(uow, download, citizen=citizen)
    log = ledger(uow)
    entry = log.entry(log.tree_head().tree_size - 1).entry
    assert entry["event"] == "download.completed"
    assert entry["consent_id"] == download.id
    assert entry["datasets"] == ["nhi.enrolment", "tax.income"]
    assert entry["document_hashes"]["tax.income"] == hashlib.sha256(b"e30.tax.income.sig").hexdigest()
    opening = uow.session.get(CaseOpening, download.id)
    assert opening is not None
    assert opening.subject_key == log.subject_key(NATIONAL_ID)
    assert entry["subject"] == opening.commitment


@pytest.mark.db
def test_a_failed_fetch_is_recorded_as_download_failed(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    selection = downloads.select_datasets(uow, ("nhi.enrolment", "tax.income"), "high")
    fetcher = fake_fetcher({"tax.income": Outcome.TIMEOUT})
    download = downloads.fetch(uow, citizen=citizen, entries=selection.entries, fetcher=fetcher, now=clock.now())
    assert set(download.failed) == {"tax.income"}
    downloads.record_failed_download(uow, download, citizen=citizen)
    log = ledger(uow)
    entry = log.entry(log.tree_head().tree_size - 1).entry
    assert (entry["event"], entry["outcome"]) == ("download.failed", "partial")


@pytest.mark.db
def test_verifying_confirms_compares_and_records_each_check_in_the_citizens_case(
    uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    download, issued = issue(uow, citizen, clock.now())
    code = issued.header.display_code.lower().replace("-", " ")  # typed from paper
    assert downloads.verify_document(uow, code, now=clock.now()).matches is None
    assert downloads.verify_document(uow, code, now=clock.now(), uploaded=issued.body).matches is True
    changed = bytearray(issued.body)
    changed[10] ^= 0x01
    assert downloads.verify_document(uow, code, now=clock.now(), uploaded=bytes(changed)).matches is False
    log = ledger(uow)
    size = log.tree_head().tree_size
    checks = [e.entry for e in log.entries(size - 3, size - 1)]
    assert [c["event"] for c in checks] == ["document.verified"] * 3
    assert [c["outcome"] for c in checks] == ["confirmed", "match", "mismatch"]
    assert {c["consent_id"] for c in checks} == {download.id}
    assert {c["subject"] for c in checks} == {uow.session.get(CaseOpening, download.id).commitment}  # type: ignore[union-attr]
    assert all(c["actor"] == "verifier" for c in checks)


@pytest.mark.db
def test_unknown_malformed_and_expired_codes_are_refused(uow: UnitOfWork, citizen: Citizen, clock: FrozenClock) -> None:
    _download, issued = issue(uow, citizen, clock.now())
    with pytest.raises(DocumentNotFound):
        downloads.verify_document(uow, "2222-3333-4444", now=clock.now())
    with pytest.raises(DocumentNotFound):
        downloads.verify_document(uow, "<script>", now=clock.now())
    downloads.find_document(uow, issued.header.code, now=clock.now() + dt.timedelta(days=30, seconds=-1))
    with pytest.raises(DocumentExpired):
        downloads.verify_document(uow, issued.header.code, now=clock.now() + dt.timedelta(days=30))


@pytest.mark.db
def test_datasets_above_the_level_ask_for_a_step_up_and_bad_choices_are_refused(uow: UnitOfWork) -> None:
    assert downloads.select_datasets(uow, ("nhi.enrolment",), "low").step_up is None
    assert downloads.select_datasets(uow, ("nhi.enrolment", "tax.income"), "low").step_up == "substantial"
    assert downloads.select_datasets(uow, ("tax.income",), "high").step_up is None
    with pytest.raises(DownloadInvalid):
        downloads.select_datasets(uow, ("no.such",), "high")
    for bad in ([], [""], ["Tax.Income"], ["a" * 200 + ".b"]):
        with pytest.raises(DownloadInvalid):
            downloads.parse_datasets(bad)
    assert downloads.parse_datasets(["tax.income,nhi.enrolment", "tax.income"]) == ("tax.income", "nhi.enrolment")
    with pytest.raises(DownloadInvalid):
        downloads.check_format("docx")


def test_csv_files_start_with_a_bom_and_quote_formulas(clock: FrozenClock) -> None:
    header = DocumentHeader("d1", "23456789ABCD", clock.now(), clock.now() + downloads.VALIDITY)
    result = FetchResult("nhi.enrolment", "nhia", Outcome.OK, "e30.x.y", DATA, "2026-05-01T08:00:00Z")
    entry = DatasetEntry(
        "nhi.enrolment", "健保投保資料", "NHI", "", "", "nhia", "nhia", "健保署", "NHIA", "low", True, 1
    )
    download = Download("d1", (entry,), {"nhi.enrolment": result}, clock.now())
    body, media_type = documents.render_csv(download, header, verify_url="v", columns=("欄位", "內容"))
    assert media_type == "text/csv; charset=utf-8"
    text = body.decode("utf-8")
    assert text.startswith("\ufeff欄位,內容\r\n")
    assert "insured.name,王小明\r\n" in text
    assert "note,'=HYPERLINK()" in text


def test_roc_dates_and_money(app: Flask) -> None:
    with app.test_request_context("/"):
        assert roc_date("1988-05-20") == "民國77年5月20日"
        assert roc_date(None) == "—"
        assert money(875000) == "NT$ 875,000"
        assert money(None) == "—"
    with app.test_request_context("/?lang=en"):
        assert roc_date("1988-05-20") == "1988-05-20 (ROC 77)"


# -- pages ----------------------------------------------------------------------------------------


@pytest.mark.db
def test_a_low_session_is_offered_a_step_up_that_comes_back_to_the_choice(
    app: Flask, client: FlaskClient, uow: UnitOfWork, login_as: LoginAs
) -> None:
    uow.commit()
    login_as(NATIONAL_ID, method="nhi_card")
    page = client.get("/me/data")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "/login?next=/me/data?datasets%3Dtax.income&amp;level=substantial" in page.text
    assert 'value="nhi.enrolment"' in page.text
    assert 'value="tax.income"' not in page.text
    refused = client.get("/me/data/download?datasets=tax.income&format=pdf")
    assert refused.status_code == 303
    assert "level=substantial" in refused.headers["Location"]


@pytest.mark.db
def test_the_verify_page_is_rate_limited_and_never_stored(
    app: Flask, client: FlaskClient, uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    _download, issued = issue(uow, citizen, clock.now())
    uow.commit()
    app.config["VERIFY_RATE_LIMIT"] = "2 per minute"
    limiter.reset()
    first = client.get(f"/verify/{issued.header.display_code}")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-store"
    assert "王小明" not in first.text
    assert NATIONAL_ID not in first.text
    unknown = client.get("/verify/2222-3333-4444")
    assert unknown.status_code == 404
    assert "沒有文件使用這個驗證碼" in unknown.text
    refused = client.get(f"/verify/{issued.header.display_code}")
    assert refused.status_code == 429
    assert "Retry-After" in refused.headers
    limiter.reset()


@pytest.mark.db
def test_an_expired_document_gets_a_clear_page(
    app: Flask, client: FlaskClient, uow: UnitOfWork, citizen: Citizen, clock: FrozenClock
) -> None:
    _download, issued = issue(uow, citizen, clock.now())
    uow.commit()
    limiter.reset()
    clock.advance(31 * 86400)
    page = client.get(f"/verify/{issued.header.display_code}")
    assert page.status_code == 410
    assert "這份文件已無法驗證" in page.text
    assert uow.session.scalars(select(Document)).first() is not None
