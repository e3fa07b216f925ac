"""A relying party's MyData client: the whole protocol as a bank's engineer writes it (DESIGN §3.3, §6.2).

This module is the reference code of docs/integrators.md. It talks to the platform over HTTP only,
at the URLs the platform publishes (discovery, RFC 8414), with joserfc for every JOSE operation and
requests for HTTP; it imports nothing of the platform. Copy it, keep the checks.

One application (申請案件) goes through these calls, in this order::

    client = MyDataClient(ClientSettings(issuer=..., client_id=..., redirect_uri=..., keys=...))
    start = client.start_authorization(authorization_details)      # PAR: private_key_jwt + DPoP + PKCE
    ... send the browser to start.authorization_url (303) ...
    code = client.authorization_code(callback_query, start.state)  # state and iss (RFC 9207)
    tokens = client.redeem_code(code, start)                        # token: private_key_jwt + DPoP
    package = client.collect_delivery(tokens, start.dpop_key)       # delivery: DPoP + ath, JWE, JWS,
                                                                    # each agency's provider_jws

Every check that fails raises :class:`VerificationFailed` (do not use anything received); refusals
of the platform raise :class:`AuthorizationError`, :class:`TokenError` or :class:`DeliveryRefused`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

import requests
from joserfc import jwe, jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

#: The only algorithms this client accepts from the platform and its agencies (never `none`, never HS*).
PLATFORM_ALGORITHMS = ("ES256",)
PROVIDER_ALGORITHMS = ("ES256", "PS256")
#: The package's key management and content encryption, for an EC P-256 `enc` key (DESIGN §6.2).
JWE_ALGORITHMS = ("ECDH-ES+A256KW", "A256GCM")
#: Explicit JWT types (RFC 8725 §3.11): the package and an agency's answer cannot be mistaken for another JWT.
PACKAGE_TYP = "mydata-package+jwt"
PROVIDER_TYP = "mydata-response+jwt"
DELIVERY_PATH = "/api/v1/delivery"
DELIVERY_TYPE = "mydata_delivery"
#: FAPI 2.0 asks for short-lived client assertions; the platform refuses more than 5 minutes.
ASSERTION_LIFETIME = 60
#: Tolerated clock difference with the platform when checking `exp` and `iat`, in seconds.
LEEWAY = 30
TIMEOUT = 30.0
#: How long discovery, JWKS and the catalogue are kept before they are fetched again, in seconds.
METADATA_MAX_AGE = 300.0


class MyDataError(Exception):
    """Something went wrong with MyData; ``error`` is a snake_case code, the message says what."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class VerificationFailed(MyDataError):
    """A signature or a claim did not verify: nothing received may be used."""

    def __init__(self, description: str) -> None:
        super().__init__("verification_failed", description)


class AuthorizationError(MyDataError):
    """The authorization response carries an error (RFC 6749 §4.1.2.1), e.g. ``access_denied``."""


class TokenError(MyDataError):
    """The token endpoint refused the code (RFC 6749 §5.2)."""


class DeliveryRefused(MyDataError):
    """The delivery API answered with an error (DESIGN §6.2).

    ``status`` is the HTTP status; ``datasets`` the per-dataset outcomes of a 503
    ``provider_unavailable``; ``retry_after`` its Retry-After in seconds; ``www_authenticate`` the
    challenge of a 401.
    """

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        *,
        datasets: Mapping[str, str] | None = None,
        retry_after: int | None = None,
        www_authenticate: str | None = None,
    ) -> None:
        super().__init__(error, description)
        self.status = status
        self.datasets = dict(datasets or {})
        self.retry_after = retry_after
        self.www_authenticate = www_authenticate


@dataclass(frozen=True)
class ClientSettings:
    """What the relying party registered: its issuer, client id, redirect URI and private keys."""

    issuer: str
    client_id: str
    redirect_uri: str
    #: The private JWKS: one `sig` key (ES256) for client assertions, one `enc` key for packages.
    keys: KeySet

    def key(self, use: str) -> ECKey:
        """Return the private key registered for *use* (``sig`` or ``enc``)."""
        found = [k for k in self.keys.keys if k.get("use") == use]
        if len(found) != 1 or not isinstance(found[0], ECKey):
            raise ValueError(f"the client JWKS needs exactly one EC key with use {use!r}")
        return found[0]


