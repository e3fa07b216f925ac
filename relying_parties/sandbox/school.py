"""The sandbox school (沙盒高中): the tuition waiver for low-income households (中低收入戶學雜費減免) with MyData.

Like the bank (bank.py), with one difference an integrator should notice: the service has an
optional dataset (財產歸屬資料, tax.property). The school asks for the service without naming
datasets, so the consent screen lets the parent decide about the optional one; the token response's
`authorization_details` and the package then say what was granted. It runs mounted at
``/sandbox/school`` or on its own with ``mydata sandbox rp school --port N``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from relying_parties.sandbox import webapp
from relying_parties.sandbox.texts import Texts

#: What registration gave us (DESIGN §5.2: `mydata sandbox seed` registers this client and service).
CLIENT_ID = "sandbox-school-web"
SERVICE_ID = "sandbox-school.tuition-waiver"

TEXTS: Texts = {
    "rp_name": ("沙盒高中", "Sandbox Senior High School"),
    "service_name": ("中低收入戶學雜費減免", "Tuition waiver for low-income households"),
    "start_lead": (
        "家長可透過 MyData 線上申請學雜費減免，不必到戶政事務所或國稅局申請證明：同意後，"
        "政府機關會直接提供戶籍及家庭所得資料給學校，只用於本次資格審查。",
        "Parents can apply for the tuition waiver online with MyData, without fetching certificates from the "
        "household registration office or the tax bureau: once you agree, the agencies send the school your "
        "household and income records, for this eligibility check only.",
    ),
    "why.household.registration": (
        "確認學生與家長同戶及家庭人口",
        "to confirm the student lives with you, and who else",
    ),
    "why.tax.income": ("確認家庭年所得是否符合標準", "to check the household income against the threshold"),
    "why.tax.property": (
        "確認家庭財產是否符合標準；若不提供，請另繳財產證明",
        "to check the household property against the threshold; if you do not share it, bring a property "
        "certificate instead",
    ),
    "retention": ("學校保存申請資料 3 年。", "The school keeps application records for 3 years."),
    "summary.applicant": ("申請人（家長）", "Applicant (parent)"),
    "summary.members": ("戶內人口", "Household members"),
    "summary.children": ("戶內子女", "Children in the household"),
    "summary.income": ("家長 {roc} 年度所得總額", "Parent's gross income {year}"),
    "summary.property": ("財產總額", "Total property"),
    "summary.property_missing": ("未提供（請另繳財產證明）", "not shared (bring a property certificate)"),
    "summary.people": ("{count} 人", "{count}"),
    "next_step": (
        "學務處將於 5 個工作天內完成審查，並以電子郵件通知結果。",
        "The student affairs office will check your application within 5 working days and tell you by email.",
    ),
}

CHILDREN = ("子", "女")


def summarise(data: Mapping[str, dict[str, Any]], t: Callable[..., str]) -> list[tuple[str, str]]:
    """Return what the school's staff see first: the parent, the household, income and property."""
    summary: list[tuple[str, str]] = []
    household = data.get("household.registration")
    if household:
        members = household["members"]
        applicant = next((m for m in members if m.get("is_requester")), None)
        if applicant:
            summary.append((t("summary.applicant"), applicant["name"]))
        summary.append((t("summary.members"), t("summary.people", count=len(members))))
        children = [m["name"] for m in members if m["relationship"].endswith(CHILDREN)]
        summary.append((t("summary.children"), "、".join(children) or t("none")))
    income = data.get("tax.income")
    if income:
        label = t("summary.income", year=income["tax_year"], roc=income["tax_year_roc"])
        summary.append((label, t("amount", value=f"{income['total_gross_amount']:,}")))
    property_ = data.get("tax.property")
    summary.append(
        (
            t("summary.property"),
            t("amount", value=f"{property_['total_value']:,}") if property_ else t("summary.property_missing"),
        )
    )
    return summary


PROFILE = webapp.Profile(
    slug="school",
    client_id=CLIENT_ID,
    service_id=SERVICE_ID,
    required_datasets=("household.registration", "tax.income"),
    optional_datasets=("tax.property",),
    texts=TEXTS,
    summarise=summarise,
)


def create_app(deployment: webapp.Deployment) -> Flask:
    """Build the school's web app."""
    return webapp.create_app(PROFILE, deployment)
