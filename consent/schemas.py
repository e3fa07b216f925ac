"""Marshmallow schemas of the consent package's JSON API: the public ledger (DESIGN §6.3)."""

from __future__ import annotations

import base64
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from consent.ledger import COMMITMENT_SCHEME, MAX_ENTRIES_PER_REQUEST, SALT_BYTES

# Leaf indexes and tree sizes are stored as 64-bit signed integers.
_MAX_INDEX = 2**63 - 1


class Base64Bytes(fields.Field[bytes]):
    """Bytes as standard base64 (RFC 4648 §4), as every hash of the ledger API is written."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "byte", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: bytes | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else base64.b64encode(value).decode("ascii")


class Base64UrlBytes(fields.Field[bytes]):
    """Bytes as unpadded base64url (RFC 4648 §5), as the subject commitments and their openings are written."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"type": "string", "format": "base64url", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: bytes | None, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def _index(description: str, *, minimum: int = 0, **kwargs: Any) -> fields.Integer:
    return fields.Integer(
        strict=False,
        validate=validate.Range(min=minimum, max=_MAX_INDEX),
        metadata={"description": description},
        **kwargs,
    )


# --- Query parameters ----------------------------------------------------------------------------


class _Query(Schema):
    class Meta:
        unknown = EXCLUDE


class EntriesQuery(_Query):
    """Which entries to return."""

    start = _index("first sequence number (leaf index from 0)", required=True)
    end = _index(f"last sequence number, inclusive; at most {MAX_ENTRIES_PER_REQUEST} entries", required=True)

    @validates_schema
    def _range(self, data: dict[str, int], **_: Any) -> None:
        if data["end"] < data["start"]:
            raise ValidationError("end must not be smaller than start", "end")
        if data["end"] - data["start"] + 1 > MAX_ENTRIES_PER_REQUEST:
            raise ValidationError(f"at most {MAX_ENTRIES_PER_REQUEST} entries per request", "end")


class InclusionQuery(_Query):
    """Which entry to prove, in which tree."""

    seq = _index("sequence number of the entry", required=True)
    tree_size = _index("size of the tree to prove inclusion in (e.g. a signed tree head's)", minimum=1, required=True)


class ConsistencyQuery(_Query):
    """Which two trees to prove consistent."""

    first = _index("size of the older tree", required=True)
    second = _index("size of the newer tree", required=True)

    @validates_schema
    def _order(self, data: dict[str, int], **_: Any) -> None:
        if data["second"] < data["first"]:
            raise ValidationError("second must not be smaller than first", "second")


class TreeHeadsQuery(_Query):
    """Which page of signed tree heads to return."""

    start = _index("position of the first tree head to return, oldest first", load_default=0)
    limit = fields.Integer(
        load_default=MAX_ENTRIES_PER_REQUEST,
        validate=validate.Range(min=1, max=MAX_ENTRIES_PER_REQUEST),
        metadata={"description": f"how many tree heads to return, at most {MAX_ENTRIES_PER_REQUEST}"},
    )


# --- Responses -----------------------------------------------------------------------------------


class SignedTreeHeadSchema(Schema):
    """A signed tree head: the tree's size and root, signed by the platform (ES256 compact JWS)."""

    tree_size = fields.Integer(required=True, metadata={"description": "number of entries in the tree"})
    root_hash = Base64Bytes(required=True, metadata={"description": "RFC 9162 §2.1.1 root (MTH), base64"})
    timestamp = fields.String(
        required=True, metadata={"example": "2026-03-01T01:30:00Z", "description": "when it was signed, RFC 3339"}
    )
    jws = fields.String(
        required=True,
        metadata={
            "example": (
                "eyJhbGciOiJFUzI1NiIsImtpZCI6InBsYXRmb3JtLTIwMjYtMDMiLCJ0eXAiOiJteWRhdGEtc3RoK2pzb24ifQ.eyJ"
                "0cmVlX3NpemUiOjEwMjQsInJvb3RfaGFzaCI6InEwSWtiOEF5cTVadEY3Q2w4a2sxeEVZWTBvTmJTZ3lYbVlrQVF2T"
                "jA3cjg9IiwidGltZXN0YW1wIjoiMjAyNi0wMy0wMVQwMTozMDowMFoifQ.s6-HWYneFc2bgiZ__KHVOfYo_uW6k7iM"
                "9CJzooYXFgxxKP-nkqwPSnleNVjeVs4V9ao_K-lwF347PJFCCUDk1Q"
            ),
            "description": "compact JWS (ES256, platform kid from /oauth/jwks, typ mydata-sth+json) "
            "whose payload is {tree_size, root_hash, timestamp}",
        },
    )


class SignedTreeHeadListSchema(Schema):
    """Stored signed tree heads, oldest first."""

    sths = fields.List(fields.Nested(SignedTreeHeadSchema), required=True)


