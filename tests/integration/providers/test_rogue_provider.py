"""A provider that misbehaves: the client names every wrong answer and never accepts one.

The rogue provider holds bli's registered key, so that only the checks after the signature (claims,
typ, media type, size) can catch what it does wrong, or it lies about its algorithm.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from flask import Flask, Response, request

from mydata.clock import FrozenClock
from mydata.db import get_db
from providers import services
from providers.protocol import RESPONSE_TYP, Outcome
from providers.sandbox.keys import AgencyKey, agency_keys_dir, load_agency_key

from .conftest import Fetch, RunningAgencies, serve

pytestmark = pytest.mark.db

WANG = "A123456789"
DATA = {"anything": "the schema will not be reached"}


@dataclass
class Rogue:
    """What the rogue provider answers: ``behave(query claims) -> Response``."""

    key: AgencyKey
    behave: Callable[[dict[str, Any]], Response]

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        headers = {"kid": self.key.kid, "typ": RESPONSE_TYP} | header
        headers = {k: v for k, v in headers.items() if v is not None}
        return jwt.encode(claims, self.key.private_key, algorithm="ES256", headers=headers)


@pytest.fixture
def rogue(app: Flask, agencies: RunningAgencies) -> Iterator[Rogue]:
    key = load_agency_key(agency_keys_dir(app.config["MYDATA_SETTINGS"].instance_path), "bli")
    assert key is not None
    rogue = Rogue(key=key, behave=lambda claims: Response(status=500))
    rogue_app = Flask("rogue")

    @rogue_app.post("/mydata/v1/query")
    def query() -> Response:
        return rogue.behave(jwt.decode(request.get_data(as_text=True), options={"verify_signature": False}))

    with serve(rogue_app) as url:
        with app.app_context(), get_db().unit_of_work() as uow:
            services.update_provider(uow, "bli", base_url=url, allow_http=True, actor="test")
        yield rogue


def answer(claims: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The claims of a correct answer to *claims*, with *changes* (None removes a claim)."""
    correct = {
        "iss": "bli",
        "dataset": claims["dataset"],
        "sub": claims["sub"],
        "txn": claims["txn"],
        "generated_at": "2026-05-01T09:00:00+08:00",
        "data": DATA,
    }
    return {k: v for k, v in (correct | changes).items() if v is not None}


def jose(token: str) -> Response:
    return Response(token, mimetype="application/jose")


def forged(claims: dict[str, Any], alg: str, kid: str = "bli-key") -> str:
    """A correct answer under a header naming *alg*, with no real signature."""
    header = jwt.utils.base64url_encode(json.dumps({"alg": alg, "kid": kid, "typ": RESPONSE_TYP}).encode())
    payload = jwt.utils.base64url_encode(json.dumps(answer(claims)).encode())
    signature = b"" if alg == "none" else jwt.utils.base64url_encode(b"not a signature")
    return b".".join((header, payload, signature)).decode()


CASES: list[tuple[str, Callable[[Rogue, dict[str, Any]], Response], Outcome, str]] = [
    ("other txn", lambda r, c: jose(r.sign(answer(c, txn="txn-other"))), Outcome.PROTOCOL_ERROR, "claim_mismatch:txn"),
    (
        "other person",
        lambda r, c: jose(r.sign(answer(c, sub="B223456782"))),
        Outcome.PROTOCOL_ERROR,
        "claim_mismatch:sub",
    ),
    (
        "other dataset",
        lambda r, c: jose(r.sign(answer(c, dataset="tax.income"))),
        Outcome.PROTOCOL_ERROR,
        "claim_mismatch:dataset",
    ),
    ("other issuer", lambda r, c: jose(r.sign(answer(c, iss="nhia"))), Outcome.PROTOCOL_ERROR, "claim_mismatch:iss"),
    (
        "no generated_at",
        lambda r, c: jose(r.sign(answer(c, generated_at=None))),
        Outcome.PROTOCOL_ERROR,
        "missing_claim:generated_at",
    ),
    (
        "naive generated_at",
        lambda r, c: jose(r.sign(answer(c, generated_at="2026-05-01T09:00:00"))),
        Outcome.PROTOCOL_ERROR,
        "generated_at",
    ),
    ("no data", lambda r, c: jose(r.sign(answer(c, data=None))), Outcome.PROTOCOL_ERROR, "missing_claim:data"),
    ("no typ", lambda r, c: jose(r.sign(answer(c), typ=None)), Outcome.PROTOCOL_ERROR, "typ"),
    ("alg none", lambda r, c: jose(forged(c, "none")), Outcome.BAD_SIGNATURE, "alg:none"),
    ("alg HS256", lambda r, c: jose(forged(c, "HS256")), Outcome.BAD_SIGNATURE, "alg:HS256"),
    ("unknown kid", lambda r, c: jose(forged(c, "ES256", kid="someone-else")), Outcome.BAD_SIGNATURE, "unknown_kid"),
    ("forged ES256", lambda r, c: jose(forged(c, "ES256", kid=r.key.kid)), Outcome.BAD_SIGNATURE, "signature"),
    (
        "PS256 claimed for an EC key",
        lambda r, c: jose(forged(c, "PS256", kid=r.key.kid)),
        Outcome.BAD_SIGNATURE,
        "alg_does_not_match_key",
    ),
    (
        "payload not JSON",
        lambda r, c: jose(
            jwt.api_jws.encode(b"not json", r.key.private_key, "ES256", headers={"kid": r.key.kid, "typ": RESPONSE_TYP})
        ),
        Outcome.PROTOCOL_ERROR,
        "payload_not_json",
    ),
    ("not a JWS", lambda r, c: jose("definitely not a token"), Outcome.PROTOCOL_ERROR, "not_compact_jws"),
    (
        "header not JSON",
        lambda r, c: jose("bm90IGpzb24." + r.sign(answer(c)).split(".", 1)[1]),
        Outcome.PROTOCOL_ERROR,
        "jws_header",
    ),
    (
        "header not an object",
        lambda r, c: jose("WzFd." + r.sign(answer(c)).split(".", 1)[1]),
        Outcome.PROTOCOL_ERROR,
        "jws_header",
    ),
    (
        "header with junk characters",
        lambda r, c: jose("!!!!" + r.sign(answer(c))),  # readable to pick a key, refused when verified
        Outcome.PROTOCOL_ERROR,
        "jws",
    ),
    (
        "JSON instead of JOSE",
        lambda r, c: Response(r.sign(answer(c)), mimetype="application/json"),
        Outcome.PROTOCOL_ERROR,
        "content_type:application/json",
    ),
    (
        "HTML 404",
        lambda r, c: Response("<h1>Not found</h1>", status=404, mimetype="text/html"),
        Outcome.PROTOCOL_ERROR,
        "http_404",
    ),
    (
        "redirect",
        lambda r, c: Response(status=302, headers={"Location": "https://elsewhere.example/"}),
        Outcome.PROTOCOL_ERROR,
        "http_302",
    ),
    (
        "401",
        lambda r, c: Response('{"error": "invalid_query"}', status=401, mimetype="application/json"),
        Outcome.PROTOCOL_ERROR,
        "http_401",
    ),
    ("502", lambda r, c: Response(status=502), Outcome.UNAVAILABLE, "http_502"),
    ("too large", lambda r, c: jose("x" * (3 * 1024 * 1024)), Outcome.PROTOCOL_ERROR, "answer_too_large"),
]


