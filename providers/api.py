"""The catalogue's JSON API: the public catalogue, and registration and approval for operators.

The operator routes take a bearer token (`mydata providers issue-operator-token`, ADR 0002) and
answer 401 with ``WWW-Authenticate: Bearer`` without one. They are not cookie-authenticated, so
CSRF protection does not apply to them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask.typing import ResponseReturnValue
from marshmallow import Schema, ValidationError

from mydata.db import unit_of_work
from mydata.errors import handle_domain_error
from mydata.openapi import ErrorSchema, documented
from providers import services
from providers.api_schemas import (
    AgencyListSchema,
    AgencyRegistrationSchema,
    AgencySchema,
    CatalogueSchema,
    DatasetDetailSchema,
    DatasetJsonSchemaSchema,
    DatasetListSchema,
    DatasetRegistrationSchema,
    DatasetSchema,
    DatasetUpdateSchema,
    ProviderListSchema,
    ProviderRegistrationSchema,
    ProviderSchema,
    ProviderUpdateSchema,
)
from providers.interfaces import AlreadyRegistered, InvalidInput, InvalidOperatorToken, MissingOperatorToken

public_bp = Blueprint("providers_catalogue", __name__, url_prefix="/api/v1")
operator_bp = Blueprint("providers_operator", __name__, url_prefix="/api/v1")

#: The OpenAPI security scheme of the operator routes.
OPERATOR_SECURITY_SCHEME = "operatorToken"
OPERATOR: list[dict[str, list[str]]] = [{OPERATOR_SECURITY_SCHEME: []}]
_REALM = "mydata-operator"
_CATALOGUE = ["catalogue"]
_OPERATOR_TAGS = ["catalogue administration"]
_ERRORS: dict[int, type[Schema] | str] = {400: ErrorSchema, 401: ErrorSchema}


def _load(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body with *schema*; raise :class:`InvalidInput` naming the fields to fix."""
    document = request.get_json(silent=True)
    if not isinstance(document, dict):
        raise InvalidInput("Send a JSON object with Content-Type: application/json.")
    try:
        return schema.load(document)  # type: ignore[no-any-return]
    except ValidationError as error:
        raise InvalidInput(fields=error.messages) from None


def _actor() -> str:
    return f"operator-token:{g.providers_operator_token}"


def _allow_http() -> bool:
    # Plain http is for the sandbox only (its agencies run on 127.0.0.1); production needs https.
    return bool(current_app.config["MYDATA_SANDBOX"])


# -- authentication -------------------------------------------------------------------------------


@operator_bp.before_request
def _require_operator() -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    token = services.authenticate_operator(unit_of_work(), secret.strip() if scheme.lower() == "bearer" else None)
    g.providers_operator_token = token.id


def _unauthorized(error: MissingOperatorToken | InvalidOperatorToken) -> Response:
    response = handle_domain_error(error)
    # RFC 6750 §3: a challenge always; an error code only when a token was presented.
    challenge = f'Bearer realm="{_REALM}"'
    if isinstance(error, InvalidOperatorToken):
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge
    return response


operator_bp.register_error_handler(MissingOperatorToken, _unauthorized)
operator_bp.register_error_handler(InvalidOperatorToken, _unauthorized)


# -- the public catalogue -------------------------------------------------------------------------


@public_bp.get("/catalogue")
@documented(
    "The dataset catalogue",
    tags=_CATALOGUE,
    responses={200: CatalogueSchema},
    description="Every active dataset, and every active provider with the JWKS that verifies its signed answers.",
)
def get_catalogue() -> ResponseReturnValue:
    """List the active datasets and providers."""
    response = jsonify(CatalogueSchema().dump(services.catalogue(unit_of_work())))
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@public_bp.get("/catalogue/datasets/<dataset_id>/schema")
@documented(
    "The JSON Schema of a dataset",
    tags=_CATALOGUE,
    responses={200: DatasetJsonSchemaSchema, 404: ErrorSchema},
)
def get_published_schema(dataset_id: str) -> ResponseReturnValue:
    """Show the JSON Schema that an active dataset's data meets."""
    dataset = services.published_dataset(unit_of_work(), dataset_id)
    document = {"dataset": dataset.id, "schema_version": dataset.schema_version, "json_schema": dataset.json_schema}
    return jsonify(DatasetJsonSchemaSchema().dump(document))


