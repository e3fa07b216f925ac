"""Authlib's authorization server, bent to the FAPI 2.0 Security Profile (DESIGN §3.3).

Authlib gives the authorization code grant, PKCE, private_key_jwt parsing, `iss` in responses,
revocation and introspection. What FAPI 2.0 needs beyond it is written here, each change marked
with the rule it implements (see shared/reference/security-profile.md for the checklist):
PAR only, PKCE S256 only and always, ES256/PS256 client assertions with `aud` = issuer and
single-use `jti`, DPoP-bound opaque tokens, 60 s single-use codes whose reuse revokes their tokens,
303 redirects, exact redirect URIs, rich authorization requests and pairwise subjects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import jwt
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from flask import Flask, current_app, has_app_context
from joserfc import jwt as jose_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Column, ColumnElement, Table, Update, bindparam, insert, update

from identity.oauth.interfaces import ConsentFlow, ConsentWindow, InvalidAuthorizationDetails, shown
from identity.oauth.models import AccessToken, AuthorizationCode, OAuthClient
from identity.services import remember_once
from mydata.clock import clock
from mydata.db import session, unit_of_work
from mydata.keys import key_store

#: FAPI 2.0 SP §5.4.1: PS256 or ES256 (never RS256, never HS*).
CLIENT_ASSERTION_ALGORITHMS = ("ES256", "PS256")
CODE_LIFETIME = 60  # FAPI 2.0 SP §5.3.2.1: at most 60 s
ACCESS_TOKEN_LIFETIME = 600  # at most; never past the consent's delivery window (DESIGN §3.3, §6.1)
ASSERTION_MAX_LIFETIME = 300
#: Longest client assertion read (a PS256 one with a 4096-bit key is about 1.2 kB).
MAX_ASSERTION_LENGTH = 8 * 1024
#: Longest `authorization_details` read, and most entries in it: refused before any work on them.
MAX_AUTHORIZATION_DETAILS_LENGTH = 8 * 1024
MAX_AUTHORIZATION_DETAILS = 10
#: How long a process trusts what it read of a client (a suspension elsewhere takes effect within this).
CLIENT_CACHE_SECONDS = 30
# Codes and tokens are written and claimed with Core statements: they are on every flow's path.
_CODE = cast(Table, AuthorizationCode.__table__)
_TOKEN = cast(Table, AccessToken.__table__)  # DESIGN §3.3: `exp` at most 5 minutes ahead
SCOPES = ("openid",)


def sha256_hex(value: str) -> str:
    """Return the hex SHA-256 under which secrets (codes, tokens, request URIs) are stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def issuer() -> str:
    """Return the issuer identifier (RFC 8414 §2)."""
    return str(current_app.config["MYDATA_ISSUER"])


def remember_jti(key: str, expires_at: int) -> bool:
    """Record a client assertion's or DPoP proof's `jti` for good; False on a replay.

    The record is committed at once, so that it stands whatever the request's outcome: a proof
    or assertion once presented stays used (RFC 9449 §11.1, RFC 7523 §3 item 7), even when the
    request then fails and rolls back. Call it before the request has written anything else.
    """
    return remember_once(unit_of_work(), key, expires_at, clock().timestamp(), commit=True)


def consent_window(transaction_id: str, authorization_details: Any = True) -> ConsentWindow | None:
    """Return the delivery window of the consent a transaction is for, when a consent flow knows it.

    A request without `authorization_details` has no consent (only those go through the consent
    flow, with their own transaction id): pass a code's or token's *authorization_details* and a
    sign-in alone (None) is answered without a statement.
    """
    flow: ConsentFlow | None = current_app.extensions.get("identity.consent_flow")
    if flow is None or authorization_details is None:
        return None
    return flow.window(unit_of_work(), transaction_id)


# -- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRecord:
    """What the server needs of a registered client: a snapshot of its row, safe to share between requests."""

    client_id: str
    name: str
    organisation_id: str | None
    jwks: dict[str, Any]
    redirect_uris: tuple[str, ...]
    status: str

    @classmethod
    def of(cls, row: OAuthClient) -> ClientRecord:
        """Copy a row."""
        return cls(row.client_id, row.name, row.organisation_id, dict(row.jwks), tuple(row.redirect_uris), row.status)


