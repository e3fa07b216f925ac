"""Marshmallow schemas of the relying parties' JSON API and of dynamic client registration.

Schemas check the shape of a body; the rules (id formats, the registration number's check, datasets
in the catalogue, key and redirect URI rules) live in :mod:`relying_parties.services` and
:mod:`relying_parties.registration`, so that the CLI and the sandbox seeding obey them too.
"""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from mydata.openapi import ErrorSchema
from providers.models import LEVELS
from relying_parties.models import ORGANISATION_TYPES, STATUSES

_ID = validate.Length(min=1, max=100)
_NAME = validate.Length(min=1, max=200)
_PURPOSE = validate.Length(min=1, max=2000)
_DATASET_IDS = fields.List(fields.String(validate=_ID))
#: Example public keys of a relying party for /openapi.json: one to sign client assertions, one to
#: encrypt the data packages it receives.
_JWKS_EXAMPLE = {
    "keys": [
        {
            "kty": "EC",
            "crv": "P-256",
            "kid": "acme-sig-2026",
            "use": "sig",
            "alg": "ES256",
            "x": "VjAwWXkGj2hbLs2DcR9IMb887Qlb9285sE2NqPAUqDI",
            "y": "TtwxCURivlWPWLa74zEdOUNpvF-VKOt3VTd69rNfGbs",
        },
        {
            "kty": "EC",
            "crv": "P-256",
            "kid": "acme-enc-2026",
            "use": "enc",
            "alg": "ECDH-ES+A256KW",
            "x": "5V4JboTCGZUmIeV4hIpDel5JpfazyDhQvliR9kQZUi4",
            "y": "bruNpsqT6QKFrKhkz578Tm-Z825DcnRe6w1Ov_sXrFk",
        },
    ]
}

# -- organisations --------------------------------------------------------------------------------


class ContactSchema(Schema):
    """Someone at the organisation the platform operator can reach."""

    name = fields.String(required=True, validate=_NAME, metadata={"example": "艾克米銀行數位金融處"})
    email = fields.Email(required=True, metadata={"example": "mydata@acme-bank.example"})
    phone = fields.String(
        required=True, validate=validate.Length(min=6, max=30), metadata={"example": "+886 2 1234 5678"}
    )


class OrganisationApplicationSchema(Schema):
    """An organisation's application to become a relying party (pending until an operator approves it)."""

    id = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"example": "acme-bank", "description": "lowercase id, e.g. acme-bank"},
    )
    name_zh = fields.String(
        required=True, validate=_NAME, metadata={"example": "艾克米銀行", "description": "name in Traditional Chinese"}
    )
    name_en = fields.String(
        required=True, validate=_NAME, metadata={"example": "ACME Bank", "description": "name in English"}
    )
    type = fields.String(required=True, validate=validate.OneOf(ORGANISATION_TYPES))
    registration_number = fields.String(
        required=True,
        validate=validate.Length(equal=8),
        metadata={
            "example": "12345675",
            "description": "unified business number (統一編號): 8 digits with a valid check",
        },
    )
    contacts = fields.List(fields.Nested(ContactSchema), required=True, validate=validate.Length(min=1, max=5))


class OrganisationSchema(Schema):
    """A relying-party organisation and its state."""

    id = fields.String(required=True, metadata={"example": "acme-bank"})
    name_zh = fields.String(required=True, metadata={"example": "艾克米銀行"})
    name_en = fields.String(required=True, metadata={"example": "ACME Bank"})
    type = fields.String(required=True, metadata={"enum": list(ORGANISATION_TYPES)})
    registration_number = fields.String(required=True, metadata={"example": "12345675"})
    contacts = fields.List(fields.Nested(ContactSchema), required=True)
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    created_at = fields.AwareDateTime(required=True)
    approved_at = fields.AwareDateTime(allow_none=True)
    suspended_at = fields.AwareDateTime(allow_none=True)


class OrganisationListSchema(Schema):
    """Every organisation (or those of one status)."""

    organisations = fields.List(fields.Nested(OrganisationSchema), required=True)


class StatusQuerySchema(Schema):
    """Keep only the items of one status."""

    status = fields.String(validate=validate.OneOf(STATUSES))


class InitialAccessTokenSchema(Schema):
    """A fresh initial access token (RFC 7591 §3), shown this once; the previous one no longer works."""

    organisation = fields.String(required=True, metadata={"example": "acme-bank"})
    initial_access_token = fields.String(
        required=True,
        metadata={
            "example": "Xq3v9T2mK8pL0sR5wY7zA1bC4dE6fGhJ2kL9mN0pQ1r",
            "description": "send as `Authorization: Bearer <token>` to /oauth/register",
        },
    )
    issued_at = fields.AwareDateTime(required=True)


