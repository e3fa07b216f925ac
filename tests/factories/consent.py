"""What tests of the consent lifecycle ask citizens for."""

from __future__ import annotations

from consent.consents import ServiceTerms

#: The sandbox bank's credit-card service, with one optional dataset.
TERMS = ServiceTerms(
    organisation_id="sandbox-bank",
    organisation_name="沙盒銀行",
    service_id="sandbox-bank.credit-card",
    purpose="信用卡線上申辦：核對身分與收入",
    retention="P1Y",
    level="substantial",
    datasets_required=("household.registration", "tax.income"),
    datasets_optional=("tax.property",),
)