class Client(ClientMixin):  # type: ignore[misc]
    """A registered client as Authlib sees it."""

    def __init__(self, record: ClientRecord) -> None:
        self.record = record
        self.client_id = record.client_id
        self.name = record.name
        self._signing_keys: KeySet | None = None

    def get_client_id(self) -> str:
        """Return the client identifier."""
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        """Refuse to guess: every request must name its redirect URI."""
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """Keep the scopes this platform knows."""
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Compare exactly, character for character (RFC 9700 §4.1.3)."""
        return redirect_uri in self.record.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """No client has a shared secret."""
        return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Only private_key_jwt, on every endpoint (FAPI 2.0 SP §5.3.2.1)."""
        return method == "private_key_jwt"

    def check_response_type(self, response_type: str) -> bool:
        """Only the authorization code flow (FAPI 2.0 SP §5.3.2.2)."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Only authorization codes: no refresh tokens, every delivery is one-shot."""
        return grant_type == "authorization_code"

    def signing_keys(self) -> KeySet:
        """Return the client's public signature keys (imported once per snapshot)."""
        if self._signing_keys is None:
            keys = [k for k in self.record.jwks.get("keys", []) if k.get("use", "sig") == "sig"]
            self._signing_keys = KeySet.import_key_set({"keys": keys})
        return self._signing_keys

    @property
    def sector(self) -> str:
        """Return what pairwise subjects are computed for: the organisation, or the client alone."""
        return self.record.organisation_id or f"client:{self.client_id}"


class ClientDirectory:
    """Active clients by id, read from the database and kept for :data:`CLIENT_CACHE_SECONDS`.

    Every step of a flow needs the client (PAR, authorize, approval, token, userinfo), so each
    process keeps what it read for a short while. A change made through :mod:`identity.oauth.clients`
    in this process is seen at once; one made by another process (another worker, the CLI) within
    :data:`CLIENT_CACHE_SECONDS`. Unknown ids are never remembered, so a new client works at once.
    """

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[float, Client]] = {}
        self._lock = threading.Lock()
        self.monotonic = monotonic

    def get(self, client_id: str) -> Client | None:
        """Return the active client *client_id*, or None."""
        now = self.monotonic()
        entry = self._entries.get(client_id)
        if entry is None or now - entry[0] >= CLIENT_CACHE_SECONDS:
            row = session().get(OAuthClient, client_id)
            if row is None:
                self.forget(client_id)
                return None
            entry = (now, Client(ClientRecord.of(row)))
            with self._lock:
                self._entries[client_id] = entry
        client = entry[1]
        return client if client.record.status == "active" else None

    def forget(self, client_id: str | None = None) -> None:
        """Drop one client (or all) from this process's memory, after a change."""
        with self._lock:
            if client_id is None:
                self._entries.clear()
            else:
                self._entries.pop(client_id, None)


def client_directory() -> ClientDirectory:
    """Return the application's client directory."""
    return current_app.extensions["identity.oauth_clients"]  # type: ignore[no-any-return]


def forget_client(client_id: str) -> None:
    """After a change to a client: let this process read it again (other processes do within 30 s)."""
    if has_app_context() and "identity.oauth_clients" in current_app.extensions:
        client_directory().forget(client_id)


def query_client(client_id: str) -> Client | None:
    """Find an active client."""
    return client_directory().get(client_id)