# -- agencies -------------------------------------------------------------------------------------


@operator_bp.post("/agencies")
@documented(
    "Register an agency",
    tags=_OPERATOR_TAGS,
    body=AgencyRegistrationSchema,
    responses={201: AgencySchema, **_ERRORS, 409: ErrorSchema},
    examples={409: AlreadyRegistered},
    security=OPERATOR,
)
def post_agency() -> ResponseReturnValue:
    """Register an agency."""
    body = _load(AgencyRegistrationSchema())
    agency = services.register_agency(
        unit_of_work(), agency_id=body["id"], name_zh=body["name_zh"], name_en=body["name_en"], actor=_actor()
    )
    return jsonify(AgencySchema().dump(agency)), 201


@operator_bp.get("/agencies")
@documented(
    "List the agencies", tags=_OPERATOR_TAGS, responses={200: AgencyListSchema, 401: ErrorSchema}, security=OPERATOR
)
def get_agencies() -> ResponseReturnValue:
    """List every agency."""
    return jsonify(AgencyListSchema().dump({"agencies": services.list_agencies(unit_of_work())}))


# -- providers ------------------------------------------------------------------------------------


@operator_bp.post("/providers")
@documented(
    "Register a provider",
    tags=_OPERATOR_TAGS,
    body=ProviderRegistrationSchema,
    responses={201: ProviderSchema, **_ERRORS, 409: ErrorSchema},
    examples={409: AlreadyRegistered},
    description="The provider stays pending until approved. Outside the sandbox the base URL must be https.",
    security=OPERATOR,
)
def post_provider() -> ResponseReturnValue:
    """Register a provider."""
    body = _load(ProviderRegistrationSchema())
    provider = services.register_provider(
        unit_of_work(),
        provider_id=body["id"],
        agency_id=body["agency"],
        base_url=body["base_url"],
        jwks=body["jwks"],
        allow_http=_allow_http(),
        actor=_actor(),
    )
    response = jsonify(ProviderSchema().dump(provider))
    response.headers["Location"] = f"/api/v1/providers/{provider.id}"
    return response, 201


@operator_bp.get("/providers")
@documented(
    "List the providers", tags=_OPERATOR_TAGS, responses={200: ProviderListSchema, 401: ErrorSchema}, security=OPERATOR
)
def get_providers() -> ResponseReturnValue:
    """List every provider, whatever its status."""
    return jsonify(ProviderListSchema().dump({"providers": services.list_providers(unit_of_work())}))


