"""Identity test data: accounts, NHI cards, phones, eID certificates, and logged-in test clients.

Loaded as a pytest plugin by tests/conftest.py, so its fixtures are available everywhere:

* ``login_as(national_id="A123456789", method="eid")`` logs the ``client`` in (a real server-side
  session through :func:`identity.sessions.open_session` and its cookie) and returns the
  :class:`~identity.sessions.Authentication`; ``method`` decides the level (``eid`` high, ``mobile``
  substantial, ``nhi_card`` low). Calling it again for the same person is a step-up of the same
  session.
* ``sandbox_eid``: a sandbox CA (made once per test session) with cards for the personas, and
  ``eid_app`` wires an app's card reader and trust bundle to it.

The plain functions build rows through the identity services, for tests that need finer control.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from identity import eid_trust, nhi, services, sessions
from identity.eid import EidTrust
from identity.models import Citizen, MobileDevice
from identity.sandbox.card_reader import VirtualCardReader
from identity.sandbox.personas import EID_PIN, NHI_PASSWORD, PERSONAS, Persona
from identity.sandbox.phones import SandboxPhones
from identity.sandbox.pki import CITIZEN_POLICY_OID, Authority, SandboxPki, make_authority, make_crl, name, pem
from mydata.clock import clock as app_clock
from mydata.config import Settings, env_name
from mydata.db import UnitOfWork, get_db
from mydata.keys import public_jwk

PERSONA = {p.national_id: p for p in PERSONAS}


@functools.cache
def sandbox_password_hash() -> str:
    """Return one Argon2id hash of the sandbox password (hashing takes ~0.1 s: do it once)."""
    return nhi.hash_password(NHI_PASSWORD)


def persona(national_id: str) -> Persona:
    """Return the sandbox persona with this national ID."""
    return PERSONA[national_id]


def make_citizen(uow: UnitOfWork, national_id: str = "A123456789", now: dt.datetime | None = None) -> Citizen:
    """Create (or return) the account of a sandbox persona."""
    p = persona(national_id)
    return services.register_citizen(uow, p.national_id, p.name, now or dt.datetime.now(dt.UTC), p.birth_date)


def make_nhi_card(uow: UnitOfWork, citizen: Citizen, now: dt.datetime | None = None) -> str:
    """Register the persona's NHI card with the sandbox password; return its number."""
    p = persona(citizen.national_id)
    nhi.register_card(
        uow, citizen.id, p.nhi_card, NHI_PASSWORD, now or dt.datetime.now(dt.UTC), password_hash=sandbox_password_hash()
    )
    return p.nhi_card


def make_phone(
    uow: UnitOfWork, citizen: Citizen, now: dt.datetime | None = None
) -> tuple[MobileDevice, ec.EllipticCurvePrivateKey]:
    """Enrol a new phone (device key) for mobile ID; return the device and its private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    device = services.enrol_device(
        uow, citizen.id, public_jwk(key.public_key(), kid=""), "Test phone", now or dt.datetime.now(dt.UTC)
    )
    return device, key


def form_token(client: FlaskClient, path: str = "/login") -> str:
    """Return the CSRF token of the forms on *path* (the client keeps the session cookie).

    A logged-in client is sent on from the login page; it then takes the token of its logout form.
    """
    response = client.get(path)
    if response.status_code == 303:
        response = client.get("/me")
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def post_form(client: FlaskClient, path: str, data: dict[str, str], lang: str = "") -> TestResponse:
    """POST *data* to *path* with a fresh CSRF token, as the login page's form would."""
    token = form_token(client)
    url = f"{path}?lang={lang}" if lang else path
    return client.post(url, data={"csrf_token": token, **data})


def text(response: TestResponse) -> str:
    """Return a page's text with HTML entities decoded (apostrophes, quotes)."""
    return html.unescape(response.get_data(as_text=True))


def eid_nonce(client: FlaskClient, path: str = "/login") -> str:
    """Return the eID nonce the login page hands out."""
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="nonce" value="([^"]+)"', page)
    assert match, "no eID nonce on the login page"
    return match.group(1)


# -- eID certificates -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SandboxEid:
    """A sandbox CA in a folder, with a card for every persona (PIN 123456)."""

    folder: Path
    intermediate: Authority

    @property
    def bundle(self) -> Path:
        """Return the trust bundle."""
        return SandboxPki(self.folder).bundle_path

    @property
    def root(self) -> Authority:
        """Return the sandbox root CA (to issue a second CA under it)."""
        key = serialization.load_pem_private_key((self.folder / "root.key").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return Authority(x509.load_pem_x509_certificate((self.folder / "root.pem").read_bytes()), key)


def card_certificate(
    issuer: Authority,
    national_id: str,
    holder: str,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    digital_signature: bool = True,
    key: ec.EllipticCurvePrivateKey | None = None,
    policies: tuple[str, ...] = (CITIZEN_POLICY_OID,),
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Build a card certificate with chosen dates, key usage, policies and EKU (to build the bad ones)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name(holder, national_id))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=digital_signature,
                content_commitment=not digital_signature,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if policies:
        policy_information = [x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in policies]
        builder = builder.add_extension(x509.CertificatePolicies(policy_information), critical=False)
    if extended_key_usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False)
    return builder.sign(issuer.key, hashes.SHA256()), key