@pytest.mark.parametrize(("behaviour", "outcome", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_wrong_answers_are_never_accepted(
    rogue: Rogue, fetch: Fetch, behaviour: Callable[[Rogue, dict[str, Any]], Response], outcome: Outcome, detail: str
) -> None:
    rogue.behave = lambda claims: behaviour(rogue, claims)
    result = fetch(WANG, ["labor.insurance"])["labor.insurance"]
    assert (result.outcome, result.detail) == (outcome, detail)
    assert result.data is None
    assert result.provider_jws is None


def test_a_correct_answer_from_the_same_server_is_accepted(rogue: Rogue, fetch: Fetch) -> None:
    # The control case: the same key and server, nothing wrong except data the schema refuses.
    rogue.behave = lambda claims: jose(rogue.sign(answer(claims)))
    result = fetch(WANG, ["labor.insurance"])["labor.insurance"]
    assert result.outcome is Outcome.SCHEMA_VIOLATION


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_retry_after_is_carried_in_seconds(rogue: Rogue, fetch: Fetch, clock: FrozenClock, form: str) -> None:
    when = clock.now().replace(microsecond=0) + dt.timedelta(seconds=90)
    value = "90" if form == "seconds" else email.utils.format_datetime(when, usegmt=True)
    rogue.behave = lambda claims: Response(status=429, headers={"Retry-After": value})
    result = fetch(WANG, ["labor.insurance"])["labor.insurance"]
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.detail == "http_429"
    assert result.retry_after in (89, 90)


def test_an_unreachable_provider_is_unavailable(app: Flask, agencies: RunningAgencies, fetch: Fetch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with app.app_context(), get_db().unit_of_work() as uow:
        services.update_provider(uow, "nhia", base_url=f"http://127.0.0.1:{closed}", allow_http=True, actor="t")
    result = fetch(WANG, ["nhi.enrolment"])["nhi.enrolment"]
    assert (result.outcome, result.detail) == (Outcome.UNAVAILABLE, "connection_failed")


class Dribbler:
    """A provider that sends its answer one byte at a time, each byte well within the socket timeout."""

    def __init__(self, total: int = 400, pause: float = 0.02) -> None:
        self.total = total
        self.pause = pause
        self.sent = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            connection.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/jose\r\nContent-Length: {self.total}\r\n\r\n"
            try:
                connection.sendall(head.encode())
                for _ in range(self.total):
                    connection.sendall(b"x")
                    self.sent += 1
                    time.sleep(self.pause)
            except OSError:
                return  # the client hung up


def test_a_dribbling_provider_cannot_hold_a_worker_past_the_deadline(
    app: Flask, agencies: RunningAgencies, fetch: Fetch
) -> None:
    dribbler = Dribbler()
    with app.app_context(), get_db().unit_of_work() as uow:
        services.update_provider(uow, "nhia", base_url=dribbler.url, allow_http=True, actor="t")
    result = fetch(WANG, ["nhi.enrolment"])["nhi.enrolment"]
    assert result.outcome is Outcome.TIMEOUT
    # Waits for the worker: it gave up (and hung up) long before the whole answer was sent.
    services.provider_client(app).close()
    dribbler.thread.join()
    assert dribbler.sent < dribbler.total
    dribbler.listener.close()
