"""The consent screen (同意畫面) and its decisions, plugged into the authorization server (DESIGN §6.1).

The authorization server (identity) calls this flow for requests carrying a `mydata_delivery`
authorization detail. What the screen shows comes from the detail's summary, which the relying
parties package resolves at PAR from the registered, approved service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import render_template
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from sqlalchemy import bindparam, select

from consent import consents
from consent.consents import DELIVERED, DELIVERY_WINDOW, GRANTED, ServiceTerms
from consent.models import Consent
from identity.oauth.interfaces import ConsentDecision, ConsentWindow, ResolvedDetails
from identity.oauth.services import PendingAuthorization
from identity.sessions import Authentication
from mydata.clock import clock
from mydata.db import UnitOfWork

DELIVERY_TYPE = "mydata_delivery"
#: Two columns, not the consent: every resource request asks for its window before anything else.
_WINDOW = select(Consent.status, Consent.window_ends_at).where(Consent.id == bindparam("id"))


def terms_of(summary: Mapping[str, Any]) -> ServiceTerms:
    """Return the service terms a delivery detail's summary states."""
    return ServiceTerms(
        organisation_id=str(summary["organisation"]),
        organisation_name=str(summary["organisation_name_zh"]),
        service_id=str(summary["service"]),
        purpose=str(summary["purpose_zh"]),
        retention=f"P{int(summary['retention_days'])}D",
        level=str(summary["level"]),
        datasets_required=tuple(summary["required_datasets"]),
        datasets_optional=tuple(summary["optional_datasets"]),
    )


def _delivery(details: list[ResolvedDetails]) -> ResolvedDetails:
    deliveries = [d for d in details if d.detail.get("type") == DELIVERY_TYPE]
    if len(deliveries) != 1:
        raise ValueError("a consent covers exactly one mydata_delivery request")
    return deliveries[0]


@dataclass(frozen=True)
class ScreenDataset:
    """One dataset line of the consent screen, in the reader's language."""

    id: str
    title: str
    description: str
    agency: str
    required: bool


class ConsentScreen:
    """The :class:`identity.oauth.interfaces.ConsentFlow` of the platform."""

    def requested(self, uow: UnitOfWork, client_id: str, details: list[ResolvedDetails]) -> str:
        """Record the pushed request as a consent in state `requested`; return its id (the `txn`)."""
        consent = consents.record_request(
            uow, client_id=client_id, terms=terms_of(_delivery(details).summary), now=clock().now()
        )
        return consent.id

    def screen(
        self, pending: PendingAuthorization, authentication: Authentication, transaction_id: str
    ) -> ResponseReturnValue:
        """Render the consent screen in the reader's language."""
        summary = _delivery(pending.details).summary
        lang = "en" if str(get_locale()) == "en" else "zh"
        datasets = [
            ScreenDataset(
                id=d["id"],
                title=d[f"title_{lang}"],
                description=d[f"description_{lang}"],
                agency=d[f"agency_name_{lang}"],
                required=bool(d["required"]),
            )
            for d in summary["dataset_details"]
        ]
        return render_template(
            "consent/screen.html",
            organisation=summary[f"organisation_name_{lang}"],
            organisation_type=summary["organisation_type"],
            service=summary[f"service_name_{lang}"],
            purpose=summary[f"purpose_{lang}"],
            retention_days=summary["retention_days"],
            window_minutes=int(DELIVERY_WINDOW.total_seconds() // 60),
            required=[d for d in datasets if d.required],
            optional=[d for d in datasets if not d.required],
            authentication=authentication,
        )

    def decide(
        self,
        uow: UnitOfWork,
        pending: PendingAuthorization,
        authentication: Authentication,
        transaction_id: str,
        form: Mapping[str, list[str]],
    ) -> ConsentDecision:
        """Grant (with the optional datasets ticked) or deny, with the ledger entry."""
        now = clock().now()
        if form.get("decision", [""])[0] != "approve":
            consents.deny(
                uow,
                transaction_id,
                citizen_id=authentication.citizen_id,
                national_id=authentication.national_id,
                now=now,
            )
            return ConsentDecision(approve=False)
        consent = consents.grant(
            uow,
            transaction_id,
            citizen_id=authentication.citizen_id,
            national_id=authentication.national_id,
            optional_chosen=tuple(form.get("datasets", [])),
            amr=authentication.amr,
            now=now,
        )
        granted = {"type": DELIVERY_TYPE, "service": consent.service_id, "datasets": consent.datasets_granted}
        return ConsentDecision(approve=True, granted=[granted])

    def window(self, uow: UnitOfWork, transaction_id: str) -> ConsentWindow | None:
        """Return until when the consent's tokens may be used, and whether it was revoked or has expired."""
        # A lone read (the delivery asks before its DPoP proof's replay record): no transaction of its own.
        found = uow.read(_WINDOW, {"id": transaction_id}).first()
        if found is None:
            return None  # a sign-in without authorization_details: no consent
        status, window_ends_at = found
        ends_at = int(window_ends_at.timestamp()) if window_ends_at is not None else 0
        # A delivered consent's token still gets its answer (410 already_delivered) within the window.
        return ConsentWindow(ends_at, None if status in (GRANTED, DELIVERED) else status)