class EntrySchema(Schema):
    """One ledger entry: the exact bytes that were hashed, and their fields."""

    seq = fields.Integer(required=True, metadata={"description": "sequence number (leaf index from 0)"})
    leaf_input = Base64Bytes(
        required=True, metadata={"description": "base64 of the exact RFC 8785 canonical JSON bytes that were hashed"}
    )
    entry = fields.Dict(
        required=True,
        metadata={
            "description": "the entry: version, seq, time, event, subject, actor, service, datasets, outcome, "
            "consent_id (the case: consent, download or counter-use id), document_hashes (SHA-256, hex). "
            "subject is null for an event about no citizen; in version 2 entries it is the case's subject "
            "commitment, b64url(SHA-256('mydata-subject-v1' || 0x00 || national_id || 0x00 || salt)) with a "
            "secret 256-bit salt per case, so one citizen's cases do not link; in version 1 entries it is a "
            "keyed hash of the national ID (hex), the same in every case"
        },
    )


class EntryListSchema(Schema):
    """Consecutive ledger entries."""

    entries = fields.List(fields.Nested(EntrySchema), required=True)


class InclusionProofSchema(Schema):
    """An inclusion proof (RFC 9162 §2.1.3): the audit path from the entry's leaf to the root."""

    seq = fields.Integer(required=True)
    tree_size = fields.Integer(required=True)
    leaf_hash = Base64Bytes(required=True, metadata={"description": "SHA-256(0x00 || leaf_input), base64"})
    audit_path = fields.List(Base64Bytes(), required=True, metadata={"description": "sibling hashes, leaf first"})


class ConsistencyProofSchema(Schema):
    """A consistency proof (RFC 9162 §2.1.4): the older tree is a prefix of the newer one."""

    first = fields.Integer(required=True)
    second = fields.Integer(required=True)
    consistency_path = fields.List(Base64Bytes(), required=True)


# -- the citizen's own history and consents (DESIGN §6.4) ------------------------------------------


class HistoryQuery(Schema):
    """Filters of the usage history; all optional."""

    since = fields.AwareDateTime(metadata={"description": "RFC 3339; events at or after"})
    until = fields.AwareDateTime(metadata={"description": "RFC 3339; events at or before"})
    recipient = fields.String(metadata={"example": "acme-bank", "description": "relying-party organisation id"})
    dataset = fields.String(metadata={"example": "tax.income", "description": "dataset id, e.g. tax.income"})
    event = fields.String(
        metadata={"example": "delivery.completed", "description": "event type, e.g. delivery.completed"}
    )


class SubjectOpeningSchema(Schema):
    """The opening of a version 2 entry's subject commitment: only the citizen gets it."""

    scheme = fields.String(
        required=True,
        metadata={
            "example": "mydata-subject-v1",
            "description": f"the commitment's domain-separation prefix, {COMMITMENT_SCHEME!r} (ASCII)",
        },
    )
    salt = Base64UrlBytes(
        required=True,
        metadata={
            "description": f"the case's secret salt, {SALT_BYTES} bytes (unpadded base64url). The entry's subject "
            "is b64url(SHA-256(scheme || 0x00 || national_id || 0x00 || salt)), unpadded, with the national ID "
            "in upper case ASCII (e.g. A123456789)"
        },
    )


class HistoryEventSchema(Schema):
    """One event about the citizen's data, with the ledger sequence number that proves it."""

    seq = fields.Integer(required=True, metadata={"description": "verify at /ledger/proof/inclusion?seq="})
    version = fields.Integer(required=True, metadata={"description": "the ledger entry's version (1 or 2)"})
    subject = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "example": "Jm4cVqS2Yx8bH1pL0dT7wE3rN6uK9aZ5oF2gC8iM4vQ",
            "description": "the entry's subject, as published",
        },
    )
    opening = fields.Nested(
        SubjectOpeningSchema,
        required=True,
        allow_none=True,
        metadata={"description": "opens the subject commitment of a version 2 entry; null for version 1 entries"},
    )
    time = fields.AwareDateTime(required=True)
    event = fields.String(required=True, metadata={"example": "delivery.completed"})
    actor = fields.String(required=True, metadata={"example": "acme-bank"})
    service = fields.String(allow_none=True, metadata={"example": "acme-bank.loans"})
    datasets = fields.List(
        fields.String(), required=True, metadata={"example": ["household.registration", "tax.income"]}
    )
    outcome = fields.String(required=True, metadata={"example": "ok"})
    consent_id = fields.String(allow_none=True, metadata={"example": "6f1c2a9e-3b7d-4c5e-9a8f-2d4b6e8a0c1f"})
    recipient = fields.String(allow_none=True, metadata={"example": "acme-bank"})
    purpose = fields.String(
        allow_none=True,
        metadata={"example": "審核個人信貸線上申請：確認申請人身分、戶籍、所得及工作資料，以核定貸款額度。"},
    )


class HistorySchema(Schema):
    """The citizen's usage history, newest first."""

    events = fields.List(fields.Nested(HistoryEventSchema), required=True)