# -- client authentication -----------------------------------------------------------------------


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    """private_key_jwt (RFC 7523 §2.2) with the FAPI 2.0 restrictions."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self) -> None:
        super().__init__(validate_jti=True, leeway=5)

    def get_audiences(self) -> list[str]:
        """Accept the issuer identifier only (FAPI 2.0 SP §5.3.2.1 item 8)."""
        return [issuer()]

    def resolve_client_public_key(self, client: Client) -> KeySet:
        """Return the client's registered signature keys."""
        return client.signing_keys()

    def extract_assertion(self, assertion: str) -> tuple[Any, dict[str, Any]]:
        """Read an assertion's header and claims, refusing oversized or too deeply nested ones."""
        if len(assertion) > MAX_ASSERTION_LENGTH:
            raise InvalidClientError(description=f"The client assertion is longer than {MAX_ASSERTION_LENGTH} bytes.")
        try:
            return super().extract_assertion(assertion)  # type: ignore[no-any-return]
        except RecursionError:  # JSON nested deeper than the parser goes: not an assertion
            raise InvalidClientError(description="Invalid JWT payload.") from None

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Allow each assertion once (RFC 7523 §3 item 7)."""
        return remember_jti(f"assertion:{claims['iss']}:{jti}", int(claims["exp"]))

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        """Verify the assertion with ES256 or PS256 only, then its claims."""
        try:
            token = jose_jwt.decode(assertion, resolve_key, algorithms=list(CLIENT_ASSERTION_ALGORITHMS))
        except JoseError as exc:
            raise InvalidClientError(
                description=f"The client assertion does not verify ({exc.error}); "
                f"sign it with ES256 or PS256 and a registered key."
            ) from exc
        claims: dict[str, Any] = dict(token.claims)
        # FAPI 2.0 SP §5.3.2.1 and draft-ietf-oauth-rfc7523bis (audience injection): the issuer
        # identifier as a single string; an array is refused even when it holds the issuer.
        if claims.get("aud") != issuer():
            raise InvalidClientError(
                description="The assertion `aud` must be the issuer identifier as a single string, not an array."
            )
        self.verify_claims(token.claims)
        now = clock().timestamp()
        if int(claims["exp"]) > now + ASSERTION_MAX_LIFETIME:
            raise InvalidClientError(description="The assertion `exp` is more than 5 minutes ahead.")
        return claims


# -- PKCE ------------------------------------------------------------------------------------------


class PkceS256(CodeChallenge):  # type: ignore[misc]
    """PKCE required for every client, S256 only (RFC 9700 §2.1.1, FAPI 2.0 SP §5.3.2.2)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012 (Authlib's attribute)

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        """Require a challenge and the S256 method."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant: AuthorizationCodeGrant, result: Any) -> None:
        """Require the verifier for every client, then compare."""
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'.")
        super().validate_code_verifier(grant, result)


# -- the grant -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """What the citizen approved, carried from the approval page to the code."""

    citizen_id: str
    subject: str  # the pairwise `sub` for the client's sector
    acr: str
    amr: tuple[str, ...]
    auth_time: int
    nonce: str | None
    authorization_details: list[dict[str, Any]] | None
    dpop_jkt: str | None
    transaction_id: str


@dataclass(frozen=True)
class CodeRecord:
    """A claimed authorization code, with what the token and the ID token need."""

    code_hash: str
    client_id: str
    citizen_id: str
    subject: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    acr: str
    amr: list[str]
    auth_time: int
    authorization_details: list[dict[str, Any]] | None
    dpop_jkt: str | None
    transaction_id: str

    # Authlib's code grant reads a code through these two methods (AuthorizationCodeMixin).
    def get_redirect_uri(self) -> str:
        """Return the redirect URI the code was issued for."""
        return self.redirect_uri

    def get_scope(self) -> str:
        """Return the granted scope."""
        return self.scope


_CODE_FIELDS = tuple(CodeRecord.__dataclass_fields__)
# Built once: a statement built for each request costs as much again as running it.
_INSERT_CODE = insert(_CODE)


def redeem_once(table: Table, hash_column: Column[Any], *returning: ColumnElement[Any]) -> Update:
    """Return the statement that redeems a single-use artefact (a code, a request_uri) in one round trip.

    It marks the row of the hash (``:hash``), issued to the client (``:client``), unused and unexpired
    at ``:now`` as used and returns *returning*: of two concurrent redemptions exactly one gets a row.
    """
    return (
        update(table)
        .where(
            hash_column == bindparam("hash"),
            table.c.client_id == bindparam("client"),
            table.c.used_at.is_(None),
            table.c.expires_at > bindparam("now"),
        )
        .values(used_at=bindparam("now"))
        .returning(*returning)
    )


_CLAIM_CODE = redeem_once(_CODE, _CODE.c.code_hash, *(_CODE.c[name] for name in _CODE_FIELDS))
_INSERT_TOKEN = insert(_TOKEN)


class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    """The authorization code grant with FAPI 2.0 code handling."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012 (Authlib's attribute)

    def create_authorization_response(
        self, redirect_uri: str, grant_user: Grant | OAuth2Error | None
    ) -> tuple[int, str, list[Any]]:
        """Issue the code, or send the error given (e.g. `login_required`); redirect with 303 (FAPI 2.0 SP §5.3.2.2)."""
        if isinstance(grant_user, OAuth2Error):
            grant_user.redirect_uri = redirect_uri
            raise grant_user
        status, body, headers = super().create_authorization_response(redirect_uri, grant_user)
        return (303 if status == 302 else status), body, headers

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        """Store the code's hash with everything the token and ID token will need."""
        grant: Grant = request.user
        now = clock().timestamp()
        unit_of_work().run(
            _INSERT_CODE,
            {
                "code_hash": sha256_hex(code),
                "client_id": request.client.client_id,
                "citizen_id": grant.citizen_id,
                "subject": grant.subject,
                "redirect_uri": request.payload.redirect_uri,
                "scope": request.client.get_allowed_scope(request.payload.scope),
                "nonce": grant.nonce,
                "code_challenge": request.payload.data["code_challenge"],
                "code_challenge_method": request.payload.data["code_challenge_method"],
                "acr": grant.acr,
                "amr": list(grant.amr),
                "auth_time": grant.auth_time,
                "authorization_details": grant.authorization_details,
                "dpop_jkt": grant.dpop_jkt,
                "transaction_id": grant.transaction_id,
                "issued_at": now,
                "expires_at": now + CODE_LIFETIME,
            },
        )

    def query_authorization_code(self, code: str, client: Client) -> CodeRecord | None:
        """Claim the code atomically; a second use revokes every token it issued (RFC 6749 §4.1.2)."""
        db = session()
        code_hash = sha256_hex(code)
        now = clock().timestamp()
        claimed = unit_of_work().run(_CLAIM_CODE, {"hash": code_hash, "client": client.client_id, "now": now}).first()
        if claimed is not None:
            return CodeRecord(**claimed._asdict())
        # Not claimed: say why.
        row = db.get(AuthorizationCode, code_hash)
        if row is None or row.client_id != client.client_id:
            return None
        if row.used_at is None:
            raise InvalidGrantError("The authorization code has expired (codes live 60 seconds).")
        db.execute(
            update(AccessToken)
            .where(AccessToken.code_hash == code_hash, AccessToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        db.commit()  # the revocation must stand although this request fails
        raise InvalidGrantError("The authorization code was already used; the tokens it issued are revoked.")

    def delete_authorization_code(self, authorization_code: CodeRecord) -> None:
        """Keep the row: its `used_at` is what detects a second use."""

    def authenticate_user(self, authorization_code: CodeRecord) -> CodeRecord:
        """The code carries the citizen; the token is issued to it."""
        return authorization_code

    def generate_token(
        self,
        user: CodeRecord,
        scope: str | None = None,
        grant_type: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        """Issue a token that ends with its consent's delivery window at the latest; none if it ended."""
        lifetime = ACCESS_TOKEN_LIFETIME
        window = consent_window(user.transaction_id, user.authorization_details)
        if window is not None:
            now = clock().timestamp()
            refusal = window.refusal(now)
            if refusal is not None:
                raise InvalidGrantError(refusal)
            lifetime = min(lifetime, window.ends_at - now)
        return super().generate_token(  # type: ignore[no-any-return]
            user=user,
            scope=scope,
            grant_type=grant_type,
            expires_in=lifetime,
            include_refresh_token=include_refresh_token,
        )


def add_id_token(grant: CodeGrant, response: tuple[int, dict[str, Any], list[Any]]) -> None:
    """Add the ID token and the granted authorization details to the token response (OIDC Core §3.1.3.3)."""
    _, token, _ = response
    code: CodeRecord = grant.request.authorization_code
    client: Client = grant.request.client
    now = clock().timestamp()
    claims: dict[str, Any] = {
        "iss": issuer(),
        "sub": code.subject,
        "aud": client.client_id,
        "iat": now,
        "exp": now + ACCESS_TOKEN_LIFETIME,
        "auth_time": code.auth_time,
        "acr": code.acr,
        "amr": code.amr,
        "txn": code.transaction_id,
        "at_hash": _half_hash(token["access_token"]),
    }
    if code.nonce:
        claims["nonce"] = code.nonce
    token["id_token"] = sign_jwt(claims)
    if code.authorization_details is not None:
        token["authorization_details"] = code.authorization_details


def _half_hash(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def sign_jwt(claims: dict[str, Any], typ: str = "JWT") -> str:
    """Sign claims with the platform's active ES256 key."""
    key = key_store(unit_of_work()).signing_key()
    return str(jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": typ}))


def pairwise_subject(national_id: str, sector: str) -> str:
    """Return the pairwise `sub` of a citizen for one relying party (OIDC Core §8.1)."""
    secret = key_store(unit_of_work()).secret("pairwise")
    mac = hmac.new(secret, f"{sector}\x00{national_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# -- tokens ----------------------------------------------------------------------------------------


def generate_token(
    grant_type: str,
    client: Client,
    user: Any = None,
    scope: str | None = None,
    expires_in: int | None = None,
    include_refresh_token: bool = False,
) -> dict[str, Any]:
    """Return an opaque DPoP access token of 256 random bits (RFC 9449 §5, FAPI 2.0 SP §5.3.2.1)."""
    return {
        "access_token": secrets.token_urlsafe(32),
        "token_type": "DPoP",
        "expires_in": expires_in or ACCESS_TOKEN_LIFETIME,
        "scope": scope or "",
    }


def save_token(token: dict[str, Any], request: OAuth2Request) -> None:
    """Store the access token's hash, bound to the DPoP key of the token request."""
    code: CodeRecord = request.authorization_code
    now = clock().timestamp()
    unit_of_work().run(
        _INSERT_TOKEN,
        {
            "token_hash": sha256_hex(token["access_token"]),
            "client_id": request.client.client_id,
            "citizen_id": code.citizen_id,
            "subject": code.subject,
            "code_hash": code.code_hash,
            "jkt": request.dpop_jkt,
            "scope": token["scope"],
            "acr": code.acr,
            "amr": code.amr,
            "auth_time": code.auth_time,
            "authorization_details": code.authorization_details,
            "transaction_id": code.transaction_id,
            "issued_at": now,
            "expires_at": now + int(token["expires_in"]),
        },
    )


def check_dpop_binding(grant: CodeGrant, result: Any = None) -> None:
    """A code bound at PAR to a DPoP key may only be redeemed with that key (RFC 9449 §10)."""
    code: CodeRecord = grant.request.authorization_code
    if code.dpop_jkt and code.dpop_jkt != grant.request.dpop_jkt:
        raise InvalidGrantError("The DPoP key differs from the one the authorization request was bound to.")


# -- revocation and introspection -------------------------------------------------------------------


class StoredToken:
    """An :class:`AccessToken` row as Authlib's token endpoints see it."""

    def __init__(self, row: AccessToken) -> None:
        self.row = row

    def check_client(self, client: Client) -> bool:
        """Tell whether the token was issued to *client*."""
        return self.row.client_id == client.client_id

    def get_scope(self) -> str:
        """Return the token's scope."""
        return self.row.scope

    def get_expires_in(self) -> int:
        """Return the lifetime the token was issued with."""
        return self.row.expires_at - self.row.issued_at

    def is_expired(self) -> bool:
        """Tell whether the token has expired."""
        return clock().timestamp() >= self.row.expires_at

    def is_revoked(self) -> bool:
        """Tell whether the token was revoked, or its consent was revoked or has expired."""
        if self.row.revoked_at is not None:
            return True
        window = consent_window(self.row.transaction_id, self.row.authorization_details)
        return window is not None and window.refusal(clock().timestamp()) is not None


def find_token(token_string: str) -> StoredToken | None:
    """Look a token up by its hash."""
    row = session().get(AccessToken, sha256_hex(token_string))
    return StoredToken(row) if row else None


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    """Token revocation (RFC 7009) for a client's own tokens."""

    CLIENT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012 (Authlib's attribute)
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        """Find the token."""
        return find_token(token_string)

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        """Revoke it now."""
        token.row.revoked_at = clock().timestamp()


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    """Token introspection (RFC 7662), for a client's own tokens only."""

    CLIENT_AUTH_METHODS = ["private_key_jwt"]  # noqa: RUF012 (Authlib's attribute)
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        """Find the token."""
        return find_token(token_string)

    def check_permission(self, token: StoredToken, client: Client, request: OAuth2Request) -> bool:
        """A client may introspect only what was issued to it."""
        return token.check_client(client)

    def introspect_token(self, token: StoredToken) -> dict[str, Any]:
        """Describe an active token."""
        row = token.row
        return {
            "active": True,
            "client_id": row.client_id,
            "token_type": "DPoP",
            "scope": row.scope,
            "sub": row.subject,
            "iss": issuer(),
            "iat": row.issued_at,
            "exp": row.expires_at,
            "acr": row.acr,
            "auth_time": row.auth_time,
            "cnf": {"jkt": row.jkt},
            "authorization_details": row.authorization_details,
        }


# -- the server ------------------------------------------------------------------------------------


class Server(AuthorizationServer):  # type: ignore[misc]
    """Authlib's Flask server, taking prepared requests (PAR) and answering 303 for redirects."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        """Use a prepared request as it is (a pushed request's stored parameters)."""
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def handle_response(self, status_code: int, payload: Any, headers: list[Any]) -> Any:
        """Answer redirects with 303 (RFC 9700 §4.12); mydata.security says no-store for every /oauth/ answer."""
        if status_code == 302:
            status_code = 303
        return super().handle_response(status_code, payload, headers)


class Issuer(IssuerParameter):  # type: ignore[misc]
    """`iss` in every authorization response, errors included (RFC 9207 §2)."""

    def get_issuer(self) -> str:
        """Return the issuer identifier."""
        return issuer()


class PreparedRequest(OAuth2Request):  # type: ignore[misc]
    """An Authlib request over parameters already read: its form is those parameters, even when empty."""

    def __init__(self, method: str, url: str, params: dict[str, Any]) -> None:
        super().__init__(method, url)
        self.payload = BasicOAuth2Payload(params)
        self._params = params

    @property
    def form(self) -> dict[str, Any]:
        """Return the parameters (Authlib's client authentication reads the assertion here)."""
        return self._params


def prepared_request(params: dict[str, Any], url: str, method: str = "GET") -> OAuth2Request:
    """Build an Authlib request from parameters already read (a pushed authorization request)."""
    return PreparedRequest(method, url, params)


def create_server(app: Flask) -> Server:
    """Wire Authlib for this platform."""
    server = Server()
    app.extensions["identity.oauth_clients"] = ClientDirectory()
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_token)
    server.register_client_auth_method(PrivateKeyJwt.CLIENT_AUTH_METHOD, PrivateKeyJwt())
    server.register_grant(CodeGrant, [PkceS256(required=True), _register_code_hooks])
    server.register_extension(Issuer())
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    return server


def _register_code_hooks(grant: CodeGrant) -> None:
    grant.register_hook("after_validate_token_request", check_dpop_binding)
    grant.register_hook("after_create_token_response", add_id_token)


def validate_scope(scope: str | None) -> None:
    """Require `openid`; nothing else is known (DESIGN §3.3)."""
    requested = (scope or "").split()
    if "openid" not in requested:
        raise InvalidScopeError("The scope must include openid.")
    unknown = [s for s in requested if s not in SCOPES]
    if unknown:
        raise InvalidScopeError(f"Unknown scope: {shown(' '.join(unknown))}.")


def authorization_details_json(raw: str | None) -> list[dict[str, Any]] | None:
    """Parse `authorization_details` (RFC 9396 §2): a JSON array of objects with a `type`.

    Its length is bounded before it is parsed and its number of entries before any is looked at,
    so that one request cannot hold a worker (issue 10, item 15).
    """
    if raw is None:
        return None
    if len(raw) > MAX_AUTHORIZATION_DETAILS_LENGTH:
        raise InvalidAuthorizationDetails(
            f"authorization_details must be at most {MAX_AUTHORIZATION_DETAILS_LENGTH} characters long."
        )
    try:
        details = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
        raise InvalidAuthorizationDetails("authorization_details is not JSON.") from None
    if not isinstance(details, list) or not details or not all(isinstance(d, dict) for d in details):
        raise InvalidAuthorizationDetails("authorization_details must be a non-empty JSON array of objects.")
    if len(details) > MAX_AUTHORIZATION_DETAILS:
        raise InvalidAuthorizationDetails(
            f"authorization_details may hold at most {MAX_AUTHORIZATION_DETAILS} entries."
        )
    for detail in details:
        if not isinstance(detail.get("type"), str):
            raise InvalidAuthorizationDetails("Every authorization_details entry needs a string `type`.")
    return details
