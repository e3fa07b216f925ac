"""The public ledger API (``consent.api``), checked the way an outside auditor would check it."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import event, text
from sqlalchemy.engine import Connection

from consent import merkle
from consent.ledger import LedgerEvent, ledger, sign_tree_head
from mydata.clock import FrozenClock
from mydata.db import UnitOfWork, get_db
from mydata.errors import MydataError
from mydata.keys import key_store
from mydata.limits import limiter

pytestmark = pytest.mark.db

EventFactory = Callable[..., LedgerEvent]


@pytest.fixture
def appended(uow: UnitOfWork, granted: EventFactory) -> int:
    """Append ten committed entries; return how many."""
    log = ledger(uow)
    for n in range(10):
        log.append(granted(n))
    uow.commit()
    return 10


@pytest.fixture
def keys(uow: UnitOfWork) -> dict[str, Any]:
    """Return the platform's public keys by kid (what /oauth/jwks publishes)."""
    found = {jwk["kid"]: jwt.PyJWK(jwk).key for jwk in key_store(uow).jwks()["keys"]}
    # From here on only HTTP requests touch the database, as for an outside auditor.
    uow.commit()
    return found


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _verified_payload(keys: dict[str, Any], token: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["typ"]) == ("ES256", "mydata-sth+json")
    payload: dict[str, Any] = json.loads(jwt.api_jws.decode(token, keys[header["kid"]], algorithms=["ES256"]))
    return payload


def _root_from_entries(client: FlaskClient, end: int) -> bytes:
    entries = client.get(f"/ledger/entries?start=0&end={end - 1}").json["entries"]
    return merkle.InMemoryTree(_b64(e["leaf_input"]) for e in entries).root()


def test_signed_tree_head_is_the_newest_one_signed(
    app: Flask, client: FlaskClient, appended: int, keys: dict[str, Any], clock: FrozenClock
) -> None:
    first = client.get("/ledger/sth")
    assert first.status_code == 200
    body = first.json
    assert set(body) == {"tree_size", "root_hash", "timestamp", "jws"}
    assert _verified_payload(keys, body["jws"]) == {k: body[k] for k in ("tree_size", "root_hash", "timestamp")}
    assert body["tree_size"] == 1  # the first append signed; the other nine wait at most 300 s
    clock.advance(300)
    assert client.get("/ledger/sth").json == body  # a read signs nothing, however long entries wait
    _sign_if_due(app)  # what `mydata ledger sign --if-due` on a timer does
    fresh = client.get("/ledger/sth").json
    assert _verified_payload(keys, fresh["jws"])["tree_size"] == appended
    assert _b64(fresh["root_hash"]) == _root_from_entries(client, appended)
    assert fresh["timestamp"].endswith("Z")