# -- services -------------------------------------------------------------------------------------


class ServiceDefinitionSchema(Schema):
    """A service the organisation will ask citizens for (pending until an operator approves it)."""

    id = fields.String(
        required=True,
        validate=_ID,
        metadata={"example": "acme-bank.loans", "description": "<organisation>.<name>, e.g. acme-bank.loans"},
    )
    name_zh = fields.String(required=True, validate=_NAME, metadata={"example": "個人信貸線上申辦"})
    name_en = fields.String(required=True, validate=_NAME, metadata={"example": "Personal loan application"})
    purpose_zh = fields.String(
        required=True,
        validate=_PURPOSE,
        metadata={
            "example": "審核個人信貸線上申請：確認申請人身分、戶籍、所得及工作資料，以核定貸款額度。",
            "description": "shown on the consent screen",
        },
    )
    purpose_en = fields.String(
        required=True,
        validate=_PURPOSE,
        metadata={
            "example": (
                "To assess an online personal loan application: the applicant's identity, household, "
                "income and employment, to set the loan amount."
            )
        },
    )
    purpose_code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9]{3}$"),
        metadata={
            "example": "088",
            "description": "specific purpose code of the Personal Data Protection Act, e.g. 067",
        },
    )
    required_datasets = fields.List(
        fields.String(validate=_ID),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={"example": ["household.registration", "tax.income", "labor.insurance"]},
    )
    optional_datasets = fields.List(
        fields.String(validate=_ID), load_default=list, validate=validate.Length(max=20), metadata={"example": []}
    )
    retention_days = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={"example": 1825, "description": "how long you keep the data"},
    )
    level = fields.String(
        validate=validate.OneOf(LEVELS), metadata={"description": "ask for a higher level than the datasets need"}
    )


class ServiceSchema(Schema):
    """A service, its datasets and its state."""

    id = fields.String(required=True, metadata={"example": "acme-bank.loans"})
    organisation = fields.String(required=True, attribute="organisation_id", metadata={"example": "acme-bank"})
    name_zh = fields.String(required=True, metadata={"example": "個人信貸線上申辦"})
    name_en = fields.String(required=True, metadata={"example": "Personal loan application"})
    purpose_zh = fields.String(
        required=True,
        metadata={"example": "審核個人信貸線上申請：確認申請人身分、戶籍、所得及工作資料，以核定貸款額度。"},
    )
    purpose_en = fields.String(
        required=True,
        metadata={
            "example": (
                "To assess an online personal loan application: the applicant's identity, household, "
                "income and employment, to set the loan amount."
            )
        },
    )
    purpose_code = fields.String(required=True, metadata={"example": "088"})
    required_datasets = fields.List(
        fields.String(),
        required=True,
        metadata={"example": ["household.registration", "tax.income", "labor.insurance"]},
    )
    optional_datasets = fields.List(fields.String(), required=True, metadata={"example": []})
    retention_days = fields.Integer(required=True, metadata={"example": 1825})
    level = fields.String(required=True, metadata={"enum": list(LEVELS)})
    status = fields.String(required=True, metadata={"enum": list(STATUSES)})
    created_at = fields.AwareDateTime(required=True)
    approved_at = fields.AwareDateTime(allow_none=True)


class ServiceListSchema(Schema):
    """Services."""

    services = fields.List(fields.Nested(ServiceSchema), required=True)


class ClientSummarySchema(Schema):
    """A registered client of the organisation."""

    client_id = fields.String(required=True, metadata={"example": "acme-bank-web"})
    client_name = fields.String(required=True, attribute="name", metadata={"example": "ACME Bank"})
    redirect_uris = fields.List(
        fields.String(), required=True, metadata={"example": ["https://bank.example/mydata/callback"]}
    )
    status = fields.String(required=True, metadata={"example": "active"})
    client_id_issued_at = fields.Integer(required=True, attribute="created_at", metadata={"example": 1772328600})


class OrganisationOverviewSchema(Schema):
    """The organisation an initial access token belongs to, its services and its clients."""

    organisation = fields.Nested(OrganisationSchema, required=True)
    services = fields.List(fields.Nested(ServiceSchema), required=True)
    clients = fields.List(fields.Nested(ClientSummarySchema), required=True)


# -- dynamic client registration (RFC 7591) -------------------------------------------------------


class ClientJwksSchema(Schema):
    """A client's JSON Web Key Set: public keys only (RFC 7517 §5)."""

    class Meta:
        unknown = EXCLUDE

    keys = fields.List(fields.Dict(), required=True)