@dataclass(frozen=True)
class AuthorizationStart:
    """What to keep between the PAR call and the callback (server-side: it holds secrets)."""

    authorization_url: str
    state: str
    nonce: str
    code_verifier: str
    #: The DPoP key of this application (RFC 9449 §2): the code and the token are bound to it.
    dpop_key: ECKey


@dataclass(frozen=True)
class Tokens:
    """A redeemed code: the DPoP-bound access token and the verified ID token claims."""

    access_token: str
    expires_at: float
    id_token: dict[str, Any]
    authorization_details: list[dict[str, Any]]


@dataclass(frozen=True)
class Check:
    """One verification that held, for the record the relying party keeps."""

    what: str
    detail: str


@dataclass(frozen=True)
class VerifiedDataset:
    """One dataset of a package, its agency signature verified."""

    id: str
    provider: str
    status: str  # ok | no_record | unavailable (an optional dataset the agency could not give)
    generated_at: str | None = None
    data: dict[str, Any] | None = None
    #: The agency's name as the public catalogue gives it.
    agency_zh: str = ""
    agency_en: str = ""


@dataclass(frozen=True)
class Package:
    """A verified data package (DESIGN §6.2)."""

    txn: str
    subject: str
    service: str
    purpose: str
    receipt: str
    issued_at: int
    datasets: dict[str, VerifiedDataset]
    checks: list[Check] = field(default_factory=list)


class _Cached:
    """A JSON document fetched over HTTP, kept for a while, fetched again when stale or when asked."""

    def __init__(self, fetch: Callable[[], Any], max_age: float = METADATA_MAX_AGE) -> None:
        self._fetch = fetch
        self._max_age = max_age
        self._lock = threading.Lock()
        self._value: Any = None
        self._fetched_at = 0.0

    def get(self, *, refresh: bool = False) -> Any:
        with self._lock:
            now = time.monotonic()
            # A refresh (an unknown kid: the keys may have rotated) at most once a second, so that
            # made-up kids cannot make us hammer the platform.
            age = now - self._fetched_at
            if self._value is None or age > self._max_age or (refresh and age > 1):
                self._value = self._fetch()
                self._fetched_at = now
            return self._value


