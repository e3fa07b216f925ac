"""The sandbox eID certificate authority and cards, generated into the instance folder.

A root CA and an intermediate ("citizen certificate") CA, like the government root and MOICA, and
one card per persona: an EC P-256 key, encrypted under the card's PIN (so that the PIN really is
what unlocks signing), and a certificate whose subject serialNumber is the national ID and which
carries the sandbox citizen-certificate policy. The issuing CA publishes a CRL (``ca.crl``, DER),
which the sandbox platform checks and also serves at ``/sandbox/eid/ca.crl``. Everything here is
public test material, never committed.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

ROOT_NAME = "MyData Sandbox Root CA"
INTERMEDIATE_NAME = "MyData Sandbox Citizen Certificate CA"
CA_LIFETIME = dt.timedelta(days=20 * 365)
CARD_LIFETIME = dt.timedelta(days=5 * 365)
#: How long a published sandbox CRL holds (its nextUpdate); seeding publishes it again once half has passed.
CRL_LIFETIME = dt.timedelta(days=30)
#: How long a sandbox OCSP answer holds (its nextUpdate): a revocation reaches a platform that asks
#: OCSP within this time.
OCSP_LIFETIME = dt.timedelta(minutes=1)
#: The sandbox's citizen-certificate policy, an OID in the UUID arc (ITU-T X.667) that needs no
#: registration; its cards carry it as MOICA's carry theirs.
CITIZEN_POLICY_OID = "2.25.196761710115340127201394108090381424130"


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate and private key."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def name(common_name: str, serial_number: str | None = None) -> x509.Name:
    """Return a sandbox subject name (C=TW, O=MyData Sandbox, CN, and serialNumber for cards)."""
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "TW"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MyData Sandbox"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if serial_number:
        attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, serial_number))
    return x509.Name(attributes)


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def make_authority(common_name: str, now: dt.datetime, issuer: Authority | None = None) -> Authority:
    """Create a root CA (no *issuer*) or an intermediate CA issued by *issuer* (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.certificate.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0 if issuer else 1), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    signer = issuer.key if issuer else key
    builder = builder.add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
    )
    return Authority(builder.sign(signer, hashes.SHA256()), key)


def issue_card(
    issuer: Authority,
    national_id: str,
    holder: str,
    now: dt.datetime,
    key: ec.EllipticCurvePrivateKey | None = None,
    lifetime: dt.timedelta = CARD_LIFETIME,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a citizen certificate for a card: key usage digitalSignature, serialNumber = national ID."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name(holder, national_id))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
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
        .add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(CITIZEN_POLICY_OID), None)]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return certificate, key


def make_crl(
    issuer: Authority,
    revoked: dict[int, dt.datetime],
    now: dt.datetime,
    number: int,
    lifetime: dt.timedelta = CRL_LIFETIME,
) -> x509.CertificateRevocationList:
    """Sign a complete CRL of *issuer* listing *revoked* (serial -> date), valid from *now* for *lifetime*."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(now)
        .next_update(now + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    for serial, date in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(date).build()
        )
    return builder.sign(issuer.key, hashes.SHA256())


def pem(certificate: x509.Certificate) -> bytes:
    """Return a certificate as PEM."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


