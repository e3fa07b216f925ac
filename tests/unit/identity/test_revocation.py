"""Revocation of eID certificates: CRL sources and their cache, OCSP answers, the grace period."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from identity.interfaces import CertificateRejected, RevocationSourceFailed
from identity.revocation import RETRY_AFTER, HttpFetcher, RevocationChecker, read_ocsp_response
from identity.sandbox.pki import Authority, make_authority, make_crl
from tests.factories.identity import SandboxEid, card_certificate

CRL_URL = "http://crl.example/ca.crl"
OCSP_URL = "http://ocsp.example/"
GRACE = dt.timedelta(hours=6)
DAY = dt.timedelta(days=1)

Responder = Callable[[ocsp.OCSPRequest], bytes]


class FakeFetcher:
    """Serve CRL bodies by URL and OCSP answers from a function; count what is asked."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}
        self.responder: Responder | None = None
        self.calls: list[str] = []
        self.down = False

    def get(self, url: str) -> bytes:
        self.calls.append(f"GET {url}")
        if self.down:
            raise RevocationSourceFailed("ConnectionError: connection refused")
        return self.bodies[url]

    def post(self, url: str, body: bytes, content_type: str) -> bytes:
        self.calls.append(f"POST {url}")
        assert content_type == "application/ocsp-request"
        if self.down or self.responder is None:
            raise RevocationSourceFailed("ConnectionError: connection refused")
        return self.responder(ocsp.load_der_ocsp_request(body))


@pytest.fixture
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def ca(sandbox_eid: SandboxEid) -> Authority:
    return sandbox_eid.intermediate


@pytest.fixture
def card(ca: Authority, now: dt.datetime) -> x509.Certificate:
    return card_certificate(ca, "A123456789", "王小明", not_before=now - DAY, not_after=now + 365 * DAY)[0]


@pytest.fixture
def fetcher() -> FakeFetcher:
    return FakeFetcher()


def crl_der(
    issuer: Authority, now: dt.datetime, revoked: dict[int, dt.datetime] | None = None, **kwargs: object
) -> bytes:
    crl = make_crl(issuer, revoked or {}, now, 1, **kwargs)  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.DER)


def crl_checker(fetcher: FakeFetcher, ocsp_url: str = "", sources: tuple[str, ...] = (CRL_URL,)) -> RevocationChecker:
    return RevocationChecker(list(sources), ocsp_url, GRACE, fetcher)


def refusal(checker: RevocationChecker, card: x509.Certificate, ca: Authority, now: dt.datetime) -> str:
    with pytest.raises(CertificateRejected) as refused:
        checker.check(card, ca.certificate, [ca.certificate], now)
    return refused.value.reason


# -- CRLs -----------------------------------------------------------------------------------------