def b64url_sha256(value: str) -> str:
    """Return base64url(SHA-256(ASCII value)) without padding: PKCE S256 (RFC 7636 §4.2) and DPoP `ath`."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class MyDataClient:
    """The relying party's side of the MyData protocol, over HTTP."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        http: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.http = http or requests.Session()
        if http is None:
            # The platform is reached directly, not through a proxy named in the environment.
            # A bank behind an outgoing proxy configures it here explicitly instead.
            self.http.trust_env = False
        self._metadata = _Cached(self._fetch_metadata)
        self._platform_jwks = _Cached(lambda: self._get_json(self.metadata()["jwks_uri"]))
        self._catalogue = _Cached(lambda: self._get_json(self.settings.issuer + "/api/v1/catalogue"))

    # -- what the platform publishes ------------------------------------------------------------

    def _get_json(self, url: str) -> Any:
        response = self.http.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    def _fetch_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self._get_json(self.settings.issuer + "/.well-known/openid-configuration")
        # RFC 8414 §3.3: the metadata must name the issuer we asked, or it is not to be used.
        if metadata.get("issuer") != self.settings.issuer:
            raise VerificationFailed("The discovery document names another issuer.")
        return metadata

    def metadata(self) -> dict[str, Any]:
        """Return the platform's server metadata (RFC 8414, OpenID Connect Discovery)."""
        return dict(self._metadata.get())

    def platform_keys(self, kid: str | None) -> KeySet:
        """Return the platform's public keys, fetched again once if *kid* is not among them (rotation)."""
        keys = KeySet.import_key_set(self._platform_jwks.get())
        if kid is not None and not _has_kid(keys, kid):
            keys = KeySet.import_key_set(self._platform_jwks.get(refresh=True))
        return keys

    def provider(self, provider: str, kid: str | None) -> tuple[KeySet, dict[str, Any]]:
        """Return an agency's public keys and catalogue entry (DESIGN §4.1), fetched again for an unknown kid."""
        for refresh in (False, True):
            catalogue = self._catalogue.get(refresh=refresh)
            for entry in catalogue.get("providers", []):
                if entry.get("id") == provider:
                    keys = KeySet.import_key_set(entry["jwks"])
                    if kid is None or _has_kid(keys, kid):
                        return keys, dict(entry)
        raise VerificationFailed(f"The catalogue has no key {kid!r} for provider {provider!r}.")

    # -- messages this client signs -------------------------------------------------------------

    def client_assertion(self) -> dict[str, str]:
        """Return the form fields of private_key_jwt client authentication (RFC 7523 §2.2, §3)."""
        now = int(self.clock())
        key = self.settings.key("sig")
        claims = {
            "iss": self.settings.client_id,
            "sub": self.settings.client_id,
            # FAPI 2.0 Security Profile §5.3.2.1: the audience is the issuer identifier, nothing else.
            "aud": self.settings.issuer,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": secrets.token_urlsafe(24),  # single use: the platform refuses a replay
        }
        assertion = jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"])
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }

    def dpop_proof(self, dpop_key: ECKey, method: str, url: str, access_token: str | None = None) -> str:
        """Return a DPoP proof for one HTTP request (RFC 9449 §4.2); with `ath` when sending a token."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(24),
            "htm": method,
            "htu": url,  # without query and fragment (§4.2)
            "iat": int(self.clock()),
        }
        if access_token is not None:
            claims["ath"] = b64url_sha256(access_token)  # binds the proof to this token (§4.2, §7)
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": dpop_key.as_dict(private=False)}
        return jwt.encode(header, claims, dpop_key, algorithms=["ES256"])

    # -- 1. the pushed authorization request ----------------------------------------------------

    def start_authorization(
        self, authorization_details: list[dict[str, Any]], *, ui_locales: str | None = None
    ) -> AuthorizationStart:
        """Push the authorization request (RFC 9126) and return where to send the browser.

        Makes the PKCE verifier (RFC 7636, S256 only), `state`, `nonce` and a fresh DPoP key; the
        DPoP proof at PAR binds the authorization code to that key (RFC 9449 §10).
        """
        metadata = self.metadata()
        endpoint = metadata["pushed_authorization_request_endpoint"]
        code_verifier = secrets.token_urlsafe(64)
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        dpop_key = ECKey.generate_key("P-256")
        form = {
            "client_id": self.settings.client_id,
            "response_type": "code",
            "redirect_uri": self.settings.redirect_uri,
            "scope": "openid",
            "state": state,
            "nonce": nonce,
            "code_challenge": b64url_sha256(code_verifier),
            "code_challenge_method": "S256",
            # Rich Authorization Requests (RFC 9396): what is asked is a delivery of one service.
            "authorization_details": _json(authorization_details),
            **self.client_assertion(),
        }
        if ui_locales:
            form["ui_locales"] = ui_locales
        response = self.http.post(
            endpoint, data=form, headers={"DPoP": self.dpop_proof(dpop_key, "POST", endpoint)}, timeout=TIMEOUT
        )
        if response.status_code != 201:
            error, description = _oauth_error(response)
            raise AuthorizationError(error, description)
        request_uri = response.json()["request_uri"]
        # The authorization endpoint takes nothing but client_id and request_uri (RFC 9126 §4).
        url = _with_query(
            metadata["authorization_endpoint"], {"client_id": self.settings.client_id, "request_uri": request_uri}
        )
        return AuthorizationStart(url, state, nonce, code_verifier, dpop_key)

    # -- 2. the callback ------------------------------------------------------------------------

    def authorization_code(self, query: Mapping[str, str], expected_state: str) -> str:
        """Check the authorization response and return its code, or raise the error it carries.

        `state` must be the one of this browser's request (RFC 6749 §10.12: CSRF), and `iss` this
        platform (RFC 9207 §2.4: mix-up attacks), on errors too.
        """
        if not hmac.compare_digest(query.get("state", ""), expected_state):
            raise VerificationFailed("The state of the answer is not the state of this application.")
        if query.get("iss") != self.settings.issuer:
            raise VerificationFailed("The answer does not come from the expected issuer (iss, RFC 9207).")
        if "error" in query:
            raise AuthorizationError(query["error"], query.get("error_description", ""))
        code = query.get("code")
        if not code:
            raise VerificationFailed("The answer carries neither a code nor an error.")
        return code

    # -- 3. the token call ----------------------------------------------------------------------

    def redeem_code(self, code: str, start: AuthorizationStart) -> Tokens:
        """Exchange the code for a DPoP-bound access token and a verified ID token."""
        endpoint = self.metadata()["token_endpoint"]
        response = self.http.post(
            endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.settings.redirect_uri,
                "code_verifier": start.code_verifier,
                **self.client_assertion(),
            },
            headers={"DPoP": self.dpop_proof(start.dpop_key, "POST", endpoint)},
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            error, description = _oauth_error(response)
            raise TokenError(error, description)
        body = response.json()
        if str(body.get("token_type", "")).lower() != "dpop":
            # A bearer token could be used by anyone who sees it; this client only takes bound ones.
            raise VerificationFailed("The access token is not DPoP-bound (token_type).")
        access_token = str(body["access_token"])
        claims = self.verify_id_token(str(body["id_token"]), nonce=start.nonce, access_token=access_token)
        return Tokens(
            access_token=access_token,
            expires_at=self.clock() + int(body.get("expires_in", 0)),
            id_token=claims,
            authorization_details=list(body.get("authorization_details") or []),
        )

    def verify_id_token(self, id_token: str, *, nonce: str, access_token: str) -> dict[str, Any]:
        """Verify an ID token (OpenID Connect Core §3.1.3.7) and return its claims."""
        claims = self._verify_platform_jwt(id_token, typ=None)
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            txn={"essential": True},
        )
        _validate(registry, claims, "ID token")
        if isinstance(claims["aud"], list) and claims.get("azp") != self.settings.client_id:
            raise VerificationFailed("The ID token has several audiences and another azp.")
        # The nonce ties the ID token to this browser's request (Core §3.1.2.1, §15.5.2).
        if not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise VerificationFailed("The ID token nonce is not the nonce of this application.")
        # at_hash ties the ID token to the access token issued with it (Core §3.1.3.6).
        if "at_hash" in claims:
            digest = hashlib.sha256(access_token.encode("ascii")).digest()
            expected = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()
            if not hmac.compare_digest(str(claims["at_hash"]), expected):
                raise VerificationFailed("The ID token at_hash does not match the access token.")
        return claims

    # -- 4. the delivery ------------------------------------------------------------------------

    def collect_delivery(self, tokens: Tokens, dpop_key: ECKey) -> Package:
        """Collect the package once (DESIGN §6.2): decrypt it, verify it and every agency document in it."""
        url = self.settings.issuer + DELIVERY_PATH
        response = self.http.get(
            url,
            headers={
                # RFC 9449 §7.1: the DPoP scheme, and a proof over this request with the token's hash.
                "Authorization": f"DPoP {tokens.access_token}",
                "DPoP": self.dpop_proof(dpop_key, "GET", url, access_token=tokens.access_token),
                "Accept": "application/jose",
            },
            timeout=TIMEOUT,
        )
        if response.status_code != 200:
            raise _delivery_refusal(response)
        if response.headers.get("Content-Type", "").split(";")[0].strip() != "application/jose":
            raise VerificationFailed("The delivery answer is not application/jose.")
        return self.open_package(response.text, tokens)

    def open_package(self, sealed: str, tokens: Tokens) -> Package:
        """Decrypt the JWE, verify the platform's JWS inside, then each agency's signature."""
        checks: list[Check] = []
        enc_key = self.settings.key("enc")
        try:
            decrypted = jwe.decrypt_compact(sealed, enc_key, algorithms=list(JWE_ALGORITHMS))
        except JoseError as exc:
            raise VerificationFailed(f"The package does not decrypt with our enc key ({exc.error}).") from None
        header = decrypted.protected  # authenticated by A256GCM together with the content
        if (header.get("alg"), header.get("enc")) != JWE_ALGORITHMS or header.get("kid") != enc_key.kid:
            raise VerificationFailed("The package is not encrypted as registered (alg, enc, kid).")
        if header.get("cty") != "JWT":
            raise VerificationFailed("The encrypted content is not a JWT (cty).")
        assert decrypted.plaintext is not None
        checks.append(Check("jwe", f"{header['alg']} + {header['enc']}, kid {header['kid']}"))

        signed = decrypted.plaintext.decode("ascii")
        claims = self._verify_platform_jwt(signed, typ=PACKAGE_TYP)
        registry = jwt.JWTClaimsRegistry(
            now=int(self.clock()),
            leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            aud={"essential": True, "value": self.settings.client_id},
            # The package belongs to this consent and this citizen: the ID token's txn and sub.
            txn={"essential": True, "value": tokens.id_token["txn"]},
            sub={"essential": True, "value": tokens.id_token["sub"]},
            iat={"essential": True},
            service={"essential": True},
            datasets={"essential": True},
        )
        _validate(registry, claims, "package")
        platform_kid = jws.extract_compact(signed.encode()).headers().get("kid")
        checks.append(Check("package", f"ES256, kid {platform_kid}; iss, aud, txn, sub, iat"))

        granted = _granted_datasets(tokens.authorization_details, str(claims["service"]))
        if granted is not None and set(claims["datasets"]) != set(granted):
            raise VerificationFailed("The package's datasets are not the datasets the citizen granted.")
        datasets: dict[str, VerifiedDataset] = {}
        persons: set[str] = set()
        for dataset_id, entry in claims["datasets"].items():
            verified, person, check = self.verify_provider_document(dataset_id, entry, txn=str(claims["txn"]))
            datasets[dataset_id] = verified
            if person is not None:
                persons.add(person)
            if check is not None:
                checks.append(check)
        # Every agency document must be about one and the same person.
        if len(persons) > 1:
            raise VerificationFailed("The agency documents are about different persons.")
        return Package(
            txn=str(claims["txn"]),
            subject=str(claims["sub"]),
            service=str(claims["service"]),
            purpose=str(claims.get("purpose", "")),
            receipt=str(claims.get("receipt", "")),
            issued_at=int(claims["iat"]),
            datasets=datasets,
            checks=checks,
        )

    def verify_provider_document(
        self, dataset_id: str, entry: Mapping[str, Any], *, txn: str
    ) -> tuple[VerifiedDataset, str | None, Check | None]:
        """Verify one dataset entry: its agency's JWS against the catalogue keys, and that it says what the entry says.

        Returns the dataset, the person the agency document is about (its `sub`) and the check made.
        """
        provider, status = str(entry.get("provider", "")), str(entry.get("status", ""))
        if status in ("no_record", "unavailable"):
            return VerifiedDataset(dataset_id, provider, status), None, None
        if status != "ok":
            raise VerificationFailed(f"Dataset {dataset_id}: unknown status {status!r}.")
        document = str(entry.get("provider_jws", ""))
        try:
            header = jws.extract_compact(document.encode()).headers()
        except (JoseError, ValueError):
            raise VerificationFailed(f"Dataset {dataset_id}: the agency document is not a compact JWS.") from None
        if header.get("typ") != PROVIDER_TYP:
            raise VerificationFailed(f"Dataset {dataset_id}: the agency document has the wrong typ.")
        keys, catalogue_entry = self.provider(provider, header.get("kid"))
        try:
            token = jwt.decode(document, keys, algorithms=list(PROVIDER_ALGORITHMS))
        except JoseError as exc:
            raise VerificationFailed(
                f"Dataset {dataset_id}: the signature of {provider} does not verify ({exc.error})."
            ) from None
        signed = token.claims
        # The agency signed what the platform says it signed: same dataset, consent, time and data.
        expected = {
            "dataset": dataset_id,
            "txn": txn,
            "generated_at": entry.get("generated_at"),
            "data": entry.get("data"),
        }
        for name, value in expected.items():
            if signed.get(name) != value:
                raise VerificationFailed(f"Dataset {dataset_id}: the agency's {name} differs from the package's.")
        verified = VerifiedDataset(
            dataset_id,
            provider,
            "ok",
            str(signed["generated_at"]),
            dict(signed["data"]),
            agency_zh=str(catalogue_entry.get("agency_name_zh", provider)),
            agency_en=str(catalogue_entry.get("agency_name_en", provider)),
        )
        check = Check("provider", f"{dataset_id}: {provider}, {header.get('alg')}, kid {header.get('kid')}")
        return verified, str(signed.get("sub", "")), check

    def _verify_platform_jwt(self, token: str, *, typ: str | None) -> dict[str, Any]:
        """Verify a JWT signed by the platform (ES256, a key of its jwks_uri); return its claims."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError):
            raise VerificationFailed("The platform's token is not a compact JWS.") from None
        if typ is not None and header.get("typ") != typ:
            raise VerificationFailed(f"The platform's token is not of type {typ}.")
        try:
            decoded = jwt.decode(token, self.platform_keys(header.get("kid")), algorithms=list(PLATFORM_ALGORITHMS))
        except JoseError as exc:
            raise VerificationFailed(f"The platform's signature does not verify ({exc.error}).") from None
        return dict(decoded.claims)


