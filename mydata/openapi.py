"""OpenAPI 3.1: JSON routes describe themselves with marshmallow schemas; `/openapi.json` publishes them.

A JSON view is decorated with :func:`documented`; the document is built from the URL map, so a
route cannot be added without appearing in it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import INCLUDE, Schema, fields
from werkzeug.exceptions import default_exceptions

from mydata.errors import HTTP_ERROR_CODES, MydataError

F = TypeVar("F", bound=Callable[..., Any])
SchemaRef = type[Schema] | Schema
_RULE_ARG = re.compile(r"<(?:[a-z_]+:)?([a-z_]+)>")


class ErrorSchema(Schema):
    """The body of every JSON error: a machine code and a sentence to act on."""

    error = fields.String(required=True, metadata={"description": "snake_case error code"})
    error_description = fields.String(metadata={"description": "what went wrong and what to do"})
    fields_to_fix = fields.Dict(
        keys=fields.String(),
        data_key="fields",
        metadata={
            "description": "invalid_request of a JSON body or query: each field to fix (a list index for an item "
            "of a list) with its reasons, a list of sentences or, for a nested object, the same form again"
        },
    )


class OpenApiDocumentSchema(Schema):
    """This OpenAPI 3.1 document."""

    class Meta:
        unknown = INCLUDE  # the rest of an OpenAPI document: its own specification describes it

    openapi = fields.String(required=True, metadata={"example": "3.1.0"})
    info = fields.Dict(required=True)
    paths = fields.Dict(required=True)
    components = fields.Dict()


@dataclass(frozen=True)
class Content:
    """An answer whose body is not JSON: its media type, what it is, a JSON Schema of it and an example."""

    media_type: str
    description: str
    schema: dict[str, Any]
    example: Any


def documented(
    summary: str,
    *,
    tags: list[str],
    responses: dict[int, SchemaRef | str | Content],
    body: SchemaRef | None = None,
    body_content_type: str = "application/json",
    query: SchemaRef | None = None,
    description: str | None = None,
    security: list[dict[str, list[str]]] | None = None,
    examples: dict[int | str, Any] | None = None,
) -> Callable[[F], F]:
    """Attach an OpenAPI operation to a view; a string response is a description without a body.

    *examples* gives, by status (or ``"body"`` for the request body), an example that says more than
    the one :func:`build_spec` makes from the schema's field examples; a callable is called when the
    document is built, in the app's context (a route's answer that depends on the settings), and a
    :class:`~mydata.errors.MydataError` class gives the error body the platform answers it with.
    """
    given = examples or {}

    def decorate(view: F) -> F:
        operation: dict[str, Any] = {"summary": summary, "tags": tags, "responses": {}}
        if description:
            operation["description"] = description
        if security is not None:
            operation["security"] = security
        if query is not None:
            operation["parameters"] = [{"in": "query", "schema": query}]
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {body_content_type: _media(body, given, "body")},
            }
        for status, response in responses.items():
            if isinstance(response, str):
                operation["responses"][str(status)] = {"description": response}
            elif isinstance(response, Content):
                operation["responses"][str(status)] = {
                    "description": response.description,
                    "content": {response.media_type: {"schema": response.schema, "example": response.example}},
                }
            else:
                operation["responses"][str(status)] = {
                    "description": _describe(response),
                    "content": {"application/json": _media(response, given, status)},
                }
        view.__openapi__ = operation  # type: ignore[attr-defined]
        return view

    return decorate


def _media(schema: SchemaRef, examples: dict[int | str, Any], key: int | str) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if key in examples:
        media["example"] = examples[key]
    return media


def _describe(schema: SchemaRef) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def build_spec(app: Flask) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of every documented route of *app*."""
    spec = APISpec(
        title="MyData platform API",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Public and integrator APIs of the MyData personal-data consent and delivery platform. "
            "Any operation that needs the platform's database may answer 503 `temporarily_unavailable` with "
            "`Retry-After` while the database cannot be reached: an outage to wait out and retry, not a defect "
            "(500 `server_error`).",
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        servers=[{"url": app.config["MYDATA_ISSUER"]}],
    )
    spec.components.schema("Error", schema=ErrorSchema)
    for name, scheme in sorted(app.extensions.get("mydata.openapi_security_schemes", {}).items()):
        spec.components.security_scheme(name, scheme)
    paths: dict[str, dict[str, Any]] = {}
    used_ids: set[str] = set()
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        operation = getattr(view, "__openapi__", None)
        if operation is None:
            continue
        path = _RULE_ARG.sub(r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            op = dict(operation)
            operation_id = f"{rule.endpoint}.{method.lower()}" if len(methods) > 1 else rule.endpoint
            while operation_id in used_ids:  # one view under several paths (e.g. two well-known names)
                operation_id += "_alias"
            used_ids.add(operation_id)
            op["operationId"] = operation_id
            path_args = [
                {"in": "path", "name": a, "required": True, "schema": {"type": "string"}} for a in rule.arguments
            ]
            if path_args:
                op["parameters"] = path_args + list(op.get("parameters", []))
            paths.setdefault(path, {})[method.lower()] = op
    for path, operations in paths.items():
        spec.path(path=path, operations=copy.deepcopy(operations))
    document = spec.to_dict()
    with app.app_context():  # an example a route computes (its own metadata) reads the app's settings
        add_examples(document)
    return document


#: Values for a string of a JSON Schema ``format`` when its field gives no example.
_FORMAT_EXAMPLES = {
    "date-time": "2026-03-01T09:30:00+08:00",
    "date": "2026-03-01",
    "email": "developer@bank.example",
    "uri": "https://bank.example/mydata/callback",
    "url": "https://bank.example/mydata/callback",
    "uuid": "8f14e45f-ceea-467f-a8f2-2b4bd2f4b0a1",
    "ipv4": "203.0.113.7",
    # A SHA-256 hash, as the ledger writes its hashes (standard base64) and its commitments (base64url).
    "byte": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
    "base64url": "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU",
}


def add_examples(document: dict[str, Any]) -> None:
    """Give every request body and answer without an example one.

    An error answer shows what the kernel itself answers for that status (the codes of
    :data:`mydata.errors.HTTP_ERROR_CODES`, werkzeug's sentence); a status the kernel never words
    (409, 410) is for the route to exemplify, as it knows its codes. Any other body is built from its
    schema: each field's own example, else its default, first enum value or format, else a value of
    its type that meets its limits.
    """
    components = document.get("components", {}).get("schemas", {})
    for operations in document["paths"].values():
        for operation in operations.values():
            bodies = list(operation.get("requestBody", {}).get("content", {}).values())
            for media in bodies:
                if callable(media.get("example")):
                    media["example"] = _called(media["example"])
                if "example" not in media and "schema" in media:
                    media["example"] = example_of(media["schema"], components)
            for status, response in operation["responses"].items():
                for media in response.get("content", {}).values():
                    if callable(media.get("example")):
                        media["example"] = _called(media["example"])
                    if "example" in media or "schema" not in media:
                        continue
                    error = _error_example(int(status)) if _error_shaped(media["schema"], components) else None
                    media["example"] = error if error is not None else example_of(media["schema"], components)


def _called(make: Callable[[], Any]) -> Any:
    """Return what *make* gives; a domain error class gives the body the platform answers it with."""
    made = make()
    return made.to_dict() if isinstance(made, MydataError) else made


def _error_shaped(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    """Tell whether *schema* is an error body that a bare code and sentence meet (the kernel's, or one like it)."""
    target = components.get(schema.get("$ref", "").rsplit("/", 1)[-1], {})
    error = target.get("properties", {}).get("error", {})
    return bool(error) and "enum" not in error and set(target.get("required", [])) <= {"error", "error_description"}


def _error_example(status: int) -> dict[str, str] | None:
    code = HTTP_ERROR_CODES.get(status)
    exception = default_exceptions.get(status)
    if code is None or exception is None:
        return None
    return {"error": code, "error_description": str(exception.description)}


def example_of(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """Return a value that meets the JSON Schema *schema*, from its examples where it has them."""
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "$ref" in schema:
        target = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return example_of(target, components, depth + 1) if depth < 8 else {}
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combined in ("allOf", "oneOf", "anyOf"):
        if schema.get(combined):
            return example_of(schema[combined][0], components, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else None)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties and isinstance(extra, dict) and extra:  # a map: one entry of it
            return {"key": example_of(extra, components, depth + 1)}
        return {name: example_of(field, components, depth + 1) for name, field in properties.items()}
    if kind == "array":
        item = example_of(schema.get("items", {}), components, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "string":
        text = _FORMAT_EXAMPLES.get(schema.get("format", ""), "string")
        minimum, maximum = int(schema.get("minLength", 0)), int(schema.get("maxLength", len(text)))
        return (text * (minimum // len(text) + 1))[: max(minimum, min(len(text), maximum))]
    return {}  # any value (a schema without a type)


def add_security_scheme(app: Flask, name: str, scheme: dict[str, Any]) -> None:
    """Declare a security scheme that documented routes name in their ``security`` requirement."""
    app.extensions.setdefault("mydata.openapi_security_schemes", {})[name] = scheme


@documented("This OpenAPI document", tags=["operations"], responses={200: OpenApiDocumentSchema})
def openapi_json() -> ResponseReturnValue:
    """Serve the OpenAPI document (built once per process)."""
    document = current_app.extensions.get("mydata.openapi")
    if document is None:
        document = build_spec(current_app)
        current_app.extensions["mydata.openapi"] = document
    return jsonify(document)


def init_app(app: Flask) -> None:
    """Publish the document at `/openapi.json`."""
    app.add_url_rule("/openapi.json", "openapi", openapi_json)
