"""The sandbox eID CA: its CRL, card revocation and its OCSP responder."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from flask import Flask

from identity.revocation import read_ocsp_response
from identity.sandbox.pki import CRL_LIFETIME, SandboxPki, make_authority
from tests.factories.identity import SandboxEid, card_certificate


def ask(pki: SandboxPki, card: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> bytes:
    request = ocsp.OCSPRequestBuilder().add_certificate(card, issuer, hashes.SHA256()).build()
    return pki.answer_ocsp(request.public_bytes(serialization.Encoding.DER), now)


def test_the_ocsp_responder_answers_from_the_crl(sandbox_eid: SandboxEid) -> None:
    pki = SandboxPki(sandbox_eid.folder)
    now = dt.datetime.now(dt.UTC)
    card = x509.load_pem_x509_certificates(pki.card_paths("A123456789")[0].read_bytes())[0]
    issuer = sandbox_eid.intermediate.certificate
    assert read_ocsp_response(ask(pki, card, issuer, now), card, issuer, now, "sandbox").revoked_at is None
    pki.revoke_card("A123456789", now)
    assert read_ocsp_response(ask(pki, card, issuer, now), card, issuer, now, "sandbox").revoked_at is not None


def test_the_ocsp_responder_refuses_what_it_cannot_answer(sandbox_eid: SandboxEid) -> None:
    pki = SandboxPki(sandbox_eid.folder)
    now = dt.datetime.now(dt.UTC)
    stranger = make_authority("Another CA", now)
    card, _ = card_certificate(stranger, "A123456789", "王小明", not_before=now, not_after=now + CRL_LIFETIME)
    answer = ocsp.load_der_ocsp_response(ask(pki, card, stranger.certificate, now))
    assert answer.response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
    malformed = ocsp.load_der_ocsp_response(pki.answer_ocsp(b"not DER", now))
    assert malformed.response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    unseeded = ocsp.load_der_ocsp_response(
        ask(SandboxPki(sandbox_eid.folder / "none"), card, stranger.certificate, now)
    )
    assert unseeded.response_status == ocsp.OCSPResponseStatus.INTERNAL_ERROR


def test_the_crl_is_published_again_after_half_its_lifetime_and_keeps_its_revocations(
    sandbox_eid: SandboxEid,
) -> None:
    pki = SandboxPki(sandbox_eid.folder)
    now = dt.datetime.now(dt.UTC)
    revoked = pki.revoke_card("B223456782", now)
    assert not pki.ensure_crl(sandbox_eid.intermediate, now + CRL_LIFETIME / 4)
    assert pki.ensure_crl(sandbox_eid.intermediate, now + CRL_LIFETIME / 2)
    crl = x509.load_der_x509_crl(pki.crl_path.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number >= 3


def test_the_crl_is_served_under_sandbox(eid_app: Flask, sandbox_eid: SandboxEid) -> None:
    response = eid_app.test_client().get("/sandbox/eid/ca.crl")
    assert response.status_code == 200
    assert response.mimetype == "application/pkix-crl"
    assert x509.load_der_x509_crl(response.data).issuer == sandbox_eid.intermediate.certificate.subject
    SandboxPki(sandbox_eid.folder).crl_path.unlink()
    assert eid_app.test_client().get("/sandbox/eid/ca.crl").status_code == 404
    ocsp_answer = eid_app.test_client().post("/sandbox/eid/ocsp", data=b"junk")
    assert ocsp_answer.status_code == 200
    assert ocsp_answer.mimetype == "application/ocsp-response"
