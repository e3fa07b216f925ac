"""Revocation of eID certificates (憑證廢止): CRLs cached until their nextUpdate, and OCSP where configured.

Only the configured sources are asked, never the addresses a certificate names (an attacker's
certificate could name any URL). An answer counts only when the issuing CA signed it: a CRL with the
CA's key, an OCSP answer with the CA's key or a responder certificate the CA issued for OCSP signing.

Each answer is kept until its nextUpdate, so a login with a fresh cache costs a dictionary look-up.
When none can be had fresh (the source is down, or publishes stale CRLs), the newest cached answer
is used for at most the grace period past its nextUpdate, with a warning in the log; after that
every login with a certificate of that CA is refused ("fails closed") until a fresh answer arrives,
and the log says which CA, which source, how stale and why.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from identity.interfaces import CertificateRejected, RevocationFetcher, RevocationSourceFailed

log = logging.getLogger(__name__)

#: After a source failed, it is not asked again for this long (each login would wait for its timeout).
RETRY_AFTER = dt.timedelta(seconds=30)
#: An answer dated this far in the future is still accepted (clocks differ a little).
CLOCK_SKEW = dt.timedelta(minutes=5)
#: How long an OCSP answer without nextUpdate is kept (RFC 5019 §2.2.4 wants nextUpdate; be safe).
OCSP_DEFAULT_LIFETIME = dt.timedelta(minutes=5)
#: The largest CRL or OCSP answer read (a national CA's full CRL is tens of megabytes).
MAX_BYTES = 64 * 1024 * 1024


class HttpFetcher:
    """Fetch revocation data with ``requests``, with short timeouts and a size cap."""

    def __init__(self, timeout: float, max_bytes: int = MAX_BYTES) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes

    def get(self, url: str) -> bytes:
        """Return the body at *url*; raise :class:`RevocationSourceFailed`."""
        return self._send("GET", url, None, {})

    def post(self, url: str, body: bytes, content_type: str) -> bytes:
        """Post *body* to *url*; raise :class:`RevocationSourceFailed`."""
        return self._send("POST", url, body, {"Content-Type": content_type})

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        try:
            # No shared Session: fetches are rare, and a Session is not meant to be shared by threads.
            with requests.request(
                method, url, data=body, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False
            ) as response:
                if response.status_code != 200:
                    raise RevocationSourceFailed(f"HTTP {response.status_code}")
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise RevocationSourceFailed(f"more than {self.max_bytes} bytes")
                return bytes(data)
        except requests.RequestException as exc:
            raise RevocationSourceFailed(f"{type(exc).__name__}: {exc}") from None


@dataclass(frozen=True)
class Answer:
    """What one source says about one certificate, and until when that holds."""

    source: str
    next_update: dt.datetime
    revoked_at: dt.datetime | None = None

    def fresh(self, now: dt.datetime) -> bool:
        """Tell if the answer still holds at *now*."""
        return now < self.next_update


@dataclass(frozen=True)
class _Crl:
    """A CRL that verified under an issuing CA's key, with its revoked serials indexed."""

    signer: x509.Certificate
    this_update: dt.datetime
    next_update: dt.datetime
    revoked: dict[int, dt.datetime]
    scope: frozenset[str] | None  # the distribution point names a partitioned CRL covers


@dataclass
class _Source:
    """One configured CRL source and what was last read from it."""

    location: str
    crl: _Crl | None = None
    mtime: float | None = None
    retry_at: dt.datetime | None = None
    error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def is_file(self) -> bool:
        return not self.location.startswith(("http://", "https://"))


