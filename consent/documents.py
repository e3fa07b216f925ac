"""The download formats (DESIGN §6.5): JSON (the agencies' signed documents and a manifest) and CSV.

Each renderer returns the exact bytes the citizen receives; their SHA-256 is what `/verify/<code>`
compares an uploaded file with. The PDF is in :mod:`consent.pdf`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from consent.downloads import DocumentHeader, Download
from consent.ledger import rfc3339

ISSUER_NAME = "MyData"
UTF8_BOM = "\ufeff"
"""Spreadsheet programs read a CSV file as UTF-8 (and so show Chinese) only when it starts with a BOM."""


def manifest(download: Download, header: DocumentHeader, *, verify_url: str) -> dict[str, Any]:
    """Return what a download holds: its id, times, verification code, and each dataset's source and outcome."""
    return {
        "document_id": header.id,
        "issuer": ISSUER_NAME,
        "issued_at": rfc3339(header.issued_at),
        "valid_until": rfc3339(header.valid_until),
        "verification_code": header.display_code,
        "verification_url": verify_url,
        "datasets": [
            {
                "dataset": entry.id,
                "title_zh": entry.title_zh,
                "title_en": entry.title_en,
                "agency": entry.agency,
                "provider": entry.provider,
                "status": str(download.results[entry.id].outcome),
                "generated_at": download.results[entry.id].generated_at,
                "provider_jws_sha256": _sha256(download.results[entry.id].provider_jws),
            }
            for entry in download.entries
        ],
    }


def render_json(download: Download, header: DocumentHeader, *, verify_url: str) -> bytes:
    """Return the JSON document: the manifest and each agency's signed answer (compact JWS) as received."""
    documents = {dataset: result.provider_jws for dataset, result in download.results.items() if result.provider_jws}
    body = {"manifest": manifest(download, header, verify_url=verify_url), "documents": documents}
    return json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")


def render_csv(
    download: Download, header: DocumentHeader, *, verify_url: str, columns: tuple[str, str]
) -> tuple[bytes, str]:
    """Return the CSV document and its media type: one file per dataset, zipped (with the manifest) when several.

    Each file lists the dataset's fields as rows of (field, value), nested fields by their path
    (``members[1].name``); *columns* are the two column headings in the citizen's language.
    """
    files = {
        f"{dataset}.csv": _csv_file(download.results[dataset].data or {}, columns) for dataset in download.with_data
    }
    if len(files) == 1:
        return next(iter(files.values())), "text/csv; charset=utf-8"
    buffer = io.BytesIO()
    # A fixed time in every entry: the same download gives the same bytes (and hash).
    moment = header.issued_at.timetuple()[:6]
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=moment), content)
        manifest_json = json.dumps(manifest(download, header, verify_url=verify_url), ensure_ascii=False, indent=2)
        archive.writestr(zipfile.ZipInfo("manifest.json", date_time=moment), manifest_json.encode("utf-8"))
    return buffer.getvalue(), "application/zip"


def _csv_file(data: dict[str, Any], columns: tuple[str, str]) -> bytes:
    text = io.StringIO()
    text.write(UTF8_BOM)
    writer = csv.writer(text, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(columns)
    for path, value in _flatten(data, ""):
        writer.writerow((path, _cell(value)))
    return text.getvalue().encode("utf-8")


def _flatten(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value, start=1):
            yield from _flatten(item, f"{path}[{index}]")
    else:
        yield path, value


def _cell(value: Any) -> str:
    if value is None or value == []:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection, OWASP): quote it.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _sha256(text: str | None) -> str | None:
    return hashlib.sha256(text.encode()).hexdigest() if text else None