def other_ca(now: dt.datetime) -> Authority:
    """Return an intermediate CA under a root nobody trusts, named exactly like the sandbox ones."""
    root = make_authority("MyData Sandbox Root CA", now)
    return make_authority("MyData Sandbox Citizen Certificate CA", now, issuer=root)


def sandbox_trust(sandbox_eid: SandboxEid, **settings: Any) -> EidTrust:
    """Return the trust of a sandbox platform in *sandbox_eid*'s CA, with some eID *settings* changed."""
    values = Settings(instance_path=sandbox_eid.folder, sandbox=True).replace(**settings)
    return eid_trust(values, SandboxPki(sandbox_eid.folder))


def production_eid_settings(folder: Path) -> dict[str, str]:
    """Write an eID root, an issuing CA and its CRL into *folder*; return the settings that trust them."""
    now = dt.datetime.now(dt.UTC)
    root = make_authority("Test eID Root CA", now)
    issuing = make_authority("Test eID Issuing CA", now, issuer=root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eid-roots.pem").write_bytes(pem(root.certificate))
    (folder / "eid-issuing.pem").write_bytes(pem(issuing.certificate))
    (folder / "eid.crl").write_bytes(make_crl(issuing, {}, now, 1).public_bytes(serialization.Encoding.DER))
    return {
        "eid_ca_roots": str(folder / "eid-roots.pem"),
        "eid_issuing_cas": str(folder / "eid-issuing.pem"),
        "eid_policy_oids": CITIZEN_POLICY_OID,
        "eid_crl_sources": str(folder / "eid.crl"),
    }


def production_environment(folder: Path) -> dict[str, str]:
    """Return a complete production environment (secrets, eID trust in *folder*) that says nothing of the sandbox."""
    return {
        "MYDATA_ISSUER": "https://mydata.example",
        "MYDATA_DATABASE_URL": "postgresql+psycopg://u@h/d",
        "MYDATA_MASTER_KEY": "A" * 43,
        "MYDATA_SECRET_KEY": "s" * 40,
        "MYDATA_RATELIMIT_STORAGE_URI": "redis://localhost:6379/0",
        **{env_name(name): value for name, value in production_eid_settings(folder).items()},
    }


def build_sandbox_eid(folder: Path, now: dt.datetime) -> SandboxEid:
    """Build a sandbox CA, its CRL and the personas' cards in *folder*, as `mydata sandbox seed` does."""
    pki = SandboxPki(folder)
    intermediate = pki.ensure_authorities(now)
    pki.ensure_crl(intermediate, now)
    for p in PERSONAS:
        pki.ensure_card(intermediate, p.national_id, p.name, EID_PIN, now)
    return SandboxEid(folder, intermediate)


@pytest.fixture(scope="session")
def session_sandbox_eid(tmp_path_factory: pytest.TempPathFactory) -> SandboxEid:
    """Build a sandbox CA and the personas' cards once per test session (keys take time)."""
    return build_sandbox_eid(tmp_path_factory.mktemp("sandbox-eid"), dt.datetime.now(dt.UTC))


@pytest.fixture
def sandbox_eid(session_sandbox_eid: SandboxEid, tmp_path: Path) -> SandboxEid:
    """Return this test's copy of the sandbox CA and cards (a test may revoke a card)."""
    folder = tmp_path / "sandbox-eid"
    shutil.copytree(session_sandbox_eid.folder, folder)
    return SandboxEid(folder, session_sandbox_eid.intermediate)


@pytest.fixture
def eid_app(app: Flask, sandbox_eid: SandboxEid) -> Flask:
    """Return the app with its card reader holding the sandbox cards and trusting their CA and its CRL."""
    pki = SandboxPki(sandbox_eid.folder)
    app.extensions["identity.card_reader"] = VirtualCardReader(sandbox_eid.folder)
    app.extensions["identity.sandbox_pki"] = pki
    app.extensions["identity.eid_trust"] = eid_trust(app.config["MYDATA_SETTINGS"], pki)
    return app


@pytest.fixture
def phones(app: Flask, tmp_path: Path) -> SandboxPhones:
    """Return the app's simulated phones (keys in the test's instance folder)."""
    simulated = SandboxPhones(tmp_path / "phones")
    app.extensions["identity.sandbox_phones"] = simulated
    return simulated


# -- logged-in clients ----------------------------------------------------------------------------

LoginAs = Callable[..., sessions.Authentication]


@pytest.fixture
def login_as(app: Flask, client: FlaskClient) -> LoginAs:
    """Return ``login(national_id="A123456789", method="eid")``: log the test client in as a persona."""

    def login(national_id: str = "A123456789", method: str = "eid") -> sessions.Authentication:
        with app.app_context():
            with get_db().unit_of_work() as uow:
                citizen_id = make_citizen(uow, national_id, app_clock().now()).id
            previous = _current(app, client)
            with get_db().unit_of_work() as uow:
                authentication, secret = sessions.open_session(uow, citizen_id, method, app_clock().now(), previous)
        client.set_cookie(sessions.cookie_name(app), secret)
        return authentication

    return login


def _current(app: Flask, client: FlaskClient) -> sessions.Authentication | None:
    cookie = client.get_cookie(sessions.cookie_name(app))
    if cookie is None:
        return None
    with get_db().unit_of_work() as uow:
        return sessions.resume_session(uow, cookie.value, app_clock().now())
