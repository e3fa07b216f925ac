"""Who the sandbox agencies are and what they serve: the sandbox catalogue of DESIGN §4.1.

Each sandbox agency runs one provider with the agency's own id. All of it is sample material.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where the sandbox agency app is mounted in the platform's process (DESIGN §4.3; docs/agencies.md).
#: Each provider's base URL is ``{issuer}/sandbox/agencies/{provider id}``.
MOUNT_PREFIX = "/sandbox/agencies"


@dataclass(frozen=True)
class SandboxAgency:
    """A sandbox agency and the id of its one provider."""

    id: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class SandboxDataset:
    """A dataset of the sandbox catalogue."""

    id: str
    provider: str
    title_zh: str
    title_en: str
    description_zh: str
    description_en: str
    min_level: str
    citizen_downloadable: bool = True


AGENCIES: tuple[SandboxAgency, ...] = (
    SandboxAgency("moi-household", "內政部戶政司", "Department of Household Registration, Ministry of the Interior"),
    SandboxAgency("mof-fia", "財政部財政資訊中心", "Fiscal Information Agency, Ministry of Finance"),
    SandboxAgency("bli", "勞動部勞工保險局", "Bureau of Labor Insurance, Ministry of Labor"),
    SandboxAgency(
        "nhia", "衛生福利部中央健康保險署", "National Health Insurance Administration, Ministry of Health and Welfare"
    ),
)

DATASETS: tuple[SandboxDataset, ...] = (
    SandboxDataset(
        id="household.registration",
        provider="moi-household",
        title_zh="戶籍資料",
        title_en="Household registration",
        description_zh="本人及戶內成員的戶籍資料：戶號、戶籍地址與遷入日期、各成員姓名、出生日期、稱謂及戶政事務所。",
        description_en=(
            "Your household registration: household number, registered address and the date you moved in, "
            "and each member's name, date of birth and relationship to the head of household."
        ),
        min_level="substantial",
    ),
    SandboxDataset(
        id="tax.income",
        provider="mof-fia",
        title_zh="綜合所得稅各類所得資料",
        title_en="Income data for individual income tax",
        description_zh="前一年度的各類所得資料：扣繳單位、所得類別、給付總額及扣繳稅額，並依類別加總。",
        description_en=(
            "Last year's income items: each payer, income category, gross amount and tax withheld, "
            "with totals per category."
        ),
        min_level="substantial",
    ),
    SandboxDataset(
        id="tax.property",
        provider="mof-fia",
        title_zh="財產歸屬資料",
        title_en="Property holdings",
        description_zh="名下的土地、房屋、車輛及投資：坐落、面積、持分、公告現值或評定現值。",
        description_en=(
            "Land, buildings, vehicles and investments in your name: location, area, ownership share "
            "and announced or assessed value."
        ),
        min_level="substantial",
    ),
    SandboxDataset(
        id="labor.insurance",
        provider="bli",
        title_zh="勞保投保資料",
        title_en="Labour insurance enrolment",
        description_zh="勞工保險投保紀錄：投保單位、保險證號、加保及退保日期、投保薪資及其異動、投保年資。",
        description_en=(
            "Your labour insurance history: insured units, enrolment and withdrawal dates, insured salary "
            "grades and their changes, and the total insured period."
        ),
        min_level="substantial",
    ),
    SandboxDataset(
        id="nhi.enrolment",
        provider="nhia",
        title_zh="健保投保資料",
        title_en="National Health Insurance enrolment",
        description_zh="目前的全民健康保險投保資料：投保類別、投保單位、投保日期、每月保險費及眷屬。",
        description_en=(
            "Your current National Health Insurance enrolment: insured category, insured unit, "
            "enrolment date, monthly premium and dependants."
        ),
        min_level="low",
    ),
)

#: The datasets each sandbox provider serves.
PROVIDER_DATASETS: dict[str, tuple[str, ...]] = {
    agency.id: tuple(d.id for d in DATASETS if d.provider == agency.id) for agency in AGENCIES
}
