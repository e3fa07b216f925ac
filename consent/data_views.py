"""My data (我的資料, DESIGN §6.5): the catalogue, the fetched data as tables, and the downloads.

Thin views: each loads the citizen and the form or query, calls the download services
(:mod:`consent.downloads`), and renders a page or a file. Datasets above the session's level send
the citizen to step up, and back here with the same choice.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_datetime, get_locale, gettext, lazy_gettext

from consent import documents, downloads, pdf
from consent.downloads import Citizen, DocumentHeader, Download
from identity.sessions import current_authentication, login_url
from mydata.clock import clock
from mydata.db import unit_of_work
from providers.services import fetch_datasets

bp = Blueprint("data", __name__)

MEDIA_TYPES = {"json": "application/json", "pdf": "application/pdf"}
LEVEL_NAMES = {"low": lazy_gettext("low"), "substantial": lazy_gettext("substantial"), "high": lazy_gettext("high")}


def _citizen() -> Citizen | None:
    authentication = current_authentication()
    if authentication is None:
        return None
    return Citizen(authentication.citizen_id, authentication.national_id, authentication.name, authentication.level)


def _resume_url(dataset_ids: tuple[str, ...]) -> str:
    return url_for("data.my_data", datasets=",".join(dataset_ids))


@bp.get("/me/data")
def my_data() -> ResponseReturnValue:
    """Show the datasets the citizen may download, each with its agency, description and level."""
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(request.full_path.rstrip("?")), 303)
    picked = {part for part in request.args.get("datasets", "").split(",") if part}
    with unit_of_work() as uow:
        offered = downloads.choices(uow, citizen.level)
    step_up = {
        choice.entry.id: login_url(_resume_url((choice.entry.id,)), choice.entry.min_level)
        for choice in offered
        if not choice.allowed
    }
    return render_template("portal/data.html", choices=offered, picked=picked, step_up=step_up, citizen=citizen)


@bp.post("/me/data")
def fetch_data() -> ResponseReturnValue:
    """Fetch the picked datasets in parallel and show them, each with its named outcome."""
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(url_for("data.my_data")), 303)
    dataset_ids = downloads.parse_datasets(request.form.getlist("datasets"))
    uow = unit_of_work()
    selection = downloads.select_datasets(uow, dataset_ids, citizen.level)
    if selection.step_up:
        return redirect(login_url(_resume_url(dataset_ids), selection.step_up), 303)
    download = downloads.fetch(
        uow, citizen=citizen, entries=selection.entries, fetcher=fetch_datasets, now=clock().now()
    )
    downloads.record_view(uow, download, citizen=citizen)
    uow.commit()
    return render_template("portal/data_result.html", download=download, citizen=citizen)


@bp.get("/me/data/download")
def download_file() -> ResponseReturnValue:
    """Fetch the datasets again and answer them as a JSON, CSV or PDF document (never stored)."""
    citizen = _citizen()
    if citizen is None:
        return redirect(login_url(request.full_path), 303)
    dataset_ids = downloads.parse_datasets(request.args.getlist("datasets"))
    fmt = downloads.check_format(request.args.get("format"))
    uow = unit_of_work(read_only=False)  # a GET that writes: the document's record and its ledger entry
    selection = downloads.select_datasets(uow, dataset_ids, citizen.level)
    if selection.step_up:
        return redirect(login_url(request.full_path, selection.step_up), 303)
    now = clock().now()
    download = downloads.fetch(uow, citizen=citizen, entries=selection.entries, fetcher=fetch_datasets, now=now)
    if download.failed:
        downloads.record_failed_download(uow, download, citizen=citizen)
        uow.commit()
        return render_template("portal/data_result.html", download=download, citizen=citizen), 503
    media_type = MEDIA_TYPES.get(fmt, "")

    def render(done: Download, header: DocumentHeader) -> bytes:
        nonlocal media_type
        verify_url = url_for("verify.document", code=header.display_code, _external=True)
        if fmt == "json":
            return documents.render_json(done, header, verify_url=verify_url)
        if fmt == "pdf":
            return pdf.render_pdf(done, header, citizen_name=citizen.name, verify_url=verify_url)
        body, media_type = documents.render_csv(
            done, header, verify_url=verify_url, columns=(gettext("Field"), gettext("Value"))
        )
        return body

    issued = downloads.issue_document(uow, download, citizen=citizen, fmt=fmt, render=render, now=now)
    uow.commit()
    extension = {"application/zip": "zip", "text/csv; charset=utf-8": "csv"}.get(media_type, fmt)
    name = download.with_data[0] if len(download.with_data) == 1 else "mydata"
    filename = f"{name}-{issued.header.display_code}.{extension}"
    return Response(
        issued.body,
        mimetype=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},  # no-store: mydata.security
    )


def download_url(dataset_ids: list[str], fmt: str) -> str:
    """Return the download link of *dataset_ids* in *fmt*."""
    return url_for("data.download_file") + "?" + urlencode({"datasets": ",".join(dataset_ids), "format": fmt})


# -- template filters (registered by consent.init_app) ----------------------------------------------


def roc_date(value: object) -> str:
    """Format an ISO date for people: 民國77年5月20日 in Chinese, 1988-05-20 (ROC 77) in English."""
    if not isinstance(value, str):
        return "—"
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    if str(get_locale()).startswith("zh"):
        return f"民國{day.year - 1911}年{day.month}月{day.day}日"
    return f"{day.isoformat()} (ROC {day.year - 1911})"


def money(value: object) -> str:
    """Format an amount of New Taiwan dollars: NT$ 1,234."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "—"
    return f"NT$ {value:,}"


def taiwan_time(value: dt.datetime) -> str:
    """Format a time in Taiwan time (the app's Babel time zone), to the minute."""
    return str(format_datetime(value, "yyyy-MM-dd HH:mm"))


def localized(entry: Any, field: str) -> str:
    """Return the Chinese or English text of a catalogue field (``title``, ``description``, ``agency_name``)."""
    suffix = "zh" if str(get_locale()).startswith("zh") else "en"
    return str(getattr(entry, f"{field}_{suffix}"))


def level_name(level: str) -> str:
    """Name an assurance level in the reader's language."""
    return str(LEVEL_NAMES.get(level, level))


def register_filters(app: Flask) -> None:
    """Make the portal's formats available to every template."""
    app.add_template_filter(roc_date)
    app.add_template_filter(money)
    app.add_template_filter(taiwan_time)
    app.add_template_filter(localized)
    app.add_template_filter(level_name)
    app.add_template_global(download_url)
