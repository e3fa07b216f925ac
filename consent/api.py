"""The public ledger API (DESIGN §6.3): signed tree heads, entries and proofs, for anyone to check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from consent import consents, history, schemas
from consent.interfaces import ConsentNotRevocable, LedgerQueryInvalid, LoginRequired
from consent.ledger import ledger, newest_tree_head
from identity.sessions import Authentication, current_authentication
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.limits import limiter
from mydata.openapi import ErrorSchema, documented

bp = Blueprint("ledger", __name__, url_prefix="/ledger")
TAGS = ["ledger"]

#: Requests per client address to all of /ledger/* together (Flask-Limiter syntax): an auditor
#: pages through 120,000 entries a minute; one address cannot hold the database for everyone.
LEDGER_RATE = "120 per minute"


def _ledger_rate() -> str:
    return str(current_app.config["LEDGER_RATE_LIMIT"])


# Every route of the public ledger reads only (DESIGN §6.3), and they share one budget per client
# address: 429 with Retry-After beyond it.
ledger_limit = limiter.shared_limit(_ledger_rate, scope="ledger")


def _query(schema: Schema) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(request.args.to_dict())
    except ValidationError as exc:
        raise LedgerQueryInvalid(_reason(exc.messages)) from None
    return loaded


def _reason(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{name}: {_reason(value)}" for name, value in messages.items())
    if isinstance(messages, list):
        return " ".join(str(message) for message in messages)
    return str(messages)


@bp.get("/sth")
@ledger_limit
@documented(
    "The newest signed tree head",
    tags=TAGS,
    responses={200: schemas.SignedTreeHeadSchema, 429: ErrorSchema, 503: ErrorSchema},
    description="Appends sign one every N entries, or after T seconds while entries are waiting (settings "
    "ledger_sth_every_entries and ledger_sth_every_seconds), and `mydata ledger sign` runs on a timer; reading "
    "never signs. Entries after it are not covered yet. 503 no_signed_tree_head (with Retry-After) before the "
    "first. Verify the JWS with the platform JWKS. Every /ledger route: at most LEDGER_RATE_LIMIT requests per "
    "client address together (120 per minute by default), then 429 with Retry-After.",
)
def signed_tree_head() -> ResponseReturnValue:
    """Return the newest signed tree head."""
    return jsonify(schemas.SignedTreeHeadSchema().dump(newest_tree_head(unit_of_work())))


@bp.get("/sths")
@ledger_limit
@documented(
    "Every stored signed tree head, oldest first",
    tags=TAGS,
    query=schemas.TreeHeadsQuery,
    responses={200: schemas.SignedTreeHeadListSchema, 400: ErrorSchema, 429: ErrorSchema},
    description="At most 1,000 per response: page with start (a position in the list, from 0) until "
    "fewer than limit come back.",
)
def signed_tree_heads() -> ResponseReturnValue:
    """Return stored signed tree heads, oldest first."""
    query = _query(schemas.TreeHeadsQuery())
    heads = ledger(unit_of_work()).signed_tree_heads(query["start"], query["limit"])
    return jsonify(schemas.SignedTreeHeadListSchema().dump({"sths": heads}))


@bp.get("/entries")
@ledger_limit
@documented(
    "Ledger entries by sequence number",
    tags=TAGS,
    query=schemas.EntriesQuery,
    responses={200: schemas.EntryListSchema, 400: ErrorSchema, 429: ErrorSchema},
    description="Entries start to end inclusive, at most 1,000; end is cut at the newest entry. Each "
    "leaf_input hashes to the leaf (SHA-256(0x00 || leaf_input), RFC 9162 §2.1.1).",
)
def entries() -> ResponseReturnValue:
    """Return entries start to end."""
    query = _query(schemas.EntriesQuery())
    found = ledger(unit_of_work()).entries(query["start"], query["end"])
    return jsonify(schemas.EntryListSchema().dump({"entries": found}))


@bp.get("/proof/inclusion")
@ledger_limit
@documented(
    "Inclusion proof of an entry",
    tags=TAGS,
    query=schemas.InclusionQuery,
    responses={200: schemas.InclusionProofSchema, 400: ErrorSchema, 429: ErrorSchema},
    description="RFC 9162 §2.1.3: verify it against the root of a signed tree head of that tree_size.",
)
def inclusion_proof() -> ResponseReturnValue:
    """Return the audit path of entry seq in the tree of tree_size entries."""
    query = _query(schemas.InclusionQuery())
    proof = ledger(unit_of_work()).inclusion_proof(query["seq"], query["tree_size"])
    return jsonify(schemas.InclusionProofSchema().dump(proof))


@bp.get("/proof/consistency")
@ledger_limit
@documented(
    "Consistency proof between two tree sizes",
    tags=TAGS,
    query=schemas.ConsistencyQuery,
    responses={200: schemas.ConsistencyProofSchema, 400: ErrorSchema, 429: ErrorSchema},
    description="RFC 9162 §2.1.4: proves that the tree of first entries is a prefix of the tree of second.",
)
def consistency_proof() -> ResponseReturnValue:
    """Return the consistency proof from first to second."""
    query = _query(schemas.ConsistencyQuery())
    proof = ledger(unit_of_work()).consistency_proof(query["first"], query["second"])
    return jsonify(schemas.ConsistencyProofSchema().dump(proof))


# -- the logged-in citizen's history and consents (DESIGN §6.4) -------------------------------------

me = Blueprint("me_api", __name__, url_prefix="/api/v1/me")
ME_TAGS = ["citizen"]
#: The OpenAPI security scheme of the citizen's own API: the login session cookie.
CITIZEN_SECURITY_SCHEME = "citizenSession"
CITIZEN: list[dict[str, list[str]]] = [{CITIZEN_SECURITY_SCHEME: []}]


def _citizen() -> Authentication:
    authentication = current_authentication()
    if authentication is None:
        raise LoginRequired()
    return authentication


@me.get("/history")
@documented(
    "My usage history",
    tags=ME_TAGS,
    query=schemas.HistoryQuery,
    responses={200: schemas.HistorySchema, 400: ErrorSchema, 401: ErrorSchema},
    description="Every event about the logged-in citizen's data, newest first, from the public ledger. Each "
    "version 2 entry comes with the opening of its subject commitment: with your national ID (upper case "
    "ASCII, e.g. A123456789) recompute b64url(SHA-256(scheme || 0x00 || national_id || 0x00 || salt)) "
    "and compare it with the subject of entry seq at /ledger/entries (DESIGN §6.3).",
    security=CITIZEN,
)
def my_history() -> ResponseReturnValue:
    """Return the logged-in citizen's usage history."""
    citizen = _citizen()
    wanted = history.HistoryFilter(**_query(schemas.HistoryQuery()))
    events = history.usage_history(unit_of_work(), citizen.national_id, wanted)
    return jsonify(schemas.HistorySchema().dump({"events": events}))