def _sign_if_due(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        assert sign_tree_head(uow, only_if_due=True) is not None


def test_every_signed_tree_head_is_listed_oldest_first(
    app: Flask, client: FlaskClient, appended: int, clock: FrozenClock
) -> None:
    clock.advance(300)
    _sign_if_due(app)
    heads = client.get("/ledger/sths").json["sths"]
    assert [h["tree_size"] for h in heads] == [1, appended]
    assert client.get("/ledger/sths?start=1&limit=1").json["sths"] == heads[1:]
    assert client.get("/ledger/sths?start=5").json == {"sths": []}


def test_entries_carry_the_exact_hashed_bytes(client: FlaskClient, appended: int) -> None:
    body = client.get("/ledger/entries?start=2&end=20").json
    assert [e["seq"] for e in body["entries"]] == list(range(2, appended))
    for item in body["entries"]:
        raw = _b64(item["leaf_input"])
        assert json.loads(raw) == item["entry"]
        assert item["entry"]["seq"] == item["seq"]
        assert b"A123456789" not in raw
        leaf = client.get(f"/ledger/proof/inclusion?seq={item['seq']}&tree_size={appended}").json["leaf_hash"]
        assert _b64(leaf) == hashlib.sha256(b"\x00" + raw).digest()


def test_proofs_verify_against_signed_roots(app: Flask, client: FlaskClient, appended: int, clock: FrozenClock) -> None:
    old = client.get("/ledger/sth").json
    clock.advance(300)
    _sign_if_due(app)
    new = client.get("/ledger/sth").json
    old_root, new_root = _b64(old["root_hash"]), _b64(new["root_hash"])
    for seq in range(appended):
        proof = client.get(f"/ledger/proof/inclusion?seq={seq}&tree_size={new['tree_size']}").json
        assert (proof["seq"], proof["tree_size"]) == (seq, new["tree_size"])
        path = [_b64(node) for node in proof["audit_path"]]
        assert merkle.verify_inclusion(_b64(proof["leaf_hash"]), seq, new["tree_size"], path, new_root)
    consistency = client.get(f"/ledger/proof/consistency?first={old['tree_size']}&second={new['tree_size']}").json
    assert (consistency["first"], consistency["second"]) == (old["tree_size"], new["tree_size"])
    path = [_b64(node) for node in consistency["consistency_path"]]
    assert merkle.verify_consistency(old["tree_size"], new["tree_size"], old_root, new_root, path)


@pytest.mark.parametrize(
    ("url", "mentions"),
    [
        ("/ledger/entries", "start"),
        ("/ledger/entries?start=0", "end"),
        ("/ledger/entries?start=a&end=2", "start"),
        ("/ledger/entries?start=-1&end=2", "start"),
        ("/ledger/entries?start=5&end=2", "end"),
        ("/ledger/entries?start=0&end=1000", "1000"),
        ("/ledger/entries?start=10&end=12", "10 entries"),
        ("/ledger/entries?start=1.5&end=2", "start"),
        (f"/ledger/entries?start={2**70}&end={2**70}", "start"),
        ("/ledger/proof/inclusion?seq=0", "tree_size"),
        ("/ledger/proof/inclusion?seq=0&tree_size=0", "tree_size"),
        ("/ledger/proof/inclusion?seq=0&tree_size=11", "current tree size 10"),
        ("/ledger/proof/inclusion?seq=10&tree_size=10", "seq"),
        ("/ledger/proof/inclusion?seq=x&tree_size=10", "seq"),
        ("/ledger/proof/consistency?first=3", "second"),
        ("/ledger/proof/consistency?first=4&second=3", "second"),
        ("/ledger/proof/consistency?first=0&second=11", "beyond"),
        ("/ledger/proof/consistency?first=-2&second=3", "first"),
        ("/ledger/sths?limit=0", "limit"),
        ("/ledger/sths?limit=1001", "limit"),
        ("/ledger/sths?start=-1", "start"),
    ],
)
def test_bad_parameters_get_a_reason(client: FlaskClient, appended: int, url: str, mentions: str) -> None:
    response = client.get(url)
    assert response.status_code == 400, response.json
    assert response.json["error"] == "invalid_request"
    assert mentions in response.json["error_description"]


def test_empty_log(app: Flask, client: FlaskClient, keys: dict[str, Any]) -> None:
    unsigned = client.get("/ledger/sth")
    assert unsigned.status_code == 503
    assert unsigned.json["error"] == "no_signed_tree_head"
    assert "mydata ledger sign" in unsigned.json["error_description"]
    assert int(unsigned.headers["Retry-After"]) > 0
    assert client.get("/ledger/sths").json == {"sths": []}
    assert client.get("/ledger/entries?start=0&end=0").status_code == 400
    assert client.get("/ledger/proof/consistency?first=0&second=0").json["consistency_path"] == []
    _sign_if_due(app)
    head = client.get("/ledger/sth").json
    assert head["tree_size"] == 0
    assert _b64(head["root_hash"]) == hashlib.sha256(b"").digest()


def test_a_fresh_sandbox_serves_a_signed_tree_head(app: Flask, client: FlaskClient) -> None:
    steps = dict(app.extensions["mydata.seeders"])
    for _ in range(2):  # seeding is safe to run again
        with app.app_context(), get_db().unit_of_work() as uow:
            steps["platform signing key"](uow)
            steps["ledger: first signed tree head"](uow)
    assert client.get("/ledger/sth").json["tree_size"] == 0
    assert len(client.get("/ledger/sths").json["sths"]) == 1


def test_reading_needs_no_signing_key(client: FlaskClient) -> None:
    response = client.get("/ledger/sth")
    assert response.status_code == 503
    assert response.json["error"] == "no_signed_tree_head"


def test_signing_without_a_key_names_the_command(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow, pytest.raises(MydataError) as refused:
        sign_tree_head(uow)
    assert refused.value.status == 503
    assert "mydata keys rotate" in refused.value.description


LEDGER_READS = (
    "/ledger/sth",
    "/ledger/sths",
    "/ledger/entries?start=0&end=9",
    "/ledger/proof/inclusion?seq=3&tree_size=10",
    "/ledger/proof/consistency?first=1&second=10",
)


def test_reading_the_ledger_writes_nothing(
    client: FlaskClient, appended: int, keys: dict[str, Any], clock: FrozenClock, db_connection: Connection
) -> None:
    clock.advance(3600)  # nine entries have waited far longer than ledger_sth_every_seconds
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    count = text("SELECT (SELECT count(*) FROM consent_signed_tree_head), (SELECT count(*) FROM consent_ledger_entry)")
    before = db_connection.execute(count).one()
    event.listen(db_connection, "before_cursor_execute", record)
    try:
        assert [client.get(url).status_code for url in LEDGER_READS] == [200] * len(LEDGER_READS)
    finally:
        event.remove(db_connection, "before_cursor_execute", record)
    assert db_connection.execute(count).one() == before
    writes = [s for s in statements if re.match(r"\s*(INSERT|UPDATE|DELETE|WITH)\b", s, re.IGNORECASE)]
    assert writes == []
    assert statements  # the reads were watched


def test_the_public_ledger_is_rate_limited_per_client_address(app: Flask, appended: int) -> None:
    app.config["LEDGER_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    client = app.test_client()
    assert [client.get(url).status_code for url in LEDGER_READS[:3]] == [200, 200, 200]
    for url in LEDGER_READS:  # one limit shared by every /ledger route
        refused = client.get(url)
        assert refused.status_code == 429
        assert refused.json["error"] == "too_many_requests"
        assert 0 < int(refused.headers["Retry-After"]) <= 60
    other = app.test_client().get("/ledger/sth", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


def test_the_default_ledger_limit_lets_an_auditor_page_through(app: Flask, appended: int) -> None:
    limiter.reset()
    client = app.test_client()
    assert {client.get(LEDGER_READS[2]).status_code for _ in range(100)} == {200}


def test_the_api_is_in_the_openapi_document(app: Flask, client: FlaskClient) -> None:
    document = client.get("/openapi.json").json
    validate(document)
    for path in (
        "/ledger/sth",
        "/ledger/sths",
        "/ledger/entries",
        "/ledger/proof/inclusion",
        "/ledger/proof/consistency",
    ):
        operation = document["paths"][path]["get"]
        assert "ledger" in operation["tags"]
        assert {"200", "429"} <= set(operation["responses"])
    parameters = {p["name"] for p in document["paths"]["/ledger/proof/inclusion"]["get"]["parameters"]}
    assert parameters == {"seq", "tree_size"}