class ClientMetadataSchema(Schema):
    """Client metadata to register (RFC 7591 §2); metadata not listed here is ignored."""

    class Meta:
        unknown = EXCLUDE

    client_name = fields.String(required=True, metadata={"example": "ACME Bank", "description": "shown to citizens"})
    redirect_uris = fields.List(
        fields.String(),
        required=True,
        metadata={
            "example": ["https://bank.example/mydata/callback"],
            "description": "https (sandbox: loopback http too)",
        },
    )
    jwks = fields.Dict(
        metadata={
            "example": _JWKS_EXAMPLE,
            "description": "required (jwks_uri is not supported): public keys only, one `sig` key "
            "(ES256 EC P-256, or PS256 RSA >= 2048) and one `enc` key "
            "(EC P-256 with alg ECDH-ES+A256KW, or RSA >= 2048 with alg RSA-OAEP-256)",
        },
    )
    jwks_uri = fields.String(metadata={"description": "not supported: register the keys themselves in `jwks`"})
    token_endpoint_auth_method = fields.String(metadata={"enum": ["private_key_jwt"]})
    token_endpoint_auth_signing_alg = fields.String(metadata={"enum": ["ES256", "PS256"]})
    grant_types = fields.List(fields.String(), metadata={"example": ["authorization_code"]})
    response_types = fields.List(fields.String(), metadata={"example": ["code"]})
    scope = fields.String(metadata={"example": "openid"})
    dpop_bound_access_tokens = fields.Boolean()
    authorization_details_types = fields.List(fields.String(), metadata={"example": ["mydata_delivery"]})
    id_token_signed_response_alg = fields.String(metadata={"enum": ["ES256"]})
    subject_type = fields.String(metadata={"enum": ["pairwise"]})


class ClientInformationSchema(Schema):
    """The registered client (RFC 7591 §3.2.1): its client_id and its metadata as registered."""

    client_id = fields.String(required=True, metadata={"example": "acme-bank-web"})
    client_id_issued_at = fields.Integer(required=True, metadata={"example": 1772328600})
    client_name = fields.String(required=True, metadata={"example": "ACME Bank"})
    redirect_uris = fields.List(
        fields.String(), required=True, metadata={"example": ["https://bank.example/mydata/callback"]}
    )
    jwks = fields.Nested(ClientJwksSchema, required=True, metadata={"example": _JWKS_EXAMPLE})
    token_endpoint_auth_method = fields.String(required=True, metadata={"example": "private_key_jwt"})
    token_endpoint_auth_signing_alg = fields.String(required=True, metadata={"example": "ES256"})
    grant_types = fields.List(fields.String(), required=True, metadata={"example": ["authorization_code"]})
    response_types = fields.List(fields.String(), required=True, metadata={"example": ["code"]})
    scope = fields.String(required=True, metadata={"example": "openid"})
    dpop_bound_access_tokens = fields.Boolean(required=True)
    authorization_details_types = fields.List(fields.String(), required=True, metadata={"example": ["mydata_delivery"]})
    id_token_signed_response_alg = fields.String(required=True, metadata={"example": "ES256"})
    subject_type = fields.String(required=True, metadata={"example": "pairwise"})
    organisation = fields.String(
        required=True, metadata={"example": "acme-bank", "description": "the relying-party organisation"}
    )
    registration_client_uri = fields.String(
        required=True,
        metadata={
            "example": "https://mydata.example/oauth/register/acme-bank-web",
            "description": "the client configuration endpoint (RFC 7592)",
        },
    )
    registration_access_token = fields.String(
        metadata={
            "example": "mdrat_3Jt0q8yKZbq2m1WcXvUe7n5sHfLpAaRr",
            "description": "the bearer token of registration_client_uri, shown once: in the registration's answer "
            "only (RFC 7592 §3)",
        }
    )


class ClientUpdateSchema(ClientMetadataSchema):
    """A client's metadata replacing what is registered (RFC 7592 §2.2): all of it, with its client_id."""

    client_id = fields.String(
        required=True, metadata={"example": "acme-bank-web", "description": "this client's client_id"}
    )
    registration_access_token = fields.String(metadata={"description": "must not be sent"})
    registration_client_uri = fields.String(metadata={"description": "must not be sent"})


class RegistrationErrorSchema(Schema):
    """A refused registration (RFC 7591 §3.2.2)."""

    error = fields.String(required=True, metadata={"enum": ["invalid_client_metadata", "invalid_redirect_uri"]})
    error_description = fields.String(
        required=True, metadata={"example": "redirect_uris: every redirect URI must use https."}
    )


class StaffErrorSchema(ErrorSchema):
    """A 401 of the operator API: no credential, or a staff login that must step up (RFC 9470)."""

    step_up = fields.String(
        metadata={
            "description": "With error insufficient_user_authentication: the login page (eID, level high) "
            "to send the browser to; it comes back afterwards"
        }
    )