class RevocationChecker:
    """Answer whether a card certificate is revoked, from CRLs and OCSP, within a grace period."""

    def __init__(
        self,
        crl_sources: Sequence[str],
        ocsp_url: str,
        grace: dt.timedelta,
        fetcher: RevocationFetcher,
    ) -> None:
        self.sources = [_Source(_location(s)) for s in crl_sources]
        self.ocsp_url = ocsp_url
        self.grace = grace
        self.fetcher = fetcher
        self._ocsp: dict[tuple[bytes, int], Answer] = {}
        self._ocsp_retry: dict[bytes, tuple[dt.datetime, str]] = {}
        self._ocsp_lock = threading.Lock()

    def check(
        self,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        issuing: Sequence[x509.Certificate],
        now: dt.datetime,
    ) -> None:
        """Return if *certificate* (issued by *issuer*) is not revoked; raise :class:`CertificateRejected`.

        *issuing* are all configured issuing CAs: a CRL source belongs to the one whose key signed it.
        """
        held: list[Answer] = []
        errors: list[str] = []
        if self.ocsp_url:
            answer = self._ocsp_answer(certificate, issuer, now, errors)
            if answer is not None:
                if answer.fresh(now):
                    return _decide(answer)
                held.append(answer)
        if self.sources:
            answer = self._crl_answer(certificate, issuer, issuing, now, errors)
            if answer is not None:
                if answer.fresh(now):
                    return _decide(answer)
                held.append(answer)
        for answer in held:
            _decide(answer)  # a revocation stays a revocation, however old the list that says so
        best = max(held, key=lambda a: a.next_update, default=None)
        authority = issuer.subject.rfc4514_string()
        if best is not None and now < best.next_update + self.grace:
            log.warning(
                "eID revocation: no fresh answer for certificates of %s; using the one from %s, stale by %d s "
                "(grace period %d s). %s",
                authority,
                best.source,
                (now - best.next_update).total_seconds(),
                self.grace.total_seconds(),
                "; ".join(errors),
            )
            return None
        if best is not None:
            why = (
                f"the newest answer, from {best.source}, is stale by {(now - best.next_update).total_seconds():.0f} s, "
                f"beyond the grace period of {self.grace.total_seconds():.0f} s"
            )
        else:
            why = "no answer was ever obtained"
        log.error(
            "eID revocation: refusing the logins of certificates issued by %s (fail closed): %s. Sources: %s. %s",
            authority,
            why,
            ", ".join(self._locations()) or "none configured",
            "; ".join(errors),
        )
        raise CertificateRejected("revocation_unknown", "The revocation status of the certificate cannot be checked.")

    def _locations(self) -> list[str]:
        return ([f"OCSP {self.ocsp_url}"] if self.ocsp_url else []) + [f"CRL {s.location}" for s in self.sources]

    # -- CRLs -------------------------------------------------------------------------------------

    def _crl_answer(
        self,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        issuing: Sequence[x509.Certificate],
        now: dt.datetime,
        errors: list[str],
    ) -> Answer | None:
        names = _distribution_points(certificate)
        best: tuple[_Source, _Crl] | None = None
        for source in self.sources:
            crl = source.crl
            if crl is None or not crl.next_update > now or (source.is_file and _mtime(source) != source.mtime):
                crl = self._refresh(source, issuing, now)
            if source.error:
                errors.append(f"CRL {source.location}: {source.error}")
            if crl is None or crl.signer != issuer or (crl.scope is not None and not crl.scope & names):
                continue
            if best is None or crl.this_update > best[1].this_update:
                best = (source, crl)
        if best is None:
            return None
        source, crl = best
        return Answer(f"CRL {source.location}", crl.next_update, crl.revoked.get(certificate.serial_number))

    def _refresh(self, source: _Source, issuing: Sequence[x509.Certificate], now: dt.datetime) -> _Crl | None:
        """Read *source* again unless it failed moments ago; keep what it had when it fails."""
        with source.lock:  # one fetch per source at a time; the others wait and use its result
            if source.retry_at is not None and now < source.retry_at:
                return source.crl
            unchanged = not source.is_file or _mtime(source) == source.mtime
            if source.crl is not None and source.crl.next_update > now and unchanged:
                return source.crl  # another thread refreshed it meanwhile
            mtime = _mtime(source) if source.is_file else None
            try:
                data = Path(source.location).read_bytes() if source.is_file else self.fetcher.get(source.location)
                crl = _load_crl(data, issuing, now)
            except (OSError, RevocationSourceFailed) as exc:
                source.error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                source.retry_at = now + RETRY_AFTER
                log.warning("eID revocation: cannot use the CRL at %s: %s", source.location, source.error)
                return source.crl
            if source.crl is not None and crl.signer == source.crl.signer and crl.this_update < source.crl.this_update:
                source.error = "the source served an older CRL than the one cached"
                source.retry_at = now + RETRY_AFTER
                return source.crl
            source.crl, source.mtime, source.error = crl, mtime, ""
            source.retry_at = None if crl.next_update > now else now + RETRY_AFTER
            if not crl.next_update > now:
                source.error = f"the CRL it publishes expired at {crl.next_update.isoformat()}"
            return crl

    # -- OCSP -------------------------------------------------------------------------------------

    def _ocsp_answer(
        self, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime, errors: list[str]
    ) -> Answer | None:
        key = (issuer.fingerprint(hashes.SHA256()), certificate.serial_number)
        cached = self._ocsp.get(key)
        if cached is not None and cached.fresh(now):
            return cached
        with self._ocsp_lock:
            retry = self._ocsp_retry.get(key[0])
            if retry is not None and now < retry[0]:
                errors.append(f"OCSP {self.ocsp_url}: {retry[1]}")
                return cached
            request = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, hashes.SHA1()).build()  # noqa: S303  # RFC 5019 §2.1.1: CertID uses SHA-1
            try:
                body = self.fetcher.post(
                    self.ocsp_url, request.public_bytes(serialization.Encoding.DER), "application/ocsp-request"
                )
                answer = read_ocsp_response(body, certificate, issuer, now, f"OCSP {self.ocsp_url}")
            except RevocationSourceFailed as exc:
                self._ocsp_retry[key[0]] = (now + RETRY_AFTER, str(exc))
                log.warning("eID revocation: no OCSP answer from %s: %s", self.ocsp_url, exc)
                errors.append(f"OCSP {self.ocsp_url}: {exc}")
                return cached
            self._ocsp_retry.pop(key[0], None)
            self._ocsp[key] = answer
            return answer


