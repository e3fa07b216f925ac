"""The sandbox bank (沙盒銀行): an online credit-card application (信用卡線上申辦) with MyData.

What a bank integrating MyData writes, apart from the shared web layer (webapp.py) and the
protocol client (mydata_client.py): who it is (its client id, from registration), which service it
asks for (approved by the operator: household registration, income, labour insurance), what its
pages say, and what its staff want to see first. It runs mounted in the demo process at
``/sandbox/bank`` or on its own with ``mydata sandbox rp bank --port N``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from relying_parties.sandbox import webapp
from relying_parties.sandbox.texts import Texts

#: What registration gave us (DESIGN §5.2: `mydata sandbox seed` registers this client and service).
CLIENT_ID = "sandbox-bank-web"
SERVICE_ID = "sandbox-bank.credit-card"

TEXTS: Texts = {
    "rp_name": ("沙盒銀行", "Sandbox Bank"),
    "service_name": ("信用卡線上申辦", "Credit card application"),
    "start_lead": (
        "線上申辦信用卡免附財力證明：透過 MyData，您可以同意由政府機關直接提供您的戶籍、所得與勞保資料給本行，"
        "只用於本次審核。",
        "Apply for a credit card online without proof-of-income documents: with MyData you agree that government "
        "agencies send us your household, income and labour-insurance records, for this assessment only.",
    ),
    "why.household.registration": ("確認您的身分與戶籍地址", "to confirm who you are and where you live"),
    "why.tax.income": ("評估您的年所得以核定信用額度", "to assess your yearly income and set your credit limit"),
    "why.labor.insurance": ("確認您目前的任職單位與投保薪資", "to confirm your current employer and insured salary"),
    "retention": ("本行依法保存申請資料 5 年。", "We keep application records for 5 years, as the law requires."),
    "summary.applicant": ("申請人", "Applicant"),
    "summary.address": ("戶籍地址", "Registered address"),
    "summary.income": ("{roc} 年度所得總額", "Gross income {year}"),
    "summary.employer": ("目前任職單位", "Current employer"),
    "summary.salary": ("目前投保薪資", "Current insured salary"),
    "next_step": (
        "承辦人員將於 3 個工作天內完成審核，並以簡訊通知核卡結果。",
        "Our staff will assess your application within 3 working days and tell you the result by text message.",
    ),
}


def summarise(data: Mapping[str, dict[str, Any]], t: Callable[..., str]) -> list[tuple[str, str]]:
    """Return what the bank's staff see first: the applicant, the address, income and current employment."""
    summary: list[tuple[str, str]] = []
    household = data.get("household.registration")
    if household:
        applicant = next((m for m in household["members"] if m.get("is_requester")), None)
        if applicant:
            summary.append((t("summary.applicant"), applicant["name"]))
        summary.append((t("summary.address"), household["address"]["full"]))
    income = data.get("tax.income")
    if income:
        label = t("summary.income", year=income["tax_year"], roc=income["tax_year_roc"])
        summary.append((label, t("amount", value=f"{income['total_gross_amount']:,}")))
    labour = data.get("labor.insurance")
    if labour:
        current = [e["unit_name"] for e in labour["enrolments"] if e.get("withdrawal_date") is None]
        summary.append((t("summary.employer"), "、".join(current) or t("not_insured")))
        salary = labour.get("current_insured_salary")
        summary.append((t("summary.salary"), t("amount", value=f"{salary:,}") if salary else t("not_insured")))
    return summary


PROFILE = webapp.Profile(
    slug="bank",
    client_id=CLIENT_ID,
    service_id=SERVICE_ID,
    required_datasets=("household.registration", "tax.income", "labor.insurance"),
    optional_datasets=(),
    texts=TEXTS,
    summarise=summarise,
)


def create_app(deployment: webapp.Deployment) -> Flask:
    """Build the bank's web app."""
    return webapp.create_app(PROFILE, deployment)
