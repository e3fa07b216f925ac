"""eID login: the virtual card reader, and the real verification of certificate chain and signature."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from identity import eid
from identity import national_id as nid
from identity.eid import EidTrust, VerifiedCard
from identity.interfaces import CardSignature, CertificateRejected, EidNotConfigured
from identity.models import Citizen, LoginSession
from identity.sandbox.pki import CITIZEN_POLICY_OID, Authority, SandboxPki, make_authority, name, pem
from mydata.clock import FrozenClock
from mydata.db import Database, get_db
from tests.factories.identity import (
    SandboxEid,
    card_certificate,
    eid_nonce,
    form_token,
    other_ca,
    post_form,
    sandbox_trust,
    text,
)

pytestmark = pytest.mark.db


def card_login(client: FlaskClient, national_id: str = "A123456789", pin: str = "123456", lang: str = "") -> object:
    nonce = eid_nonce(client)
    return post_form(client, "/login/eid", {"national_id": national_id, "pin": pin, "nonce": nonce}, lang)


def signed_login(
    client: FlaskClient,
    chain: list[x509.Certificate],
    key: ec.EllipticCurvePrivateKey,
    lang: str = "",
    nonce: str = "",
) -> object:
    """Post what a card-reader component posts: certificate chain, signature over the nonce, nonce."""
    nonce = nonce or eid_nonce(client)
    signature = key.sign(nonce.encode(), ec.ECDSA(hashes.SHA256()))
    data = {
        "certificate": b"".join(pem(c) for c in chain).decode(),
        "signature": base64.b64encode(signature).decode(),
        "nonce": nonce,
    }
    return post_form(client, "/login/eid", data, lang)


def persona_card(
    sandbox_eid: SandboxEid, national_id: str = "A123456789"
) -> tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey]:
    certificate_path, key_path = SandboxPki(sandbox_eid.folder).card_paths(national_id)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=b"123456")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificates(certificate_path.read_bytes()), key


def test_card_and_pin_log_in_at_level_high_and_open_the_account(eid_app: Flask, client: FlaskClient) -> None:
    response = card_login(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/me"
    with eid_app.app_context(), get_db().unit_of_work() as uow:
        citizen = uow.session.scalars(select(Citizen)).one()
        assert (citizen.national_id, citizen.name) == ("A123456789", "王小明")
        session = uow.session.scalars(select(LoginSession)).one()
        assert (session.level, session.amr, session.method) == ("high", ["sc", "pin", "hwk"], "eid")
    page = text(client.get("/me?lang=en"))
    assert "eID card (citizen digital certificate)" in page
    assert "high" in page


def test_wrong_pin_is_refused_with_a_clear_message(eid_app: Flask, client: FlaskClient) -> None:
    response = card_login(client, pin="654321", lang="en")
    assert response.status_code == 401
    page = text(response)
    assert "The PIN is not correct. Check the PIN of your eID card and try again." in page
    assert 'href="#eid-pin"' in page
    assert "PIN 碼不正確" in text(card_login(client, pin="654321", lang="zh_Hant_TW"))
    assert client.get("/me").status_code == 303  # not logged in


def test_no_card_in_the_reader_for_this_number(eid_app: Flask, client: FlaskClient) -> None:
    unknown = next(f"A1{n:07d}" + d for n in range(1000) for d in "0123456789" if nid.checksum_ok(f"A1{n:07d}" + d))
    page = text(card_login(client, national_id=unknown, lang="en"))
    assert "There is no eID card for this national ID number in the card reader." in page
    assert "讀卡機裡沒有這個身分證統一編號的自然人憑證" in text(
        card_login(client, national_id=unknown, lang="zh_Hant_TW")
    )


def test_invalid_national_id_is_a_form_error(eid_app: Flask, client: FlaskClient) -> None:
    response = card_login(client, national_id="A123456788", lang="en")
    assert response.status_code == 400
    page = text(response)
    assert "Enter a valid national ID number" in page
    assert 'id="eid-national_id-error"' in page


def test_genuine_card_posted_by_a_reader_component_logs_in(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid
) -> None:
    chain, key = persona_card(sandbox_eid, "B223456782")
    response = signed_login(client, chain, key)
    assert response.status_code == 303
    assert "林美華" in text(client.get("/me"))


def test_forged_signature_is_refused(eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid) -> None:
    chain, _ = persona_card(sandbox_eid)
    forger = ec.generate_private_key(ec.SECP256R1())  # someone with the certificate but not the card
    response = signed_login(client, chain, forger, "en")
    assert response.status_code == 401
    assert "the signature was not made by the key of this certificate, so it may be forged" in text(response)
    assert "簽章不是由這張憑證的金鑰所產生" in text(signed_login(client, chain, forger, "zh_Hant_TW"))
    assert client.get("/me").status_code == 303


def test_certificate_from_another_ca_is_refused(eid_app: Flask, client: FlaskClient, clock: FrozenClock) -> None:
    now = clock.now()
    impostor_ca = other_ca(now)  # same names as the sandbox CAs, other keys
    certificate, key = card_certificate(
        impostor_ca,
        "A123456789",
        "王小明",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
    )
    response = signed_login(client, [certificate, impostor_ca.certificate], key, "en")
    assert response.status_code == 401
    assert "it was not issued by a certificate authority that MyData trusts" in text(response)
    zh = text(signed_login(client, [certificate, impostor_ca.certificate], key, "zh_Hant_TW"))
    assert "不是由 MyData 信任的憑證機構所簽發" in zh


def test_expired_certificate_is_refused_with_its_date(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid, clock: FrozenClock
) -> None:
    now = clock.now()
    expired_on = now - dt.timedelta(days=2)
    certificate, key = card_certificate(
        sandbox_eid.intermediate, "A123456789", "王小明", not_before=now - dt.timedelta(days=800), not_after=expired_on
    )
    response = signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "en")
    assert response.status_code == 401
    day = expired_on.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d")
    assert f"it expired on {day}" in text(response)
    zh = text(signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "zh_Hant_TW"))
    assert f"已於 {day} 到期" in zh


def test_certificate_without_digital_signature_usage_is_refused(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid, clock: FrozenClock
) -> None:
    now = clock.now()
    certificate, key = card_certificate(
        sandbox_eid.intermediate,
        "A123456789",
        "王小明",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
        digital_signature=False,
    )
    page = text(signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "en"))
    assert "it may not be used for signing in" in page


def test_a_nonce_cannot_be_used_twice(eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid) -> None:
    chain, key = persona_card(sandbox_eid)
    nonce = eid_nonce(client)
    assert signed_login(client, chain, key, nonce=nonce).status_code == 303
    replay = eid_app.test_client()
    response = signed_login(replay, chain, key, "en", nonce=nonce)
    assert response.status_code == 401
    assert "This login page was open too long or was already used" in text(response)


def test_a_refused_answer_uses_its_nonce_up(eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid) -> None:
    chain, key = persona_card(sandbox_eid)
    nonce = eid_nonce(client)
    forger = ec.generate_private_key(ec.SECP256R1())
    assert "so it may be forged" in text(signed_login(client, chain, forger, "en", nonce=nonce))
    response = signed_login(eid_app.test_client(), chain, key, "en", nonce=nonce)
    assert response.status_code == 401
    assert "This login page was open too long or was already used" in text(response)


def test_a_nonce_expires_after_five_minutes(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid, clock: FrozenClock
) -> None:
    chain, key = persona_card(sandbox_eid)
    nonce = eid_nonce(client)
    clock.advance(5 * 60 + 1)
    assert signed_login(client, chain, key, nonce=nonce).status_code == 401


def test_reader_component_json_gives_what_the_login_accepts(eid_app: Flask, client: FlaskClient) -> None:
    nonce = eid_nonce(client)
    signed = client.post(
        "/sandbox/card-reader/sign", json={"national_id": "A123456789", "pin": "123456", "nonce": nonce}
    )
    assert signed.status_code == 200
    response = post_form(client, "/login/eid", {**signed.json, "nonce": nonce})
    assert response.status_code == 303
    wrong = client.post(
        "/sandbox/card-reader/sign", json={"national_id": "A123456789", "pin": "000000", "nonce": nonce}
    )
    assert (wrong.status_code, wrong.json["error"]) == (401, "wrong_pin")


def test_without_a_trusted_ca_eid_is_not_offered(app: Flask, client: FlaskClient) -> None:
    # The plain test app's sandbox folder has no CA yet (`mydata sandbox seed` has not run).
    page = text(client.get("/login?lang=en"))
    assert 'id="eid-section"' not in page
    assert 'id="mobile-section"' in page
    response = post_form(client, "/login/eid", {"national_id": "A123456789", "pin": "123456", "nonce": "x"}, "en")
    assert response.status_code == 503
    assert "eID login is not available at the moment" in text(response)


def verify(chain: list[x509.Certificate], key: object, trust: EidTrust, now: dt.datetime) -> VerifiedCard:
    """Run the verification directly, as the login does after using up the nonce."""
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(b"nonce", padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        signature = key.sign(b"nonce", ec.ECDSA(hashes.SHA256()))
    card = CardSignature(b"".join(pem(c) for c in chain).decode(), signature)
    return eid.verify_card(card, "nonce", trust.anchors(), trust.rules, trust.revocation, now)


def test_rsa_cards_verify_too(sandbox_eid: SandboxEid) -> None:
    # The Ministry of the Interior's cards carry RSA keys; the sandbox's carry P-256 keys.
    now = dt.datetime.now(dt.UTC)
    trust = sandbox_trust(sandbox_eid)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name("林美華", "B223456782"))
        .issuer_name(sandbox_eid.intermediate.certificate.subject)
        .public_key(rsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(CITIZEN_POLICY_OID), None)]), False
        )
        .sign(sandbox_eid.intermediate.key, hashes.SHA256())
    )
    verified = verify([certificate, sandbox_eid.intermediate.certificate], rsa_key, trust, now)
    assert verified.national_id == "B223456782"


@pytest.mark.parametrize(
    ("serial", "days_from_now", "reason"),
    [("12345678", -1, "no_national_id"), ("A123456789", 3, "not_yet_valid")],
)
def test_other_certificate_refusals(sandbox_eid: SandboxEid, serial: str, days_from_now: int, reason: str) -> None:
    now = dt.datetime.now(dt.UTC)
    trust = sandbox_trust(sandbox_eid)
    start = now + dt.timedelta(days=days_from_now)
    certificate, key = card_certificate(
        sandbox_eid.intermediate, serial, "某人", not_before=start, not_after=start + dt.timedelta(days=30)
    )
    with pytest.raises(CertificateRejected) as refused:
        verify([certificate, sandbox_eid.intermediate.certificate], key, trust, now)
    assert refused.value.reason == reason


def test_unreadable_answers_are_explained(eid_app: Flask, client: FlaskClient) -> None:
    nonce = eid_nonce(client)
    garbage = post_form(client, "/login/eid", {"certificate": "not PEM", "signature": "AAAA", "nonce": nonce}, "en")
    assert garbage.status_code == 401
    assert "The card reader did not send a readable certificate." in text(garbage)
    nonce = eid_nonce(client)
    bad_base64 = post_form(client, "/login/eid", {"certificate": "x", "signature": "!!!", "nonce": nonce}, "en")
    assert "so it may be forged" in text(bad_base64)


def test_a_bundle_without_a_root_is_not_a_trust_anchor(tmp_path: Path, sandbox_eid: SandboxEid) -> None:
    bundle = tmp_path / "bundle.pem"
    issuing = SandboxPki(sandbox_eid.folder).issuing_path
    bundle.write_bytes(pem(sandbox_eid.intermediate.certificate))
    with pytest.raises(EidNotConfigured):
        eid.TrustBundle(bundle, issuing).anchors()
    bundle.write_text("garbage")
    with pytest.raises(EidNotConfigured):
        eid.TrustBundle(bundle, issuing).anchors()


def test_without_an_issuing_ca_no_card_is_trusted(tmp_path: Path, sandbox_eid: SandboxEid) -> None:
    issuing = tmp_path / "issuing.pem"
    issuing.write_bytes(pem(sandbox_eid.root.certificate) + pem(card_certificate_only(sandbox_eid)))
    with pytest.raises(EidNotConfigured):  # the root is no issuing CA here, and a card is no CA at all
        eid.TrustBundle(sandbox_eid.bundle, tmp_path / "missing.pem").anchors()
    assert eid.TrustBundle(sandbox_eid.bundle, issuing).anchors().issuing == (sandbox_eid.root.certificate,)


def card_certificate_only(sandbox_eid: SandboxEid) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return card_certificate(
        sandbox_eid.intermediate, "A123456789", "王小明", not_before=now, not_after=now + dt.timedelta(days=1)
    )[0]


# -- trust: only the configured issuing CAs, the citizen policy, key usages -----------------------


def valid_card(
    issuer: Authority, clock: FrozenClock, **kwargs: Any
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    now = clock.now()
    return card_certificate(
        issuer,
        "A123456789",
        "王小明",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
        **kwargs,
    )


def test_a_leaf_from_another_ca_under_the_same_root_is_refused(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid, clock: FrozenClock
) -> None:
    # A second issuing CA under the sandbox root, sent along by the "browser": the root is trusted,
    # this CA is not one of the configured issuing CAs.
    sibling = make_authority("MyData Sandbox Other CA", clock.now(), issuer=sandbox_eid.root)
    certificate, key = valid_card(sibling, clock)
    response = signed_login(client, [certificate, sibling.certificate], key, "en")
    assert response.status_code == 401
    assert "it was not issued by a certificate authority that MyData trusts" in text(response)
    assert client.get("/me").status_code == 303
    # What the browser sends along is ignored both ways: a genuine card with junk attached still logs in.
    chain, genuine_key = persona_card(sandbox_eid)
    assert (
        signed_login(client, [chain[0], sibling.certificate, sandbox_eid.root.certificate], genuine_key).status_code
        == 303
    )


def test_a_card_without_the_citizen_certificate_policy_is_refused(
    eid_app: Flask, client: FlaskClient, sandbox_eid: SandboxEid, clock: FrozenClock
) -> None:
    certificate, key = valid_card(sandbox_eid.intermediate, clock, policies=("1.2.3.4",))
    response = signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "en")
    assert response.status_code == 401
    assert "it is not a citizen digital certificate" in text(response)
    zh = text(signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "zh_Hant_TW"))
    assert "不是自然人憑證" in zh
    no_policies, key = valid_card(sandbox_eid.intermediate, clock, policies=())
    response = signed_login(client, [no_policies, sandbox_eid.intermediate.certificate], key, "en")
    assert "it is not a citizen digital certificate" in text(response)


@pytest.mark.parametrize(
    ("usages", "accepted"),
    [
        ((ExtendedKeyUsageOID.SERVER_AUTH,), False),
        ((ExtendedKeyUsageOID.CODE_SIGNING,), False),
        ((ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,), False),
        ((ExtendedKeyUsageOID.CLIENT_AUTH,), True),
        ((ExtendedKeyUsageOID.EMAIL_PROTECTION, ExtendedKeyUsageOID.CLIENT_AUTH), True),
    ],
)
def test_an_extended_key_usage_must_allow_client_authentication(
    eid_app: Flask,
    client: FlaskClient,
    sandbox_eid: SandboxEid,
    clock: FrozenClock,
    usages: tuple[x509.ObjectIdentifier, ...],
    accepted: bool,
) -> None:
    certificate, key = valid_card(sandbox_eid.intermediate, clock, extended_key_usage=usages)
    response = signed_login(client, [certificate, sandbox_eid.intermediate.certificate], key, "en")
    if accepted:
        assert response.status_code == 303
    else:
        assert response.status_code == 401
        assert "its extended key usage does not include signing in" in text(response)


# -- revocation -----------------------------------------------------------------------------------


def test_a_revoked_sandbox_card_is_refused_at_its_next_login(eid_app: Flask, client: FlaskClient) -> None:
    assert card_login(client, "A123456789").status_code == 303  # the CRL is read and cached
    client.post("/logout", data={"csrf_token": form_token(client)})
    result = eid_app.test_cli_runner().invoke(args=["sandbox", "revoke-card", "A123456789"])
    assert result.exit_code == 0, result.output
    assert "Revoked the eID card of A123456789" in result.output
    response = card_login(client, "A123456789", lang="en")
    assert response.status_code == 401
    day = eid_app.extensions["mydata.clock"].now().astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d")
    assert f"The certificate was refused: it was revoked on {day}." in text(response)
    assert "已於" in text(card_login(client, "A123456789", lang="zh_Hant_TW"))
    assert card_login(eid_app.test_client(), "B223456782").status_code == 303  # other cards still work


def test_revoke_card_names_what_is_wrong(eid_app: Flask) -> None:
    runner = eid_app.test_cli_runner()
    bad = runner.invoke(args=["sandbox", "revoke-card", "A123456788"])
    assert bad.exit_code != 0
    assert "not a valid national ID number" in bad.output
    unknown = next(f"A1{n:07d}" + d for n in range(1000) for d in "0123456789" if nid.checksum_ok(f"A1{n:07d}" + d))
    missing = runner.invoke(args=["sandbox", "revoke-card", unknown])
    assert missing.exit_code != 0
    assert f"no sandbox eID card for {unknown}" in missing.output


def test_a_crl_stale_beyond_the_grace_period_fails_closed(
    eid_app: Flask, client: FlaskClient, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    assert card_login(client).status_code == 303
    client.post("/logout", data={"csrf_token": form_token(client)})
    grace = eid_app.config["MYDATA_SETTINGS"].eid_revocation_grace_seconds
    crl = x509.load_der_x509_crl(eid_app.extensions["identity.sandbox_pki"].crl_path.read_bytes())
    assert crl.next_update_utc is not None
    # Past nextUpdate, within the grace period: the cached CRL still answers, and the operator is warned.
    clock.advance((crl.next_update_utc - clock.now()).total_seconds() + grace / 2)
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        assert card_login(client).status_code == 303
    assert "stale by" in caplog.text
    client.post("/logout", data={"csrf_token": form_token(client)})
    caplog.clear()
    # Past the grace period: refused, with a message for the citizen and the reason in the log.
    clock.advance(grace / 2 + 1)
    with caplog.at_level(logging.WARNING, logger="identity.revocation"):
        response = card_login(client, lang="en")
    assert response.status_code == 401
    assert "MyData cannot check at the moment whether it has been revoked" in text(response)
    assert client.get("/me").status_code == 303
    refusal = next(r for r in caplog.records if r.levelno == logging.ERROR)
    line = refusal.getMessage()
    assert "CN=MyData Sandbox Citizen Certificate CA" in line
    assert f"stale by {grace + 1} s, beyond the grace period of {grace} s" in line
    assert "ca.crl" in line
    assert "目前無法確認這張憑證是否已被廢止" in text(card_login(client, lang="zh_Hant_TW"))


def test_logins_answered_503_in_a_database_outage_are_not_counted_as_failed_attempts(
    eid_app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    # The per-address cap counts the citizen's failures (a wrong PIN), not the platform's: after an
    # outage, the people behind one address must not find themselves refused for their retries.
    eid_app.config["IDENTITY_LOGIN_RATE"] = "2 per minute"
    data = {"csrf_token": form_token(client), "national_id": "A123456789", "pin": "123456"}
    nonces = [eid_nonce(client) for _ in range(3)]
    working = eid_app.extensions["mydata.db"]
    eid_app.extensions["mydata.db"] = Database(f"sqlite:///{tmp_path / 'not-yet' / 'x.sqlite'}")  # cannot be opened
    try:
        assert [client.post("/login/eid", data={**data, "nonce": n}).status_code for n in nonces] == [503] * 3
    finally:
        eid_app.extensions["mydata.db"].engine.dispose()
        eid_app.extensions["mydata.db"] = working
    assert card_login(client).status_code == 303