@operator_bp.get("/providers/<provider_id>")
@documented(
    "Show a provider",
    tags=_OPERATOR_TAGS,
    responses={200: ProviderSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def get_provider(provider_id: str) -> ResponseReturnValue:
    """Show one provider."""
    return jsonify(ProviderSchema().dump(services.get_provider(unit_of_work(), provider_id)))


@operator_bp.patch("/providers/<provider_id>")
@documented(
    "Change a provider's base URL or keys",
    tags=_OPERATOR_TAGS,
    body=ProviderUpdateSchema,
    responses={200: ProviderSchema, **_ERRORS, 404: ErrorSchema},
    description=(
        "Key rotation: register a JWKS with the old and the new key, switch signing, then one without the old key."
    ),
    security=OPERATOR,
)
def patch_provider(provider_id: str) -> ResponseReturnValue:
    """Change a provider's base URL or JWKS."""
    body = _load(ProviderUpdateSchema())
    provider = services.update_provider(
        unit_of_work(),
        provider_id,
        base_url=body.get("base_url"),
        jwks=body.get("jwks"),
        allow_http=_allow_http(),
        actor=_actor(),
    )
    return jsonify(ProviderSchema().dump(provider))


@operator_bp.post("/providers/<provider_id>/approve")
@documented(
    "Approve a provider",
    tags=_OPERATOR_TAGS,
    responses={200: ProviderSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def approve_provider(provider_id: str) -> ResponseReturnValue:
    """Let the platform fetch from a provider."""
    return jsonify(ProviderSchema().dump(services.approve_provider(unit_of_work(), provider_id, actor=_actor())))


@operator_bp.post("/providers/<provider_id>/suspend")
@documented(
    "Suspend a provider",
    tags=_OPERATOR_TAGS,
    responses={200: ProviderSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def suspend_provider(provider_id: str) -> ResponseReturnValue:
    """Stop fetching from a provider."""
    return jsonify(ProviderSchema().dump(services.suspend_provider(unit_of_work(), provider_id, actor=_actor())))


# -- datasets -------------------------------------------------------------------------------------


@operator_bp.post("/datasets")
@documented(
    "Register a dataset",
    tags=_OPERATOR_TAGS,
    body=DatasetRegistrationSchema,
    responses={201: DatasetDetailSchema, **_ERRORS, 409: ErrorSchema},
    examples={409: AlreadyRegistered},
    description=(
        "The dataset stays pending until approved. The schema must be a self-contained draft 2020-12 JSON Schema."
    ),
    security=OPERATOR,
)
def post_dataset() -> ResponseReturnValue:
    """Register a dataset."""
    body = _load(DatasetRegistrationSchema())
    dataset = services.register_dataset(
        unit_of_work(),
        dataset_id=body["id"],
        provider_id=body["provider"],
        title_zh=body["title_zh"],
        title_en=body["title_en"],
        description_zh=body["description_zh"],
        description_en=body["description_en"],
        json_schema=body["json_schema"],
        min_level=body["min_level"],
        citizen_downloadable=body["citizen_downloadable"],
        actor=_actor(),
    )
    response = jsonify(DatasetDetailSchema().dump(dataset))
    response.headers["Location"] = f"/api/v1/datasets/{dataset.id}"
    return response, 201


@operator_bp.get("/datasets")
@documented(
    "List the datasets", tags=_OPERATOR_TAGS, responses={200: DatasetListSchema, 401: ErrorSchema}, security=OPERATOR
)
def get_datasets() -> ResponseReturnValue:
    """List every dataset, whatever its status."""
    return jsonify(DatasetListSchema().dump({"datasets": services.list_datasets(unit_of_work())}))


@operator_bp.get("/datasets/<dataset_id>")
@documented(
    "Show a dataset",
    tags=_OPERATOR_TAGS,
    responses={200: DatasetDetailSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def get_dataset(dataset_id: str) -> ResponseReturnValue:
    """Show one dataset with its schema."""
    return jsonify(DatasetDetailSchema().dump(services.get_dataset(unit_of_work(), dataset_id)))


@operator_bp.patch("/datasets/<dataset_id>")
@documented(
    "Change a dataset",
    tags=_OPERATOR_TAGS,
    body=DatasetUpdateSchema,
    responses={200: DatasetDetailSchema, **_ERRORS, 404: ErrorSchema},
    security=OPERATOR,
)
def patch_dataset(dataset_id: str) -> ResponseReturnValue:
    """Change a dataset's texts, schema, level or downloadability."""
    body = _load(DatasetUpdateSchema())
    dataset = services.update_dataset(unit_of_work(), dataset_id, changes=body, actor=_actor())
    return jsonify(DatasetDetailSchema().dump(dataset))


@operator_bp.post("/datasets/<dataset_id>/approve")
@documented(
    "Approve a dataset",
    tags=_OPERATOR_TAGS,
    responses={200: DatasetSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def approve_dataset(dataset_id: str) -> ResponseReturnValue:
    """Publish a dataset in the catalogue."""
    return jsonify(DatasetSchema().dump(services.approve_dataset(unit_of_work(), dataset_id, actor=_actor())))


@operator_bp.post("/datasets/<dataset_id>/suspend")
@documented(
    "Suspend a dataset",
    tags=_OPERATOR_TAGS,
    responses={200: DatasetSchema, 401: ErrorSchema, 404: ErrorSchema},
    security=OPERATOR,
)
def suspend_dataset(dataset_id: str) -> ResponseReturnValue:
    """Take a dataset out of the catalogue."""
    return jsonify(DatasetSchema().dump(services.suspend_dataset(unit_of_work(), dataset_id, actor=_actor())))
