"""The check of an agency's ``data`` against its dataset's JSON Schema (draft 2020-12), compiled once.

jsonschema-rs decides, at a few microseconds per answer, what the pure-Python ``jsonschema`` would
take a millisecond for; when it refuses, ``jsonschema``'s ``best_match`` names the place and the
keyword, as operators have always read them (``schema:$.members[0].id:pattern``). A schema that
jsonschema-rs cannot compile is checked by ``jsonschema`` alone. Neither ever fetches a schema over
the network: registration allows local references only, and a remote one here refuses every answer.
"""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

_UNRESOLVABLE = "schema:unresolvable_reference"


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"the platform does not fetch schemas ({uri[:100]})")


class SchemaCheck:
    """One dataset schema version, ready to check answers; safe to share between threads."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self._reference = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        try:
            self._fast: jsonschema_rs.Validator | None = jsonschema_rs.Draft202012Validator(
                schema, validate_formats=True, retriever=_no_retrieval
            )
        except (ValueError, jsonschema_rs.ReferencingError):
            self._fast = None

    def first_error(self, data: object) -> str | None:
        """Return ``None`` for valid data, else where and which keyword it fails (never the value)."""
        if self._fast is not None and self._fast.is_valid(data):
            return None
        try:
            error = best_match(self._reference.iter_errors(data))
        except Unresolvable:
            return _UNRESOLVABLE
        if error is not None:
            return f"schema:{error.json_path}:{error.validator}"
        if self._fast is None:
            return None
        # jsonschema-rs is the stricter here (a format jsonschema does not check): its place and keyword.
        first = next(self._fast.iter_errors(data))
        return f"schema:{_json_path(first.instance_path)}:{first.kind.name}"


def _json_path(path: list[str | int]) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