def _decide(answer: Answer) -> None:
    if answer.revoked_at is not None:
        raise CertificateRejected(
            "revoked", f"It was revoked on {answer.revoked_at:%Y-%m-%d} ({answer.source}).", date=answer.revoked_at
        )


def _location(source: str) -> str:
    return source.removeprefix("file://") if source.startswith("file://") else source


def _mtime(source: _Source) -> float | None:
    try:
        return os.stat(source.location).st_mtime
    except OSError:
        return None


def _distribution_points(certificate: x509.Certificate) -> frozenset[str]:
    """Return the URIs of the certificate's CRL distribution points (to find its CRL partition)."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return frozenset()
    return frozenset(
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def _load_crl(data: bytes, issuing: Sequence[x509.Certificate], now: dt.datetime) -> _Crl:
    """Parse a CRL (DER or PEM), check it is a complete CRL signed by an issuing CA; raise otherwise."""
    try:
        crl = x509.load_der_x509_crl(data) if not data.lstrip().startswith(b"-----") else x509.load_pem_x509_crl(data)
    except ValueError:
        raise RevocationSourceFailed("not a CRL (DER or PEM)") from None
    signer = next((ca for ca in issuing if ca.subject == crl.issuer and _crl_signed_by(crl, ca)), None)
    if signer is None:
        raise RevocationSourceFailed(
            f"the CRL of {crl.issuer.rfc4514_string()} is not signed by a configured issuing CA (bad signature)"
        )
    if crl.next_update_utc is None:
        raise RevocationSourceFailed("the CRL has no nextUpdate")
    if crl.last_update_utc > now + CLOCK_SKEW:
        raise RevocationSourceFailed(f"the CRL is dated in the future ({crl.last_update_utc.isoformat()})")
    scope: frozenset[str] | None = None
    for extension in crl.extensions:
        if isinstance(extension.value, x509.DeltaCRLIndicator):
            raise RevocationSourceFailed("a delta CRL is not a complete list; configure the full CRL")
        if isinstance(extension.value, x509.IssuingDistributionPoint):
            idp = extension.value
            if (
                idp.only_contains_ca_certs
                or idp.only_contains_attribute_certs
                or idp.only_some_reasons
                or idp.indirect_crl
            ):
                raise RevocationSourceFailed("the CRL does not cover all revocations of end-entity certificates")
            if idp.full_name:
                scope = frozenset(n.value for n in idp.full_name if isinstance(n, x509.UniformResourceIdentifier))
        elif extension.critical and not isinstance(extension.value, x509.CRLNumber | x509.AuthorityKeyIdentifier):
            raise RevocationSourceFailed(f"the CRL has an unknown critical extension {extension.oid.dotted_string}")
    revoked = {entry.serial_number: entry.revocation_date_utc for entry in crl}
    return _Crl(signer, crl.last_update_utc, crl.next_update_utc, revoked, scope)


def _crl_signed_by(crl: x509.CertificateRevocationList, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    return isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey) and crl.is_signature_valid(key)


def read_ocsp_response(
    data: bytes, certificate: x509.Certificate, issuer: x509.Certificate, now: dt.datetime, source: str
) -> Answer:
    """Verify an OCSP answer (RFC 6960) about *certificate* and return it; raise :class:`RevocationSourceFailed`."""
    try:
        response = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise RevocationSourceFailed("not an OCSP response") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise RevocationSourceFailed(f"the responder answered {response.response_status.name}")
    signer = _ocsp_signer(response, issuer, now)
    try:
        _verify(signer.public_key(), response.signature, response.tbs_response_bytes, response.signature_hash_algorithm)
    except (InvalidSignature, UnsupportedAlgorithm, TypeError):
        raise RevocationSourceFailed("the OCSP response has a bad signature") from None
    for single in response.responses:
        if single.serial_number != certificate.serial_number:
            continue
        expected = ocsp.OCSPRequestBuilder().add_certificate(certificate, issuer, single.hash_algorithm).build()
        if (single.issuer_key_hash, single.issuer_name_hash) != (expected.issuer_key_hash, expected.issuer_name_hash):
            continue
        if single.this_update_utc > now + CLOCK_SKEW:
            raise RevocationSourceFailed("the OCSP response is dated in the future")
        next_update = single.next_update_utc or now + OCSP_DEFAULT_LIFETIME
        if single.certificate_status == ocsp.OCSPCertStatus.GOOD:
            return Answer(source, next_update)
        if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
            return Answer(source, next_update, single.revocation_time_utc or single.this_update_utc)
        raise RevocationSourceFailed("the responder does not know the certificate (status unknown)")
    raise RevocationSourceFailed("the OCSP response does not speak of this certificate")


def _ocsp_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    """Return the certificate whose key must have signed *response*: the CA or its delegated responder."""

    def named(candidate: x509.Certificate) -> bool:
        if response.responder_name is not None:
            return candidate.subject == response.responder_name
        digest = x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest
        return digest == response.responder_key_hash

    if named(issuer):
        return issuer
    for candidate in response.certificates:
        if not named(candidate):
            continue
        # RFC 6960 §4.2.2.2: a delegated responder is issued directly by the CA, for OCSP signing.
        try:
            candidate.verify_directly_issued_by(issuer)
            usages = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if (
            ExtendedKeyUsageOID.OCSP_SIGNING in usages
            and candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc
        ):
            return candidate
    raise RevocationSourceFailed("the OCSP response is not signed by the issuing CA or a responder it authorised")


def _verify(key: object, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> None:
    if algorithm is None:
        raise UnsupportedAlgorithm("no hash algorithm")
    if isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), algorithm)
    else:
        raise UnsupportedAlgorithm("responder keys are EC or RSA")
