"""eID login (自然人憑證): a nonce for the card to sign, and the verification of what comes back.

The card (or, in the sandbox, the virtual card reader) returns its certificate chain and a
signature over the nonce. Only the leaf counts: whatever intermediates the browser sends are
ignored. The leaf must be issued directly by one of the configured issuing CAs (MOICA's, in the
sandbox its citizen-certificate CA), which must chain to a configured root (RFC 5280 path
validation by ``cryptography``). The leaf must be within its validity dates, allow
``digitalSignature``, carry a citizen-certificate policy OID, have no extended key usage other
than the configured ones (see :class:`CardRules`), not be revoked (identity.revocation), and its
key must have signed this nonce. The national ID is the subject's ``serialNumber``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import (
    ClientVerifier,
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from identity import national_id as nid
from identity import services
from identity.interfaces import CardSignature, CertificateRejected, EidNonceInvalid, EidNotConfigured
from identity.revocation import RevocationChecker
from mydata.db import UnitOfWork

NONCE_LIFETIME = dt.timedelta(minutes=5)
_NONCE_RANDOM = 16
_NONCE_MAC = 16


# -- nonces ---------------------------------------------------------------------------------------
#
# A nonce is 16 random bytes and its expiry, authenticated with the platform's ``eid_nonce`` secret
# (HMAC-SHA-256), so that showing the login page writes nothing. A nonce is used up, whatever the
# outcome, in the table of single-use identifiers, when a card's answer to it is checked.


def issue_nonce(secret: bytes, now: dt.datetime) -> str:
    """Return a fresh nonce for a card to sign, valid five minutes."""
    body = secrets.token_bytes(_NONCE_RANDOM) + int((now + NONCE_LIFETIME).timestamp()).to_bytes(8, "big")
    return base64.urlsafe_b64encode(body + _nonce_mac(secret, body)).rstrip(b"=").decode()


def _nonce_mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"eid-nonce\x00" + body, hashlib.sha256).digest()[:_NONCE_MAC]


def nonce_expiry(secret: bytes, nonce: str, now: dt.datetime) -> int:
    """Return when *nonce* expires (epoch seconds); raise :class:`EidNonceInvalid` if forged or expired."""
    try:
        raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
    except (ValueError, binascii.Error):
        raise EidNonceInvalid() from None
    body, mac = raw[:-_NONCE_MAC], raw[-_NONCE_MAC:]
    if len(body) != _NONCE_RANDOM + 8 or not hmac.compare_digest(mac, _nonce_mac(secret, body)):
        raise EidNonceInvalid()
    expires_at = int.from_bytes(body[_NONCE_RANDOM:], "big")
    if now.timestamp() >= expires_at:
        raise EidNonceInvalid()
    return expires_at


def consume_nonce(uow: UnitOfWork, secret: bytes, nonce: str, now: dt.datetime) -> None:
    """Use *nonce* up in *uow* (not committed); raise :class:`EidNonceInvalid` if forged, expired or used.

    One conditional insert: of two requests racing with the same nonce, only one records it.
    """
    expires_at = nonce_expiry(secret, nonce, now)
    if not services.remember_once(uow, f"eid-nonce:{nonce}", expires_at, int(now.timestamp())):
        raise EidNonceInvalid()


# -- trust ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustAnchors:
    """The configured roots, the intermediates between them, and the CAs that issue citizen certificates."""

    roots: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    issuing: tuple[x509.Certificate, ...]


class TrustBundle:
    """The PEM bundles of eID roots (*roots*) and issuing CAs (*issuing*), read again when a file changes."""

    def __init__(self, roots: Path, issuing: Path) -> None:
        self.roots = roots
        self.issuing = issuing
        self._loaded: tuple[tuple[float, float], TrustAnchors] | None = None
        self._lock = threading.Lock()

    def anchors(self) -> TrustAnchors:
        """Return the anchors; raise :class:`EidNotConfigured` when a bundle is missing or holds no CA."""
        try:
            mtimes = (os.stat(self.roots).st_mtime, os.stat(self.issuing).st_mtime)
        except OSError:
            raise EidNotConfigured() from None
        loaded = self._loaded
        if loaded is not None and loaded[0] == mtimes:
            return loaded[1]
        try:
            certificates = x509.load_pem_x509_certificates(self.roots.read_bytes())
            issuing = x509.load_pem_x509_certificates(self.issuing.read_bytes())
        except (OSError, ValueError):
            raise EidNotConfigured() from None
        anchors = TrustAnchors(
            roots=tuple(c for c in certificates if c.subject == c.issuer),
            intermediates=tuple(c for c in certificates if c.subject != c.issuer),
            issuing=tuple(c for c in issuing if _is_ca(c)),
        )
        if not anchors.roots or not anchors.issuing:
            raise EidNotConfigured()
        with self._lock:
            self._loaded = (mtimes, anchors)
        return anchors


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


@dataclass(frozen=True)
class CardRules:
    """What a citizen certificate must say about itself, beyond its chain.

    * ``policy_oids``: it must carry at least one of these certificate policies (the
      citizen-certificate policy of the CP it was issued under).
    * ``extended_key_usages``: without an extended key usage extension the key usage
      (digitalSignature) alone governs, as RFC 5280 §4.2.1.12 says; with one, it must list one of
      these purposes (by default TLS client authentication), so that a certificate the CA made for
      something else (a server, code signing, only e-mail) cannot log in. ``anyExtendedKeyUsage``
      counts only if configured.
    """

    policy_oids: frozenset[str]
    extended_key_usages: frozenset[str] = frozenset({ExtendedKeyUsageOID.CLIENT_AUTH.dotted_string})


@dataclass(frozen=True)
class EidTrust:
    """Everything an eID login is checked against: the CAs, the card rules and revocation."""

    bundle: TrustBundle
    rules: CardRules
    revocation: RevocationChecker

    def anchors(self) -> TrustAnchors:
        """Return the configured CAs; raise :class:`EidNotConfigured`."""
        return self.bundle.anchors()


# -- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedCard:
    """The person a verified eID certificate names."""

    national_id: str
    name: str


def _require_digital_signature(_policy: Any, _cert: x509.Certificate, usage: x509.KeyUsage | None) -> None:
    if usage is None or not usage.digital_signature:
        raise ValueError("the certificate does not allow digitalSignature")


def _not_a_ca(_policy: Any, _cert: x509.Certificate, constraints: x509.BasicConstraints | None) -> None:
    if constraints is not None and constraints.ca:
        raise ValueError("a CA certificate cannot log in")


# The end-entity policy of citizen certificates: not the Web PKI's (which wants a subjectAltName and
# the TLS client EKU, neither of which card certificates carry) but key usage digitalSignature and
# no CA flag. CAs keep the RFC 5280 / CA-B Forum checks of webpki_defaults_ca.
_CARD_POLICY = (
    ExtensionPolicy.permit_all()
    .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _require_digital_signature)
    .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _not_a_ca)
)


def _load_chain(certificate_pem: str) -> list[x509.Certificate]:
    try:
        chain = x509.load_pem_x509_certificates(certificate_pem.encode())
    except ValueError:
        raise CertificateRejected("malformed", "The certificate is not PEM.") from None
    return chain


def _check_signature(certificate: x509.Certificate, signature: bytes, nonce: str) -> None:
    key = certificate.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, nonce.encode(), ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, nonce.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            raise CertificateRejected("key_usage", "Card keys are EC or RSA.")
    except InvalidSignature:
        raise CertificateRejected("bad_signature", "The signature was not made by this certificate's key.") from None


def _issuing_ca(leaf: x509.Certificate, anchors: TrustAnchors) -> x509.Certificate:
    for ca in anchors.issuing:
        if ca.subject != leaf.issuer:
            continue
        try:
            leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    raise CertificateRejected("untrusted", "It was not issued directly by a configured issuing CA.")


def _check_policy(leaf: x509.Certificate, rules: CardRules) -> None:
    try:
        policies = leaf.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        policies = x509.CertificatePolicies([])
    if not {p.policy_identifier.dotted_string for p in policies} & rules.policy_oids:
        raise CertificateRejected("policy", "It does not carry the citizen-certificate policy.")


def _check_extended_key_usage(leaf: x509.Certificate, rules: CardRules) -> None:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not {usage.dotted_string for usage in usages} & rules.extended_key_usages:
        raise CertificateRejected("extended_key_usage", "Its extended key usage does not allow client authentication.")


def _verifier(anchors: TrustAnchors, now: dt.datetime) -> ClientVerifier:
    return (
        PolicyBuilder()
        .store(Store(list(anchors.roots)))
        .time(now)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_CARD_POLICY)
        .build_client_verifier()
    )


def _checked_issuer(
    leaf: x509.Certificate, anchors: TrustAnchors, rules: CardRules, now: dt.datetime
) -> x509.Certificate:
    """Check the certificate one rule at a time, in the order the citizen is told of them; return its issuing CA.

    Dates, key usage, the issuer, the policy, the extended key usage, then the path validation again
    from the issuing CA found: the first that fails is the refusal's reason.
    """
    if now > leaf.not_valid_after_utc:
        raise CertificateRejected(
            "expired", f"It expired on {leaf.not_valid_after_utc:%Y-%m-%d}.", date=leaf.not_valid_after_utc
        )
    if now < leaf.not_valid_before_utc:
        raise CertificateRejected(
            "not_yet_valid", f"It is valid from {leaf.not_valid_before_utc:%Y-%m-%d}.", date=leaf.not_valid_before_utc
        )
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.digital_signature:
        raise CertificateRejected("key_usage", "The certificate does not allow digital signatures.")
    issuer = _issuing_ca(leaf, anchors)
    _check_policy(leaf, rules)
    _check_extended_key_usage(leaf, rules)
    try:
        _verifier(anchors, now).verify(leaf, [issuer, *anchors.intermediates])
    except VerificationError as exc:
        raise CertificateRejected("untrusted", f"No valid chain to a trusted root: {exc}") from None
    return issuer


def verify_card(
    card: CardSignature,
    nonce: str,
    anchors: TrustAnchors,
    rules: CardRules,
    revocation: RevocationChecker,
    now: dt.datetime,
) -> VerifiedCard:
    """Verify a card's certificate and its signature over *nonce*; return whom it names.

    The path validation decides first: from the certificate directly through an issuing CA (and
    the intermediates) to a trusted root, all valid now, the certificate allowing digital signatures
    and no CA. When it finds no such path, the checks are made one by one (:func:`_checked_issuer`),
    so that the citizen learns which one failed. The policy and the extended key usage, which the
    path validation leaves alone, come next, then the signature over the nonce. Revocation comes
    last: it may need the network, and a forgery or a stranger's certificate is refused without it.
    """
    leaf = _load_chain(card.certificate_pem)[0]  # what else the browser sends is not trusted
    try:
        path = _verifier(anchors, now).verify(leaf, [*anchors.issuing, *anchors.intermediates]).chain
    except VerificationError:
        path = []
    if len(path) > 1 and path[1] in anchors.issuing:
        issuer = path[1]
        _check_policy(leaf, rules)
        _check_extended_key_usage(leaf, rules)
    else:
        issuer = _checked_issuer(leaf, anchors, rules, now)
    _check_signature(leaf, card.signature, nonce)
    serials = leaf.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    national_id = nid.normalize(str(serials[0].value)) if serials else ""
    if not nid.checksum_ok(national_id):
        raise CertificateRejected("no_national_id", "The subject serialNumber is not a national ID number.")
    revocation.check(leaf, issuer, anchors.issuing, now)
    names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return VerifiedCard(national_id=national_id, name=str(names[0].value) if names else national_id)


def log_in(
    uow: UnitOfWork, card: CardSignature, nonce: str, nonce_secret: bytes, trust: EidTrust, now: dt.datetime
) -> services.Account:
    """Check an eID card's answer to *nonce*; return the citizen, creating the account on first use.

    The nonce is used up whatever the outcome, so that no answer can be tried twice: a refusal
    commits that alone; a success leaves it in *uow* for the caller to commit with the session it
    opens. The certificate itself proves the person, so a first eID login opens their account.
    A forged or expired nonce is refused first; the nonce is written only after the verification,
    which may fetch revocation data, so that no write transaction waits on the network (on SQLite
    it would hold the database's write lock). Of two answers racing with one nonce, one records it.
    """
    nonce_expiry(nonce_secret, nonce, now)
    try:
        verified = verify_card(card, nonce, trust.anchors(), trust.rules, trust.revocation, now)
    except CertificateRejected:
        consume_nonce(uow, nonce_secret, nonce, now)
        uow.commit()
        raise
    consume_nonce(uow, nonce_secret, nonce, now)
    return services.account_for_login(uow, verified.national_id, verified.name, now)
