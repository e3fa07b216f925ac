"""JSON Schemas (draft 2020-12) for the ``data`` of each catalogue dataset.

The platform registers these schemas with the sandbox datasets and validates every agency answer
against them (DESIGN.md §4.2, outcome ``schema_violation``). Each file is self-contained and has the
``$id`` ``https://mydata.example/schemas/<dataset id>.json``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

__all__ = ["DATASET_IDS", "load_schema"]

#: The five datasets of the sandbox catalogue, in catalogue order (DESIGN.md §4.1).
DATASET_IDS: tuple[str, ...] = (
    "household.registration",
    "tax.income",
    "tax.property",
    "labor.insurance",
    "nhi.enrolment",
)


def load_schema(dataset_id: str) -> dict[str, Any]:
    """Return a fresh copy of the JSON Schema for ``dataset_id``.

    :raises KeyError: if ``dataset_id`` is not one of :data:`DATASET_IDS`.
    """
    schema: dict[str, Any] = json.loads(_schema_text(dataset_id))
    return schema


@cache
def _schema_text(dataset_id: str) -> str:
    # Checking against the known ids first also keeps a caller's string out of the file path.
    if dataset_id not in DATASET_IDS:
        raise KeyError(f"no schema for dataset {dataset_id!r}")
    return files(__name__).joinpath(f"{dataset_id}.json").read_text(encoding="utf-8")