def load_private_jwks(document: Mapping[str, Any]) -> KeySet:
    """Return the client's private keys from their JWKS document (as the key file holds them)."""
    return KeySet.import_key_set(dict(document))  # type: ignore[arg-type]


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _validate(registry: jwt.JWTClaimsRegistry, claims: dict[str, Any], what: str) -> None:
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise VerificationFailed(f"The {what} claims do not hold ({exc.error}: {exc.description}).") from None


def _granted_datasets(details: list[dict[str, Any]], service: str) -> list[str] | None:
    """Return the datasets the token response says were granted for *service* (None: not stated)."""
    for detail in details:
        if detail.get("type") == DELIVERY_TYPE and detail.get("service") == service:
            datasets = detail.get("datasets")
            return list(datasets) if isinstance(datasets, list) else None
    return None


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _with_query(url: str, params: Mapping[str, str]) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


def _oauth_error(response: requests.Response) -> tuple[str, str]:
    """Return the error code and description of an OAuth error response (RFC 6749 §5.2)."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    return str(body.get("error", f"http_{response.status_code}")), str(body.get("error_description", ""))


def _delivery_refusal(response: requests.Response) -> DeliveryRefused:
    """Turn an error answer of the delivery API into :class:`DeliveryRefused`."""
    error, description = _oauth_error(response)
    challenge = response.headers.get("WWW-Authenticate")
    if response.status_code == 401 and challenge:
        # RFC 9449 §7.1 / RFC 6750 §3: the reason is in the challenge's auth-params.
        params = _auth_params(challenge)
        error = params.get("error", error)
        description = params.get("error_description", description)
    datasets: dict[str, str] = {}
    retry_after = None
    if response.status_code == 503:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if isinstance(body, dict) and isinstance(body.get("datasets"), dict):
            datasets = {str(k): str(v) for k, v in body["datasets"].items()}
        retry_after = _retry_after(response.headers.get("Retry-After"))
    return DeliveryRefused(
        response.status_code,
        error,
        description,
        datasets=datasets,
        retry_after=retry_after,
        www_authenticate=challenge,
    )


def _retry_after(value: str | None) -> int | None:
    """Read Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return int(value.strip())
    try:
        return max(0, int(parsedate_to_datetime(value).timestamp() - time.time()))
    except (TypeError, ValueError):
        return None


def _auth_params(challenge: str) -> dict[str, str]:
    """Return the auth-params of one WWW-Authenticate challenge (RFC 9110 §11.6.1)."""
    return {m.group(1): m.group(2) for m in re.finditer(r'(\w+)="((?:[^"\\]|\\.)*)"', challenge)}
