"""OpenAPI 3.1: JSON routes describe themselves with marshmallow schemas; `/openapi.json` publishes them.

A JSON view is decorated with :func:`documented`; the document is built from the URL map, so a
route cannot be added without appearing in it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from marshmallow import INCLUDE, Schema, fields

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


def documented(
    summary: str,
    *,
    tags: list[str],
    responses: dict[int, SchemaRef | str],
    body: SchemaRef | None = None,
    body_content_type: str = "application/json",
    query: SchemaRef | None = None,
    description: str | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> Callable[[F], F]:
    """Attach an OpenAPI operation to a view; a string response is a description without a body."""

    def decorate(view: F) -> F:
        operation: dict[str, Any] = {"summary": summary, "tags": tags, "responses": {}}
        if description:
            operation["description"] = description
        if security is not None:
            operation["security"] = security
        if query is not None:
            operation["parameters"] = [{"in": "query", "schema": query}]
        if body is not None:
            operation["requestBody"] = {"required": True, "content": {body_content_type: {"schema": body}}}
        for status, response in responses.items():
            if isinstance(response, str):
                operation["responses"][str(status)] = {"description": response}
            else:
                content_schema = response
                operation["responses"][str(status)] = {
                    "description": _describe(content_schema),
                    "content": {"application/json": {"schema": content_schema}},
                }
        view.__openapi__ = operation  # type: ignore[attr-defined]
        return view

    return decorate


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
        spec.path(path=path, operations=operations)
    return spec.to_dict()


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