class ConsentSchema(Schema):
    """One of the citizen's consents and where it stands."""

    id = fields.String(required=True, metadata={"example": "6f1c2a9e-3b7d-4c5e-9a8f-2d4b6e8a0c1f"})
    status = fields.String(required=True, metadata={"enum": ["granted", "denied", "delivered", "expired", "revoked"]})
    organisation_id = fields.String(required=True, metadata={"example": "acme-bank"})
    organisation_name = fields.String(required=True, metadata={"example": "艾克米銀行"})
    service_id = fields.String(required=True, metadata={"example": "acme-bank.loans"})
    purpose = fields.String(
        required=True,
        metadata={"example": "審核個人信貸線上申請：確認申請人身分、戶籍、所得及工作資料，以核定貸款額度。"},
    )
    datasets_granted = fields.List(
        fields.String(), allow_none=True, metadata={"example": ["household.registration", "tax.income"]}
    )
    decided_at = fields.AwareDateTime(allow_none=True)
    window_ends_at = fields.AwareDateTime(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)
    receipt = fields.String(
        allow_none=True,
        metadata={
            "example": (
                "eyJhbGciOiJFUzI1NiIsImtpZCI6InBsYXRmb3JtLTIwMjYtMDMiLCJ0eXAiOiJjb25zZW50LXJlY2VpcHQrand0In"
                "0.eyJpc3MiOiJodHRwczovL215ZGF0YS5leGFtcGxlLmdvdi50dyIsImp0aSI6IjViMWYzYzllMGE3ZDRlMmY4YzZi"
                "MWE5ZDNlNWY3YTJjIiwiaWF0IjoxNzcyMzI4NjAwLCJ0eG4iOiI2ZjFjMmE5ZS0zYjdkLTRjNWUtOWE4Zi0yZDRiNm"
                "U4YTBjMWYiLCJzZXJ2aWNlIjoiYWNtZS1iYW5rLmxvYW5zIiwiZGF0YXNldHMiOlsiaG91c2Vob2xkLnJlZ2lzdHJh"
                "dGlvbiIsInRheC5pbmNvbWUiXX0.DtttbO5Ee5L1VsWg_sXt6xIR3qUkyqA7bOCQccNbmBMM8nhJ2x_xEp0zdoqBOz"
                "kKdvse5_DmKLLH9esGUGnnGg"
            ),
            "description": "the signed consent receipt (JWS)",
        },
    )


class ConsentListSchema(Schema):
    """The citizen's consents, newest first."""

    consents = fields.List(fields.Nested(ConsentSchema), required=True)


# -- the proof bundle of one history entry (docs/transparency.md) ---------------------------------


class BundleEntrySchema(Schema):
    """The entry of a proof bundle: its exact bytes and their fields."""

    seq = fields.Integer(required=True, metadata={"description": "sequence number = leaf index, from 0"})
    leaf_input = Base64Bytes(
        required=True, metadata={"description": "base64 of the exact RFC 8785 canonical JSON bytes that were hashed"}
    )
    parsed = fields.Dict(required=True, allow_none=True, metadata={"description": "leaf_input's JSON, for reading"})


class BundleOpeningSchema(Schema):
    """What opens a version 2 entry's subject commitment: the citizen's own national ID and the case's salt."""

    scheme = fields.String(
        required=True, metadata={"example": "mydata-subject-v1", "description": f"{COMMITMENT_SCHEME!r} (ASCII)"}
    )
    national_id = fields.String(
        required=True,
        metadata={
            "example": "A123456789",
            "description": "the citizen's national ID, upper case ASCII (e.g. A123456789)",
        },
    )
    salt = Base64UrlBytes(required=True, metadata={"description": f"the case's {SALT_BYTES}-byte salt"})


class BundleProofSchema(Schema):
    """The entry's RFC 9162 §2.1.3 inclusion proof in the tree of the bundle's signed tree head."""

    leaf_index = fields.Integer(required=True, attribute="seq")
    tree_size = fields.Integer(required=True)
    leaf_hash = Base64Bytes(required=True, metadata={"description": "SHA-256(0x00 || leaf_input), base64"})
    audit_path = fields.List(Base64Bytes(), required=True, metadata={"description": "sibling hashes, leaf first"})


class ProofBundleSchema(Schema):
    """A proof bundle: one history entry, the opening of its subject, its inclusion proof, the tree head, the keys."""

    format = fields.String(
        required=True, metadata={"example": "mydata-proof-bundle/1", "description": "mydata-proof-bundle/1"}
    )
    entry = fields.Nested(BundleEntrySchema, required=True)
    opening = fields.Nested(
        BundleOpeningSchema, required=True, allow_none=True, metadata={"description": "null for a version 1 entry"}
    )
    inclusion_proof = fields.Nested(BundleProofSchema, required=True)
    signed_tree_head = fields.Nested(SignedTreeHeadSchema, required=True)
    jwks = fields.Dict(required=True, metadata={"description": "the platform's JWK Set (as /oauth/jwks)"})
