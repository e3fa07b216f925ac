"""The usage history pages (DESIGN §6.4, issue 11 acceptance 3): list, filters, exports, verification, proof bundle.

The proof bundle is checked by an independent verifier written here from RFC 9162 §2.1.1 and
§2.1.3.2, the commitment formula of DESIGN §6.3 and PyJWT: it imports none of the ledger's code.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import jwt
import pytest
import rfc8785
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from consent import consents, sweeper
from consent.ledger import LedgerEvent, ledger
from consent.models import LedgerEntry
from identity.sessions import Authentication
from mydata.clock import FrozenClock
from mydata.db import get_db
from mydata.keys import key_store
from providers.sandbox.seed import seed_sandbox_catalogue
from relying_parties.sandbox.seed import seed_sandbox_relying_parties
from tests.factories.consent import TERMS
from tests.factories.identity import LoginAs, text

pytestmark = pytest.mark.db

NATIONAL_ID = "A123456789"
OTHER = "B223456782"


def grant_and_deliver(app: Flask, clock: FrozenClock, citizen_id: str, national_id: str, deliver: bool = True) -> str:
    """Run one consent of the sandbox bank from request to delivery; return its id."""
    with app.app_context(), get_db().unit_of_work() as uow:
        consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=TERMS, now=clock.now())
        consents.grant(uow, consent.id, citizen_id=citizen_id, national_id=national_id,
                       optional_chosen=("tax.property",), amr=["hwk"], now=clock.now())  # fmt: skip
        uow.commit()
        if deliver:
            claimed = consents.claim_for_delivery(uow, consent.id, national_id=national_id, now=clock.now())
            consents.complete_delivery(uow, claimed, national_id=national_id, outcomes={"tax.income": "ok"},
                                       document_hashes={"tax.income": "ab" * 32}, now=clock.now())  # fmt: skip
            uow.commit()
        return consent.id


def record(app: Flask, event: LedgerEvent) -> int:
    """Append one event (a download, a verification) and return its seq."""
    with app.app_context(), get_db().unit_of_work() as uow:
        seq = ledger(uow).append(event).seq
        uow.commit()
        return seq


@pytest.fixture
def citizen(app: Flask, clock: FrozenClock, login_as: LoginAs, tmp_path: Path) -> Authentication:
    """Log persona 1 in; the sandbox catalogue and relying parties, and one consent delivered to the bank."""
    with app.app_context(), get_db().unit_of_work() as uow:
        seed_sandbox_catalogue(uow, keys_dir=tmp_path / "agency-keys", agencies_url="http://localhost/agencies")
        key_store(uow).rotate()
        seed_sandbox_relying_parties(uow, keys_dir=tmp_path / "rp-keys", issuer="http://localhost")
        uow.commit()
    authentication = login_as(NATIONAL_ID, method="eid")
    grant_and_deliver(app, clock, authentication.citizen_id, NATIONAL_ID)
    return authentication


def download_event(n: int = 1, national_id: str = NATIONAL_ID) -> LedgerEvent:
    """Return the ledger event of a self-download (the data engineer's event type, its case a download id)."""
    return LedgerEvent(event="download.completed", actor="citizen", subject_national_id=national_id,
                       datasets=("labor.insurance",), consent_id=f"download-{n:04d}")  # fmt: skip


def seqs(page: str) -> list[int]:
    """Return the entry numbers the history page links to, in page order."""
    return [int(seq) for seq in re.findall(r'href="/me/history/(\d+)"', page)]


# -- the list ---------------------------------------------------------------------------------------


def test_history_lists_an_rp_delivery_in_words_newest_first(client: FlaskClient, citizen: Authentication) -> None:
    response = client.get("/me/history?lang=en")
    assert response.status_code == 200
    page = text(response)
    listed = page.split('<ol class="history-list">', 1)[1]
    assert listed.index("Your data was sent to the recipient") < listed.index("You agreed to share your data")
    assert "Sandbox Bank, for Credit card application" in page
    assert "Income data for individual income tax" in page
    assert "tax.income" not in page.split("<ol", 1)[1].split("</ol>", 1)[0], "datasets are named by title"
    assert TERMS.purpose in page
    assert "Completed" in page
    assert len(seqs(page)) == 2
    assert seqs(page)[0] > seqs(page)[1]
    assert response.headers["Cache-Control"] == "no-store"


def test_history_is_in_chinese_by_default(client: FlaskClient, citizen: Authentication) -> None:
    page = text(client.get("/me/history"))
    assert "使用紀錄" in page
    assert "您的資料已傳送給接收者" in page
    assert "（臺灣時間）" in page


def test_downloads_verifications_and_unknown_events_show_in_their_own_words(
    app: Flask, client: FlaskClient, citizen: Authentication
) -> None:
    record(app, download_event())
    record(app, LedgerEvent(event="document.verified", actor="public", subject_national_id=NATIONAL_ID,
                            datasets=("labor.insurance",), consent_id="download-0001"))  # fmt: skip
    # An event type this page does not know yet (written as a version 1 entry, which needs no case).
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        key = log.subject_key(NATIONAL_ID)
        entry = {"version": 1, "seq": log.tree_head().tree_size, "time": "2026-11-30T08:00:00.000Z",
                 "event": "pension.estimated", "subject": key, "actor": "labor-agency", "service": None,
                 "datasets": [], "outcome": "ok", "consent_id": None, "document_hashes": {}}  # fmt: skip
        log.append_raw(rfc8785.dumps(entry), subject=key)
        uow.commit()
    page = text(client.get("/me/history?lang=en"))
    assert "You downloaded your data" in page
    assert "Someone checked a document you downloaded" in page
    assert "Recorded event: pension.estimated" in page


def test_a_consent_the_sweeper_expired_says_it_was_never_delivered(
    app: Flask, client: FlaskClient, citizen: Authentication, clock: FrozenClock
) -> None:
    consent_id = grant_and_deliver(app, clock, citizen.citizen_id, NATIONAL_ID, deliver=False)
    clock.advance(600)
    with app.app_context():
        assert sweeper.sweep(get_db(), clock).granted == 1
    english = client.get("/me/history?lang=en")
    assert english.status_code == 200
    listed = text(english).split('<ol class="history-list">', 1)[1]
    assert "Your consent expired; your data was never delivered" in listed
    assert listed.index("never delivered") < listed.index("You agreed to share your data")
    assert "The platform, for Sandbox Bank" in listed
    chinese = text(client.get("/me/history?lang=zh_Hant_TW")).split('<ol class="history-list">', 1)[1]
    assert "您的同意已逾期，資料從未傳送" in chinese
    # The entry is the citizen's: its case's opening is handed out with it, like every other entry of the case.
    exported = client.get("/me/history?format=json&event=consent.expired&lang=en").json
    (expiry,) = [e for e in exported["events"] if e["consent_id"] == consent_id]
    assert expiry["outcome"] == "expired"
    assert expiry["opening"] is not None


def test_the_history_needs_a_login(client: FlaskClient) -> None:
    for path in ("/me/history", "/me/history?format=csv", "/me/history/0", "/me/history/0/bundle.json"):
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith(f"/login?next={path.split('?')[0]}"), path
    program = client.get("/me/history/0/bundle.json", headers={"Accept": "application/json"})
    assert program.status_code == 401
    assert program.json["error"] == "login_required"


# -- filters, pagination, exports -------------------------------------------------------------------


def test_filters_by_dataset_event_recipient_and_date(
    app: Flask, client: FlaskClient, citizen: Authentication, clock: FrozenClock
) -> None:
    record(app, download_event())
    assert len(seqs(client.get("/me/history").get_data(as_text=True))) == 3
    assert len(seqs(client.get("/me/history?dataset=labor.insurance").get_data(as_text=True))) == 1
    assert len(seqs(client.get("/me/history?dataset=tax.income").get_data(as_text=True))) == 2
    assert len(seqs(client.get("/me/history?event=delivery.completed").get_data(as_text=True))) == 1
    assert len(seqs(client.get("/me/history?recipient=sandbox-bank").get_data(as_text=True))) == 2
    assert seqs(client.get("/me/history?recipient=sandbox-school").get_data(as_text=True)) == []
    today = clock.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    day = dt.timedelta(days=1)
    assert len(seqs(client.get(f"/me/history?since={today}&until={today}").get_data(as_text=True))) == 3
    assert seqs(client.get(f"/me/history?since={today + day}").get_data(as_text=True)) == []
    assert seqs(client.get(f"/me/history?until={today - day}").get_data(as_text=True)) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "must be a date such as"),
        ("until=2026-13-45", "must be a date such as"),
        ("since=2026-12-02&until=2026-12-01", "must not be before"),
        ("page=0", "page number"),
        ("format=xml", "CSV or JSON"),
    ],
)
def test_invalid_filters_are_explained_not_a_500(
    client: FlaskClient, citizen: Authentication, query: str, message: str
) -> None:
    response = client.get(f"/me/history?lang=en&{query}")
    assert response.status_code == 400
    page = text(response)
    assert "There is a problem" in page
    assert message in page