def test_a_fresh_crl_is_fetched_once_and_again_only_after_its_next_update(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.bodies[CRL_URL] = crl_der(ca, now, lifetime=DAY)
    checker = crl_checker(fetcher)
    for minutes in (0, 1, 60, 23 * 60):
        checker.check(card, ca.certificate, [ca.certificate], now + dt.timedelta(minutes=minutes))
    assert fetcher.calls == [f"GET {CRL_URL}"]
    fetcher.bodies[CRL_URL] = crl_der(ca, now + DAY, lifetime=DAY)
    checker.check(card, ca.certificate, [ca.certificate], now + DAY)
    assert fetcher.calls == [f"GET {CRL_URL}"] * 2


def test_a_serial_on_the_crl_is_revoked(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.bodies[CRL_URL] = crl_der(ca, now, {card.serial_number: now - DAY})
    with pytest.raises(CertificateRejected) as refused:
        crl_checker(fetcher).check(card, ca.certificate, [ca.certificate], now)
    assert refused.value.reason == "revoked"
    assert refused.value.date == now - DAY


def test_a_crl_with_a_bad_signature_is_not_believed(
    fetcher: FakeFetcher,
    ca: Authority,
    card: x509.Certificate,
    now: dt.datetime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The CA's name, another key: whoever controls the network path could serve this "empty" CRL.
    impostor = Authority(ca.certificate, ec.generate_private_key(ec.SECP256R1()))
    fetcher.bodies[CRL_URL] = crl_der(impostor, now)
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        assert refusal(crl_checker(fetcher), card, ca, now) == "revocation_unknown"
    assert "not signed by a configured issuing CA (bad signature)" in caplog.text
    assert "no answer was ever obtained" in caplog.text


def test_a_crl_of_another_issuing_ca_does_not_answer_for_this_one(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    other = make_authority("Other issuing CA", now)
    fetcher.bodies[CRL_URL] = crl_der(other, now)
    checker = crl_checker(fetcher)
    with pytest.raises(CertificateRejected) as refused:
        checker.check(card, ca.certificate, [ca.certificate, other.certificate], now)
    assert refused.value.reason == "revocation_unknown"


def test_a_source_that_is_down_is_not_asked_at_every_login(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher.down = True
    checker = crl_checker(fetcher)
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        assert refusal(checker, card, ca, now) == "revocation_unknown"
        assert refusal(checker, card, ca, now + dt.timedelta(seconds=5)) == "revocation_unknown"
    assert fetcher.calls == [f"GET {CRL_URL}"]
    assert f"CRL {CRL_URL}: ConnectionError: connection refused" in caplog.text
    fetcher.down = False
    fetcher.bodies[CRL_URL] = crl_der(ca, now)
    checker.check(card, ca.certificate, [ca.certificate], now + RETRY_AFTER)
    assert len(fetcher.calls) == 2


def test_within_the_grace_period_the_cached_crl_answers_then_the_login_fails_closed(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    fetcher.bodies[CRL_URL] = crl_der(ca, now, lifetime=DAY)
    checker = crl_checker(fetcher)
    checker.check(card, ca.certificate, [ca.certificate], now)
    fetcher.down = True
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        checker.check(card, ca.certificate, [ca.certificate], now + DAY + GRACE - dt.timedelta(seconds=1))
        assert "stale by 21599 s (grace period 21600 s)" in caplog.text
        later = now + DAY + GRACE + RETRY_AFTER
        assert refusal(checker, card, ca, later) == "revocation_unknown"
    assert f"stale by {int((GRACE + RETRY_AFTER).total_seconds())} s, beyond the grace period" in caplog.text


def test_a_revocation_on_a_stale_crl_still_counts(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.bodies[CRL_URL] = crl_der(ca, now, {card.serial_number: now}, lifetime=DAY)
    checker = crl_checker(fetcher)
    assert refusal(checker, card, ca, now) == "revoked"
    fetcher.down = True
    assert refusal(checker, card, ca, now + 30 * DAY) == "revoked"


def test_a_partitioned_crl_answers_only_for_its_partition(
    fetcher: FakeFetcher, ca: Authority, now: dt.datetime
) -> None:
    partition = "http://crl.example/part-1.crl"
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + DAY)
        .add_extension(
            x509.IssuingDistributionPoint(
                full_name=[x509.UniformResourceIdentifier(partition)],
                relative_name=None,
                only_contains_user_certs=True,
                only_contains_ca_certs=False,
                only_some_reasons=None,
                indirect_crl=False,
                only_contains_attribute_certs=False,
            ),
            critical=True,
        )
    )
    fetcher.bodies[CRL_URL] = builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    checker = crl_checker(fetcher)
    outside = card_certificate(ca, "A123456789", "王小明", not_before=now - DAY, not_after=now + DAY)[0]
    assert refusal(checker, outside, ca, now) == "revocation_unknown"
    inside = with_distribution_point(ca, outside, partition)
    checker.check(inside, ca.certificate, [ca.certificate], now)


def with_distribution_point(ca: Authority, certificate: x509.Certificate, url: str) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(certificate.subject)
        .issuer_name(certificate.issuer)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(certificate.not_valid_before_utc)
        .not_valid_after(certificate.not_valid_after_utc)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(url)], None, None, None)]
            ),
            critical=False,
        )
    )
    return builder.sign(ca.key, hashes.SHA256())