@me.get("/consents")
@documented(
    "My consents",
    tags=ME_TAGS,
    responses={200: schemas.ConsentListSchema, 401: ErrorSchema},
    security=CITIZEN,
)
def my_consents() -> ResponseReturnValue:
    """Return the logged-in citizen's consents, each with its signed receipt."""
    citizen = _citizen()
    items = history.citizen_consents(unit_of_work(), citizen.citizen_id)
    return jsonify(schemas.ConsentListSchema().dump({"consents": items}))


@me.post("/consents/<consent_id>/revoke")
@documented(
    "Revoke one of my consents",
    tags=ME_TAGS,
    responses={200: schemas.ConsentSchema, 400: ErrorSchema, 401: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema},
    examples={409: ConsentNotRevocable},
    description="Only a granted consent not yet delivered can be revoked. Send the CSRF token in X-CSRFToken "
    "(400 without it).",
    security=CITIZEN,
)
def revoke_consent(consent_id: str) -> ResponseReturnValue:
    """Withdraw a granted, undelivered consent."""
    citizen = _citizen()
    uow = unit_of_work()
    consent = consents.revoke(
        uow, consent_id, citizen_id=citizen.citizen_id, national_id=citizen.national_id, now=clock().now()
    )
    uow.commit()
    return jsonify(schemas.ConsentSchema().dump(consent))