def test_an_export_with_invalid_filters_is_refused(client: FlaskClient, citizen: Authentication) -> None:
    response = client.get("/me/history?format=csv&since=soon", headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.json["error"] == "invalid_history_query"


def test_pages_of_twenty_with_previous_and_next(app: Flask, client: FlaskClient, citizen: Authentication) -> None:
    for n in range(25):
        record(app, download_event(n))
    first = client.get("/me/history?lang=en&dataset=labor.insurance").get_data(as_text=True)
    assert len(seqs(first)) == 20
    assert 'rel="next"' in first
    assert 'rel="prev"' not in first
    assert "Page 1 of 2" in first
    second = client.get("/me/history?lang=en&dataset=labor.insurance&page=2").get_data(as_text=True)
    assert len(seqs(second)) == 5
    assert 'rel="prev"' in second
    assert 'rel="next"' not in second
    assert "dataset=labor.insurance" in second.split('rel="prev"', 1)[1].split(">", 1)[0]
    assert set(seqs(first)).isdisjoint(seqs(second))


def test_csv_export_of_the_filtered_set_is_utf8_with_bom(
    app: Flask, client: FlaskClient, citizen: Authentication
) -> None:
    record(app, download_event())
    response = client.get("/me/history?format=csv&recipient=sandbox-bank")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert len(rows) == 3  # the header, the delivery and the grant; not the download
    assert [row[2] for row in rows[1:]] == ["delivery.completed", "consent.granted"]
    assert rows[1][3] == "您的資料已傳送給接收者"
    assert rows[1][4] == "沙盒銀行，信用卡線上申辦"
    assert TERMS.purpose in rows[1]
    assert rows[1][1].endswith("+08:00")


def test_json_export_of_the_filtered_set(app: Flask, client: FlaskClient, citizen: Authentication) -> None:
    record(app, download_event())
    response = client.get("/me/history?format=json&event=download.completed")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    events = json.loads(response.get_data())["events"]
    assert [e["event"] for e in events] == ["download.completed"]
    assert events[0]["datasets"] == ["labor.insurance"]
    assert events[0]["opening"]["scheme"] == "mydata-subject-v1"


# -- verifying an entry -----------------------------------------------------------------------------


def newest_seq(client: FlaskClient) -> int:
    return seqs(client.get("/me/history").get_data(as_text=True))[0]


def test_an_entry_verifies_on_its_page(client: FlaskClient, citizen: Authentication) -> None:
    seq = newest_seq(client)
    response = client.get(f"/me/history/{seq}?lang=en")
    assert response.status_code == 200
    page = text(response)
    assert "This entry verified" in page
    assert "FAILED" not in page
    assert page.count("Passed") == 4
    assert '"event":"delivery.completed"' in page  # the canonical JSON, as published
    assert NATIONAL_ID not in page.split("<pre", 1)[1], "the published entry holds no ID number"
    assert f"/me/history/{seq}/bundle.json" in page
    assert f"/me/history/{seq}/receipt.jws" in page


def test_a_tampered_entry_shows_its_verification_failed(
    app: Flask, client: FlaskClient, citizen: Authentication, db_session: Any
) -> None:
    seq = newest_seq(client)
    stored = db_session.scalar(select(LedgerEntry.leaf_input).where(LedgerEntry.seq == seq))
    forged = bytes(stored).replace(b'"outcome":"ok"', b'"outcome":"no"')
    assert forged != stored
    db_session.execute(update(LedgerEntry).where(LedgerEntry.seq == seq).values(leaf_input=forged))
    db_session.commit()
    page = text(client.get(f"/me/history/{seq}?lang=en"))
    assert "Verification FAILED" in page
    assert re.search(r"The entry is in the ledger\s*:\s*<strong>FAILED", page)
    assert "This entry verified" not in page


def test_someone_elses_entry_is_not_found(
    app: Flask, client: FlaskClient, citizen: Authentication, clock: FrozenClock, login_as: LoginAs
) -> None:
    theirs = record(app, download_event(7, national_id=OTHER))
    assert client.get(f"/me/history/{theirs}").status_code == 404
    assert client.get(f"/me/history/{theirs}/bundle.json").status_code == 404
    assert client.get(f"/me/history/{theirs}/receipt.jws").status_code == 404
    assert client.get("/me/history/0").status_code == 404  # the bank's request: about no one yet
    assert client.get("/me/history/99999").status_code == 404


def test_the_consent_receipt_downloads_from_a_consent_entry(client: FlaskClient, citizen: Authentication) -> None:
    seq = newest_seq(client)
    assert f'href="/me/history/{seq}/receipt.jws"' in client.get("/me/history").get_data(as_text=True)
    response = client.get(f"/me/history/{seq}/receipt.jws")
    assert response.status_code == 200
    assert response.mimetype == "application/jose"
    claims = jwt.decode(response.get_data(as_text=True), options={"verify_signature": False})
    assert claims["purpose"] == TERMS.purpose


# -- the proof bundle, checked independently --------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def rfc9162_inclusion(leaf_index: int, tree_size: int, leaf_hash: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2, step by step."""
    if leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def independently_verify(bundle: dict[str, Any]) -> None:
    """Check a proof bundle with nothing but the procedure of docs/transparency.md."""
    leaf_input = base64.b64decode(bundle["entry"]["leaf_input"])
    entry = json.loads(leaf_input)
    assert entry == bundle["entry"]["parsed"]
    assert entry["seq"] == bundle["entry"]["seq"] == bundle["inclusion_proof"]["leaf_index"]
    opening = bundle["opening"]
    salt = base64.urlsafe_b64decode(opening["salt"] + "=" * (-len(opening["salt"]) % 4))
    message = opening["scheme"].encode() + b"\x00" + opening["national_id"].encode("ascii") + b"\x00" + salt
    assert b64url(hashlib.sha256(message).digest()) == entry["subject"], "the commitment opens"
    leaf_hash = hashlib.sha256(b"\x00" + leaf_input).digest()
    proof = bundle["inclusion_proof"]
    assert base64.b64encode(leaf_hash).decode() == proof["leaf_hash"]
    head = bundle["signed_tree_head"]
    assert proof["tree_size"] == head["tree_size"]
    root = base64.b64decode(head["root_hash"])
    path = [base64.b64decode(p) for p in proof["audit_path"]]
    assert rfc9162_inclusion(proof["leaf_index"], proof["tree_size"], leaf_hash, path, root), "inclusion"
    kid = jwt.get_unverified_header(head["jws"])["kid"]
    (jwk,) = [k for k in bundle["jwks"]["keys"] if k["kid"] == kid]
    signed = jwt.api_jws.decode_complete(head["jws"], jwt.PyJWK(jwk).key, algorithms=["ES256"])
    payload = json.loads(signed["payload"])
    assert payload == {"tree_size": head["tree_size"], "root_hash": head["root_hash"], "timestamp": head["timestamp"]}


def test_a_downloaded_proof_bundle_verifies_independently(
    app: Flask, client: FlaskClient, citizen: Authentication
) -> None:
    record(app, download_event())  # an entry that no signed tree head covers yet
    page = client.get("/me/history").get_data(as_text=True)
    assert len(seqs(page)) == 3
    for seq in seqs(page):
        entry_page = client.get(f"/me/history/{seq}").get_data(as_text=True)
        link = re.search(r'href="(/me/history/\d+/bundle\.json)"', entry_page)
        assert link
        response = client.get(link.group(1))
        assert response.status_code == 200
        assert "attachment" in response.headers["Content-Disposition"]
        assert response.headers["Cache-Control"] == "no-store"
        bundle = json.loads(response.get_data())
        assert bundle["format"] == "mydata-proof-bundle/1"
        assert bundle["opening"]["national_id"] == NATIONAL_ID
        assert bundle["jwks"] == client.get("/oauth/jwks").json, "the keys the platform publishes"
        independently_verify(bundle)


def test_the_independent_verifier_rejects_a_forged_bundle(client: FlaskClient, citizen: Authentication) -> None:
    seq = newest_seq(client)
    bundle = client.get(f"/me/history/{seq}/bundle.json").json
    assert bundle is not None
    independently_verify(bundle)
    forged_entry = json.loads(json.dumps(bundle))
    forged_entry["entry"]["leaf_input"] = base64.b64encode(
        base64.b64decode(bundle["entry"]["leaf_input"]).replace(b'"outcome":"ok"', b'"outcome":"no"')
    ).decode()
    forged_entry["entry"]["parsed"]["outcome"] = "no"
    with pytest.raises(AssertionError):
        independently_verify(forged_entry)
    other_id = json.loads(json.dumps(bundle))
    other_id["opening"]["national_id"] = OTHER
    with pytest.raises(AssertionError, match="commitment"):
        independently_verify(other_id)
    forged_root = json.loads(json.dumps(bundle))
    forged_root["signed_tree_head"]["root_hash"] = base64.b64encode(bytes(32)).decode()
    with pytest.raises(AssertionError):
        independently_verify(forged_root)


def test_a_version_1_entry_verifies_without_an_opening(
    app: Flask, client: FlaskClient, citizen: Authentication
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        log = ledger(uow)
        key = log.subject_key(NATIONAL_ID)
        event = LedgerEvent(event="consent.revoked", actor="citizen", subject_national_id=NATIONAL_ID,
                            service=TERMS.service_id, consent_id="old-consent-1")  # fmt: skip
        entry = {**event.entry(log.tree_head().tree_size, "2026-11-30T08:00:00.000Z", key), "version": 1}
        seq = log.append_raw(rfc8785.dumps(entry), subject=key, consent_id="old-consent-1").seq
        uow.commit()
    page = text(client.get(f"/me/history/{seq}?lang=en"))
    assert "This entry verified" in page
    assert re.search(r"The entry is about you\s*:\s*<strong>Cannot be checked", page)
    assert f"/me/history/{seq}/receipt.jws" not in page  # no such consent here: no receipt
    assert client.get(f"/me/history/{seq}/receipt.jws").status_code == 404
    bundle = client.get(f"/me/history/{seq}/bundle.json").json
    assert bundle["opening"] is None
    assert bundle["entry"]["parsed"]["subject"] == key


def test_the_widest_dates_are_no_error(client: FlaskClient, citizen: Authentication) -> None:
    response = client.get("/me/history?since=0001-01-01&until=9999-12-31")
    assert response.status_code == 200
    assert len(seqs(response.get_data(as_text=True))) == 2


def test_a_relying_partys_text_cannot_become_a_spreadsheet_formula(
    app: Flask, client: FlaskClient, citizen: Authentication, clock: FrozenClock
) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        terms = dataclasses.replace(TERMS, purpose='=HYPERLINK("https://evil.example","信用卡")')
        consent = consents.record_request(uow, client_id="sandbox-bank-web", terms=terms, now=clock.now())
        consents.grant(uow, consent.id, citizen_id=citizen.citizen_id, national_id=NATIONAL_ID,
                       optional_chosen=(), amr=["hwk"], now=clock.now())  # fmt: skip
        uow.commit()
    body = client.get("/me/history?format=csv").get_data().decode("utf-8-sig")
    purposes = [row[6] for row in csv.reader(io.StringIO(body))][1:]
    assert purposes[0] == "'" + terms.purpose
    assert purposes[1] == TERMS.purpose