def test_a_delta_crl_or_a_crl_from_the_future_is_refused(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime, caplog: pytest.LogCaptureFixture
) -> None:
    delta = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(now)
        .next_update(now + DAY)
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
        .sign(ca.key, hashes.SHA256())
    )
    fetcher.bodies[CRL_URL] = delta.public_bytes(serialization.Encoding.DER)
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        assert refusal(crl_checker(fetcher), card, ca, now) == "revocation_unknown"
        fetcher.bodies[CRL_URL] = crl_der(ca, now + DAY)
        assert refusal(crl_checker(fetcher), card, ca, now) == "revocation_unknown"
        fetcher.bodies[CRL_URL] = b"<html>maintenance</html>"
        assert refusal(crl_checker(fetcher), card, ca, now) == "revocation_unknown"
    assert "a delta CRL is not a complete list" in caplog.text
    assert "the CRL is dated in the future" in caplog.text
    assert "not a CRL (DER or PEM)" in caplog.text


def test_a_crl_file_is_read_again_when_it_changes(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime, tmp_path: Path
) -> None:
    path = tmp_path / "ca.crl"
    path.write_bytes(crl_der(ca, now))
    checker = crl_checker(fetcher, sources=(f"file://{path}",))
    checker.check(card, ca.certificate, [ca.certificate], now)
    replacement = path.with_name("new.crl")
    replacement.write_bytes(crl_der(ca, now + dt.timedelta(seconds=1), {card.serial_number: now}))
    replacement.replace(path)
    assert refusal(checker, card, ca, now + dt.timedelta(seconds=1)) == "revoked"
    assert fetcher.calls == []


# -- OCSP -----------------------------------------------------------------------------------------


def ocsp_der(
    card: x509.Certificate,
    ca: Authority,
    now: dt.datetime,
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD,
    *,
    signer: Authority | None = None,
    next_update: dt.timedelta | None = DAY,
    algorithm: hashes.HashAlgorithm | None = None,
) -> bytes:
    """Build a real OCSP answer about *card*, signed by the CA or by a delegated *signer*."""
    signer = signer or ca
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=card,
        issuer=ca.certificate,
        algorithm=algorithm or hashes.SHA1(),  # noqa: S303  # the CertID hash of RFC 5019
        cert_status=status,
        this_update=now,
        next_update=now + next_update if next_update else None,
        revocation_time=now - DAY if status == ocsp.OCSPCertStatus.REVOKED else None,
        revocation_reason=None,
    )
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
    if signer is not ca:
        builder = builder.certificates([signer.certificate])
    return builder.sign(signer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def delegated_responder(ca: Authority, now: dt.datetime, *, ocsp_signing: bool = True) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "OCSP responder")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - DAY)
        .not_valid_after(now + DAY)
    )
    usage = ExtendedKeyUsageOID.OCSP_SIGNING if ocsp_signing else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return Authority(builder.sign(ca.key, hashes.SHA256()), key)