class SandboxPki:
    """The sandbox CA and cards in a folder (``instance/sandbox/eid``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def bundle_path(self) -> Path:
        """Return the trust bundle (root and intermediate) that eID logins are verified against."""
        return self.folder / "ca-bundle.pem"

    @property
    def issuing_path(self) -> Path:
        """Return the issuing CA's certificate: the one CA whose cards eID logins accept."""
        return self.folder / "intermediate.pem"

    @property
    def crl_path(self) -> Path:
        """Return the issuing CA's CRL (DER)."""
        return self.folder / "ca.crl"

    def card_paths(self, national_id: str) -> tuple[Path, Path]:
        """Return the certificate chain file and the PIN-encrypted key file of a card."""
        return self.folder / "cards" / f"{national_id}.pem", self.folder / "cards" / f"{national_id}.key"

    def ensure_authorities(self, now: dt.datetime) -> Authority:
        """Load the CAs, or create them (and the bundle); return the intermediate that issues cards."""
        paths = [self.folder / f for f in ("root.pem", "root.key", "intermediate.pem", "intermediate.key")]
        if all(p.exists() for p in paths) and self.bundle_path.exists():
            certificate = x509.load_pem_x509_certificate(paths[2].read_bytes())
            key = serialization.load_pem_private_key(paths[3].read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return Authority(certificate, key)
        root = make_authority(ROOT_NAME, now)
        intermediate = make_authority(INTERMEDIATE_NAME, now, issuer=root)
        for authority, stem in ((root, "root"), (intermediate, "intermediate")):
            _write(self.folder / f"{stem}.pem", pem(authority.certificate))
            _write(self.folder / f"{stem}.key", _private_pem(authority.key, None), private=True)
        _write(self.bundle_path, pem(root.certificate) + pem(intermediate.certificate))
        return intermediate

    def ensure_card(self, issuer: Authority, national_id: str, holder: str, pin: str, now: dt.datetime) -> bool:
        """Create the card of *national_id* unless a card issued by *issuer* exists; tell if created."""
        certificate_path, key_path = self.card_paths(national_id)
        if certificate_path.exists() and key_path.exists():
            existing = x509.load_pem_x509_certificates(certificate_path.read_bytes())[0]
            try:
                existing.verify_directly_issued_by(issuer.certificate)
                existing.extensions.get_extension_for_class(x509.CertificatePolicies)
                return False
            except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
                pass  # issued by an earlier sandbox CA, or before cards carried the policy: issue it again
        certificate, key = issue_card(issuer, national_id, holder, now)
        _write(key_path, _private_pem(key, pin), private=True)
        _write(certificate_path, pem(certificate) + pem(issuer.certificate))
        return True

    def ensure_crl(self, issuer: Authority, now: dt.datetime) -> bool:
        """Publish the CRL again if it is missing, of another CA, or past half its lifetime; tell if published."""
        crl = self._crl(issuer)
        if crl is not None and crl.next_update_utc is not None and now < crl.next_update_utc - CRL_LIFETIME / 2:
            return False
        self.publish_crl(issuer, now)
        return True

    def publish_crl(
        self, issuer: Authority, now: dt.datetime, revoke: int | None = None
    ) -> x509.CertificateRevocationList:
        """Sign and write a new CRL that keeps every revocation so far, adding serial *revoke* if given."""
        crl = self._crl(issuer)
        revoked = {entry.serial_number: entry.revocation_date_utc for entry in crl} if crl is not None else {}
        if revoke is not None:
            revoked.setdefault(revoke, now)
        number = 1
        if crl is not None:
            number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
        new = make_crl(issuer, revoked, now, number)
        _write(self.crl_path, new.public_bytes(serialization.Encoding.DER))
        return new

    def revoke_card(self, national_id: str, now: dt.datetime) -> x509.Certificate:
        """Revoke the card of *national_id*: publish a CRL that lists it; return its certificate.

        Raise :class:`FileNotFoundError` when there is no such card (or no sandbox CA).
        """
        certificate_path, _ = self.card_paths(national_id)
        certificate = x509.load_pem_x509_certificates(certificate_path.read_bytes())[0]
        issuer = self.issuing_authority()
        if issuer is None:
            raise FileNotFoundError(self.issuing_path)
        self.publish_crl(issuer, now, revoke=certificate.serial_number)
        return certificate

    def issuing_authority(self) -> Authority | None:
        """Load the issuing CA and its key, or return None before `mydata sandbox seed` has made them."""
        try:
            certificate = x509.load_pem_x509_certificate(self.issuing_path.read_bytes())
            key = serialization.load_pem_private_key((self.folder / "intermediate.key").read_bytes(), password=None)
        except (OSError, ValueError):
            return None
        return Authority(certificate, key) if isinstance(key, ec.EllipticCurvePrivateKey) else None

    def answer_ocsp(self, request_der: bytes, now: dt.datetime) -> bytes:
        """Answer an OCSP request (RFC 6960) from the published CRL, signed by the issuing CA itself.

        A serial on the CRL is revoked, any other serial of this CA is good (as CRL-based responders
        answer); a request about another CA gets ``unauthorized``.
        """
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _ocsp_error(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        issuer = self.issuing_authority()
        if issuer is None:
            return _ocsp_error(ocsp.OCSPResponseStatus.INTERNAL_ERROR)
        algorithm = request.hash_algorithm
        expected = (
            _digest(issuer.certificate.subject.public_bytes(), algorithm),
            _digest(_key_bits(issuer), algorithm),
        )
        if expected != (request.issuer_name_hash, request.issuer_key_hash):
            return _ocsp_error(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        crl = self._crl(issuer)
        entry = crl.get_revoked_certificate_by_serial_number(request.serial_number) if crl is not None else None
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=ocsp.OCSPCertStatus.REVOKED if entry is not None else ocsp.OCSPCertStatus.GOOD,
            this_update=now,
            next_update=now + OCSP_LIFETIME,
            revocation_time=entry.revocation_date_utc if entry is not None else None,
            revocation_reason=None,
        )
        response = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.certificate).sign(
            issuer.key, hashes.SHA256()
        )
        return response.public_bytes(serialization.Encoding.DER)

    def _crl(self, issuer: Authority) -> x509.CertificateRevocationList | None:
        """Return the published CRL if it is the current issuing CA's."""
        try:
            crl = x509.load_der_x509_crl(self.crl_path.read_bytes())
        except (OSError, ValueError):
            return None
        public_key = issuer.key.public_key()
        return crl if crl.issuer == issuer.certificate.subject and crl.is_signature_valid(public_key) else None


def _ocsp_error(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _key_bits(authority: Authority) -> bytes:
    """Return the subjectPublicKey BIT STRING contents of a CA's key (what OCSP's issuerKeyHash hashes)."""
    return authority.key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _digest(data: bytes, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashes.Hash(algorithm)
    digest.update(data)
    return digest.finalize()


def _private_pem(key: ec.EllipticCurvePrivateKey, password: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    )
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
