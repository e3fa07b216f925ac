"""The PDF document of a download (DESIGN §6.5): WeasyPrint, Noto Sans CJK TC, A4.

A title page with the issue time and the document id, then one section per dataset with its agency
and the time the agency produced the data. Every page carries the verification code and a QR code
of ``/verify/<code>`` in its bottom margin (a CSS running element, CSS GCPM §2).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import segno
from flask import render_template
from weasyprint import CSS, HTML

from consent.downloads import DocumentHeader, Download

STYLESHEET = Path(__file__).resolve().parent.parent / "templates" / "pdf" / "document.css"
_CSS: CSS | None = None


def qr_data_uri(url: str) -> str:
    """Return a QR code of *url* as a PNG data URI (no network, no file).

    PNG rather than SVG: WeasyPrint decodes an image once per document but draws an SVG anew on
    every page, and the code is on every page (bench/pdf.py).
    """
    return str(segno.make(url, error="m").png_data_uri(scale=4, border=0))


def render_pdf(download: Download, header: DocumentHeader, *, citizen_name: str, verify_url: str) -> bytes:
    """Return the PDF document of a complete download, in the current request's language."""
    html = render_template(
        "pdf/document.html",
        download=download,
        header=header,
        citizen_name=citizen_name,
        verify_url=verify_url,
        qr=qr_data_uri(verify_url),
        generated_at=_generated_at,
    )
    return HTML(string=html).write_pdf(stylesheets=[_stylesheet()]) or b""


def _stylesheet() -> CSS:
    global _CSS
    if _CSS is None:
        _CSS = CSS(filename=str(STYLESHEET))
    return _CSS


def _generated_at(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None