def test_an_ocsp_good_answer_is_cached_until_its_next_update(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    def respond(request: ocsp.OCSPRequest) -> bytes:
        assert request.serial_number == card.serial_number
        return ocsp_der(card, ca, now, next_update=dt.timedelta(hours=1))

    fetcher.responder = respond
    checker = RevocationChecker([], OCSP_URL, GRACE, fetcher)
    checker.check(card, ca.certificate, [ca.certificate], now)
    checker.check(card, ca.certificate, [ca.certificate], now + dt.timedelta(minutes=59))
    assert fetcher.calls == [f"POST {OCSP_URL}"]
    checker.check(card, ca.certificate, [ca.certificate], now + dt.timedelta(hours=1))
    assert fetcher.calls == [f"POST {OCSP_URL}"] * 2


def test_an_ocsp_revoked_answer_refuses(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.responder = lambda _: ocsp_der(card, ca, now, ocsp.OCSPCertStatus.REVOKED)
    checker = RevocationChecker([CRL_URL], OCSP_URL, GRACE, fetcher)
    assert refusal(checker, card, ca, now) == "revoked"
    assert fetcher.calls == [f"POST {OCSP_URL}"]  # a fresh OCSP answer needs no CRL


def test_a_delegated_responder_must_be_issued_by_the_ca_for_ocsp_signing(
    ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    good = read_ocsp_response(
        ocsp_der(card, ca, now, signer=delegated_responder(ca, now)), card, ca.certificate, now, "t"
    )
    assert good.revoked_at is None
    assert good.next_update == now + DAY
    for signer in (delegated_responder(ca, now, ocsp_signing=False), make_authority("Elsewhere", now)):
        with pytest.raises(RevocationSourceFailed, match="not signed by the issuing CA or a responder it authorised"):
            read_ocsp_response(ocsp_der(card, ca, now, signer=signer), card, ca.certificate, now, "t")


def test_ocsp_answers_that_do_not_hold_are_refused(ca: Authority, card: x509.Certificate, now: dt.datetime) -> None:
    other_card = card_certificate(ca, "B223456782", "林美華", not_before=now - DAY, not_after=now + DAY)[0]
    tampered = bytearray(ocsp_der(card, ca, now))
    tampered[-5] ^= 0x01  # inside the signature
    cases = {
        "the OCSP response has a bad signature": bytes(tampered),
        "does not speak of this certificate": ocsp_der(other_card, ca, now),
        "status unknown": ocsp_der(card, ca, now, ocsp.OCSPCertStatus.UNKNOWN),
        "dated in the future": ocsp_der(card, ca, now + dt.timedelta(hours=1)),
        "not an OCSP response": b"\x30\x03garbage",
        "the responder answered UNAUTHORIZED": ocsp.OCSPResponseBuilder.build_unsuccessful(
            ocsp.OCSPResponseStatus.UNAUTHORIZED
        ).public_bytes(serialization.Encoding.DER),
    }
    for message, body in cases.items():
        with pytest.raises(RevocationSourceFailed, match=message):
            read_ocsp_response(body, card, ca.certificate, now, "t")
    sha256_id = read_ocsp_response(ocsp_der(card, ca, now, algorithm=hashes.SHA256()), card, ca.certificate, now, "t")
    assert sha256_id.revoked_at is None


def test_when_ocsp_is_down_the_crl_answers(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.bodies[CRL_URL] = crl_der(ca, now)
    checker = RevocationChecker([CRL_URL], OCSP_URL, GRACE, fetcher)
    checker.check(card, ca.certificate, [ca.certificate], now)
    assert fetcher.calls == [f"POST {OCSP_URL}", f"GET {CRL_URL}"]


def test_a_stale_ocsp_answer_holds_for_the_grace_period_only(
    fetcher: FakeFetcher, ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    fetcher.responder = lambda _: ocsp_der(card, ca, now, next_update=dt.timedelta(hours=1))
    checker = RevocationChecker([], OCSP_URL, GRACE, fetcher)
    checker.check(card, ca.certificate, [ca.certificate], now)
    fetcher.responder = None  # the responder goes away
    checker.check(card, ca.certificate, [ca.certificate], now + dt.timedelta(hours=2))
    assert refusal(checker, card, ca, now + dt.timedelta(hours=1) + GRACE + RETRY_AFTER) == "revocation_unknown"


# -- over real HTTP -------------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Serve bodies by path (GET) and echo OCSP posts to the body at their path, on 127.0.0.1."""
    bodies: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            assert self.headers["Content-Type"] == "application/ocsp-request"
            ocsp.load_der_ocsp_request(self.rfile.read(length))
            self._answer()

        def _answer(self) -> None:
            body = bodies.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_crl_and_ocsp_over_http(
    http_server: tuple[str, dict[str, bytes]], ca: Authority, card: x509.Certificate, now: dt.datetime
) -> None:
    base, bodies = http_server
    bodies["/ca.crl"] = crl_der(ca, now, {card.serial_number: now})
    fetcher = HttpFetcher(timeout=2)
    assert refusal(RevocationChecker([f"{base}/ca.crl"], "", GRACE, fetcher), card, ca, now) == "revoked"
    bodies["/ocsp"] = ocsp_der(card, ca, now)
    RevocationChecker([], f"{base}/ocsp", GRACE, fetcher).check(card, ca.certificate, [ca.certificate], now)
    with pytest.raises(RevocationSourceFailed, match="HTTP 404"):
        fetcher.get(f"{base}/missing.crl")
    with pytest.raises(RevocationSourceFailed, match="more than 10 bytes"):
        HttpFetcher(timeout=2, max_bytes=10).get(f"{base}/ca.crl")


def test_an_unreachable_source_fails_fast() -> None:
    with pytest.raises(RevocationSourceFailed, match="ConnectionError"):
        HttpFetcher(timeout=1).get("http://127.0.0.1:9/ca.crl")  # the discard port: nobody listens
