"""The sandbox agencies' persona data and the dataset schemas it must satisfy."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable, Iterator
from datetime import date
from fractions import Fraction
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from providers.sandbox.data import AS_OF, DATASET_IDS, SANDBOX_NATIONAL_IDS, TAX_YEAR, dataset_for
from providers.schemas import load_schema

WANG, LIN, CHEN, CHANG, HUANG, CHAO = SANDBOX_NATIONAL_IDS
PERSONA_NAMES = {WANG: "王小明", LIN: "林美華", CHEN: "陳志強", CHANG: "張雅婷", HUANG: "黃建國", CHAO: "趙曉雯"}
ANSWERS = [
    (national_id, dataset_id)
    for national_id in SANDBOX_NATIONAL_IDS
    for dataset_id in DATASET_IDS
    if (national_id, dataset_id) != (CHAO, "labor.insurance")
]

MASKED_ID = re.compile(r"[A-Z][12][0-9]\*{4}[0-9]{3}")
# Monthly insured salary grades (勞工保險投保薪資分級表) in force on AS_OF, from 1 January 2026
# when the monthly minimum wage became NT$29,500, and the lower grades open to part-time work.
LABOUR_GRADES_2026 = {29_500, 30_300, 31_800, 33_300, 34_800, 36_300, 38_200, 40_100, 42_000, 43_900, 45_800}
PART_TIME_GRADES = {11_100, 12_540, 13_500, 15_840, 16_500, 17_280, 17_880, 19_047, 20_008, 21_009, 22_000}
# The lower part of the NHI insured amount table (全民健康保險投保金額分級表) for 2026.
NHI_GRADES_2026 = LABOUR_GRADES_2026 | {48_200, 50_600, 53_000, 55_400, 57_800, 60_800, 63_800, 66_800, 69_800}


def validator(dataset_id: str) -> Draft202012Validator:
    return Draft202012Validator(load_schema(dataset_id), format_checker=Draft202012Validator.FORMAT_CHECKER)


def errors(dataset_id: str, document: Any) -> list[str]:
    return [error.message for error in validator(dataset_id).iter_errors(document)]


def answer(national_id: str, dataset_id: str) -> dict[str, Any]:
    document = dataset_for(national_id, dataset_id)
    assert document is not None, f"{national_id} has no {dataset_id}"
    return document


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def national_id_is_valid(national_id: str) -> bool:
    letters = "ABCDEFGHJKLMNPQRSTUVXYWZIO"  # 10..35 in the official order
    code = letters.index(national_id[0]) + 10
    digits = [code // 10, code % 10, *map(int, national_id[1:])]
    return sum(d * w for d, w in zip(digits, (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1), strict=True)) % 10 == 0


def tax_id_is_valid(tax_id: str) -> bool:
    """Check a 統一編號 with the Ministry of Finance's weights (the 2023 rule accepts multiples of 5)."""
    products = [int(d) * w for d, w in zip(tax_id, (1, 2, 1, 2, 1, 2, 4, 1), strict=True)]
    total = sum(p // 10 + p % 10 for p in products)
    return total % 5 == 0 or (tax_id[6] == "7" and (total + 1) % 5 == 0)


def current_enrolment(national_id: str) -> dict[str, Any]:
    enrolments: list[dict[str, Any]] = answer(national_id, "labor.insurance")["enrolments"]
    (current,) = [e for e in enrolments if e["withdrawal_date"] is None]
    return current


# --- the schemas -------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_each_schema_is_a_valid_2020_12_schema_with_its_own_id(dataset_id: str) -> None:
    schema = load_schema(dataset_id)

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://mydata.example/schemas/{dataset_id}.json"
    assert schema["title"]
    assert schema["description"]
    assert schema["additionalProperties"] is False


def test_load_schema_returns_a_copy_the_caller_may_change() -> None:
    schema = load_schema("tax.income")
    schema["required"].clear()

    assert load_schema("tax.income")["required"]


def test_load_schema_refuses_an_unknown_dataset() -> None:
    with pytest.raises(KeyError):
        load_schema("../pyproject")


def test_check_schema_would_catch_a_broken_schema() -> None:
    schema = load_schema("nhi.enrolment")
    schema["properties"]["insured"]["required"] = "name"

    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema(schema)


# --- every answer is valid ---------------------------------------------------------------------


@pytest.mark.parametrize(("national_id", "dataset_id"), ANSWERS)
def test_every_persona_answer_validates_against_its_schema(national_id: str, dataset_id: str) -> None:
    assert errors(dataset_id, answer(national_id, dataset_id)) == []


def test_persona_6_has_no_labour_insurance_record() -> None:
    assert dataset_for(CHAO, "labor.insurance") is None


@pytest.mark.parametrize("dataset_id", DATASET_IDS)
def test_an_unknown_national_id_has_no_record(dataset_id: str) -> None:
    assert dataset_for("A100000001", dataset_id) is None


def test_an_unknown_dataset_is_an_error_not_a_missing_record() -> None:
    with pytest.raises(KeyError):
        dataset_for(WANG, "tax.inheritance")


@pytest.mark.parametrize(("national_id", "dataset_id"), ANSWERS)
def test_answers_are_deterministic_and_not_shared(national_id: str, dataset_id: str) -> None:
    first = answer(national_id, dataset_id)
    second = answer(national_id, dataset_id)
    assert first == second

    first.clear()
    assert answer(national_id, dataset_id) == second


# --- the schemas reject bad documents ----------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Return a change that sets the item at a dotted path (list indexes as numbers)."""

    def change(document: dict[str, Any]) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = document
        for key in parents:
            target = target[key]
        target[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        target: Any = document
        for key in parents:
            target = target[key]
        del target[last]

    return change


def _append_copy(path: str, **changes: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for key in path.split("."):
            target = target[key]
        target.append({**copy.deepcopy(target[-1]), **changes})

    return change


BAD_DOCUMENTS = [
    # household.registration
    pytest.param(WANG, "household.registration", _delete("household_number"), id="household-missing-number"),
    pytest.param(WANG, "household.registration", _set("household_number", "A038261"), id="household-number-short"),
    pytest.param(WANG, "household.registration", _set("moved_in_date", "2016-02-30"), id="household-impossible-date"),
    pytest.param(WANG, "household.registration", _set("moved_in_date", "2016/03/18"), id="household-non-iso-date"),
    pytest.param(WANG, "household.registration", _set("note", "x"), id="household-extra-property"),
    pytest.param(WANG, "household.registration", _set("address.neighbourhood", "十二鄰"), id="household-neighbourhood"),
    pytest.param(WANG, "household.registration", _set("address.zip", "106"), id="household-address-extra"),
    pytest.param(WANG, "household.registration", _set("registration_office", "大安區公所"), id="household-office"),
    pytest.param(WANG, "household.registration", _set("members.0.national_id", "A12****789"), id="requester-masked"),
    pytest.param(WANG, "household.registration", _set("members.1.national_id", "A223518704"), id="member-unmasked"),
    pytest.param(WANG, "household.registration", _set("members.1.relationship", "戶長"), id="two-heads"),
    pytest.param(WANG, "household.registration", _set("members.1.is_requester", True), id="two-requesters"),
    pytest.param(WANG, "household.registration", _set("members.2.relationship", "兒子"), id="unknown-relationship"),
    pytest.param(WANG, "household.registration", _set("members", []), id="no-members"),
    # tax.income
    pytest.param(WANG, "tax.income", _delete("tax_year"), id="income-missing-year"),
    pytest.param(WANG, "tax.income", _set("items.0.gross_amount", -1), id="income-negative-amount"),
    pytest.param(WANG, "tax.income", _set("items.0.tax_withheld", 16_800.5), id="income-fractional-amount"),
    pytest.param(WANG, "tax.income", _set("items.0.category_code", "5B"), id="income-unknown-category"),
    pytest.param(WANG, "tax.income", _set("items.0.category_name", "利息所得"), id="income-name-of-other-code"),
    pytest.param(WANG, "tax.income", _set("items.0.payer_tax_id", "2845316"), id="income-tax-id-7-digits"),
    pytest.param(WANG, "tax.income", _set("items.0.payer_address", "臺北市"), id="income-item-extra"),
    pytest.param(WANG, "tax.income", _set("totals_by_category.0.category_code", "99"), id="income-total-category"),
    pytest.param(WANG, "tax.income", _set("total_net_payment", -5), id="income-negative-total"),
    # tax.property
    pytest.param(WANG, "tax.property", _delete("vehicles"), id="property-missing-vehicles"),
    pytest.param(WANG, "tax.property", _set("lands.0.value_of_share", -100), id="property-negative-value"),
    pytest.param(WANG, "tax.property", _set("lands.0.lot_number", "245"), id="property-lot-number"),
    pytest.param(WANG, "tax.property", _set("lands.0.ownership_share", "0/10000"), id="property-zero-share"),
    pytest.param(WANG, "tax.property", _set("lands.0.area_m2", 0), id="property-zero-area"),
    pytest.param(WANG, "tax.property", _set("vehicles.0.plate_number", "BKR8263"), id="property-plate"),
    pytest.param(WANG, "tax.property", _set("vehicles.0.vehicle_type", "轎車"), id="property-vehicle-type"),
    pytest.param(WANG, "tax.property", _set("buildings.0.use", "自住"), id="property-building-use"),
    pytest.param(WANG, "tax.property", _set("investments.0.company_tax_id", "ABCDEFGH"), id="property-company-id"),
    pytest.param(WANG, "tax.property", _set("buildings.0.owner", "王小明"), id="property-extra"),
    # labor.insurance
    pytest.param(WANG, "labor.insurance", _set("enrolments", []), id="labour-no-enrolment"),
    pytest.param(WANG, "labor.insurance", _delete("enrolments.1.withdrawal_date"), id="labour-missing-withdrawal"),
    pytest.param(WANG, "labor.insurance", _set("current_insured_salary", 46_000), id="labour-above-top-grade"),
    pytest.param(WANG, "labor.insurance", _set("enrolments.0.insured_salary_history", []), id="labour-no-grade"),
    pytest.param(WANG, "labor.insurance", _set("enrolments.0.unit_type", "公司"), id="labour-unit-type"),
    pytest.param(WANG, "labor.insurance", _set("total_insured_period.months", 12), id="labour-months-overflow"),
    pytest.param(CHEN, "labor.insurance", _set("enrolments.1.employment_insurance", True), id="union-employment-ins"),
    # nhi.enrolment
    pytest.param(WANG, "nhi.enrolment", _set("insured.category", "第七類"), id="nhi-unknown-category"),
    pytest.param(WANG, "nhi.enrolment", _set("insured.monthly_premium", -990), id="nhi-negative-premium"),
    pytest.param(WANG, "nhi.enrolment", _set("insured.insured_amount", None), id="nhi-category-1-no-amount"),
    pytest.param(WANG, "nhi.enrolment", _set("dependants.0.national_id", "A223518704"), id="nhi-dependant-unmasked"),
    pytest.param(WANG, "nhi.enrolment", _set("dependants.0.relationship", "太太"), id="nhi-relationship"),
    pytest.param(WANG, "nhi.enrolment", _set("insured.card_number", "000011110001"), id="nhi-extra"),
    pytest.param(WANG, "nhi.enrolment", _set("insured.category", "第二類"), id="nhi-category-2-at-employer"),
    pytest.param(LIN, "nhi.enrolment", _set("insured.monthly_premium", 826), id="nhi-category-5-pays"),
    pytest.param(LIN, "nhi.enrolment", _set("insured_unit.name", "青禾餐飲有限公司"), id="nhi-category-5-employer"),
    pytest.param(CHEN, "nhi.enrolment", _append_copy("dependants", monthly_premium=-1), id="nhi-dependant-premium"),
]


@pytest.mark.parametrize(("national_id", "dataset_id", "change"), BAD_DOCUMENTS)
def test_schema_rejects_a_bad_document(
    national_id: str, dataset_id: str, change: Callable[[dict[str, Any]], None]
) -> None:
    document = answer(national_id, dataset_id)
    change(document)

    assert errors(dataset_id, document)


# --- consistency inside and across datasets ----------------------------------------------------


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_only_the_requesters_own_id_is_shown_in_full(national_id: str) -> None:
    members = answer(national_id, "household.registration")["members"]
    dependants = answer(national_id, "nhi.enrolment")["dependants"]

    (requester,) = [m for m in members if m["is_requester"]]
    assert requester["national_id"] == national_id
    assert requester["name"] == PERSONA_NAMES[national_id]
    for person in [m for m in members if not m["is_requester"]] + dependants:
        assert MASKED_ID.fullmatch(person["national_id"]), person
    for dataset_id, subject in [("tax.income", "taxpayer"), ("tax.property", "owner"), ("nhi.enrolment", "insured")]:
        assert answer(national_id, dataset_id)[subject]["national_id"] == national_id
        assert answer(national_id, dataset_id)[subject]["name"] == PERSONA_NAMES[national_id]


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_household_is_consistent(national_id: str) -> None:
    household = answer(national_id, "household.registration")
    address = household["address"]

    assert "".join(part for name, part in address.items() if name != "full") == address["full"]
    assert address["full"].startswith(household["registration_office"][:3]), "registered where the office is"
    (head,) = [m for m in household["members"] if m["relationship"] == "戶長"]
    assert head["registration_date"] == household["moved_in_date"]
    for member in household["members"]:
        assert member["date_of_birth"] <= member["registration_date"] <= AS_OF.isoformat()
        assert member["national_id"][1] == {"男": "1", "女": "2"}[member["sex"]]


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_nhi_dependants_live_in_the_household(national_id: str) -> None:
    members = {m["name"]: m for m in answer(national_id, "household.registration")["members"]}

    for dependant in answer(national_id, "nhi.enrolment")["dependants"]:
        member = members[dependant["name"]]
        assert member["national_id"] == dependant["national_id"]
        assert member["date_of_birth"] == dependant["date_of_birth"]


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_income_totals_add_up(national_id: str) -> None:
    income = answer(national_id, "tax.income")
    items = income["items"]

    assert (income["tax_year"], income["tax_year_roc"]) == (TAX_YEAR, 114)
    assert items
    for item in items:
        assert 0 <= item["tax_withheld"] <= item["gross_amount"]
        assert item["net_payment"] == item["gross_amount"] - item["tax_withheld"]
        assert tax_id_is_valid(item["payer_tax_id"]), item["payer_tax_id"]
    for total in income["totals_by_category"]:
        in_category = [i for i in items if i["category_code"] == total["category_code"]]
        assert total["item_count"] == len(in_category)
        for field in ("gross_amount", "tax_withheld", "net_payment"):
            assert total[field] == sum(i[field] for i in in_category)
    assert {t["category_code"] for t in income["totals_by_category"]} == {i["category_code"] for i in items}
    assert income["total_gross_amount"] == sum(i["gross_amount"] for i in items)
    assert income["total_tax_withheld"] == sum(i["tax_withheld"] for i in items)
    assert income["total_net_payment"] == income["total_gross_amount"] - income["total_tax_withheld"]


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_property_values_follow_area_value_and_share(national_id: str) -> None:
    holdings = answer(national_id, "tax.property")

    def rounded(value: Fraction) -> int:
        return math.floor(value + Fraction(1, 2))

    for land in holdings["lands"]:
        share = Fraction(land["ownership_share"])
        assert 0 < share <= 1
        expected = Fraction(str(land["area_m2"])) * land["announced_current_value_per_m2"] * share
        assert land["value_of_share"] == rounded(expected)
    for building in holdings["buildings"]:
        assert building["value_of_share"] == rounded(building["assessed_value"] * Fraction(building["ownership_share"]))
    for investment in holdings["investments"]:
        assert tax_id_is_valid(investment["company_tax_id"])
    assert holdings["total_value"] == (
        sum(land["value_of_share"] for land in holdings["lands"])
        + sum(building["value_of_share"] for building in holdings["buildings"])
        + sum(investment["capital_amount"] for investment in holdings["investments"])
    )
    for vehicle in holdings["vehicles"]:
        assert vehicle["year_of_manufacture"] <= AS_OF.year


@pytest.mark.parametrize("national_id", [n for n in SANDBOX_NATIONAL_IDS if n != CHAO])
def test_labour_history_is_consistent(national_id: str) -> None:
    labour = answer(national_id, "labor.insurance")
    enrolments = labour["enrolments"]

    previous_end = date.min
    for enrolment in enrolments:
        start = date.fromisoformat(enrolment["enrolment_date"])
        end = date.fromisoformat(enrolment["withdrawal_date"] or AS_OF.isoformat())
        assert previous_end < start <= end <= AS_OF, "periods are in order and do not overlap"
        previous_end = end
        history = enrolment["insured_salary_history"]
        assert history[0]["effective_date"] == enrolment["enrolment_date"]
        assert [h["effective_date"] for h in history] == sorted({h["effective_date"] for h in history})
        assert all(h["effective_date"] <= end.isoformat() for h in history)
    current = current_enrolment(national_id)
    grade = current["insured_salary_history"][-1]["insured_salary"]
    assert labour["current_insured_salary"] == grade
    assert grade in LABOUR_GRADES_2026 | PART_TIME_GRADES


@pytest.mark.parametrize(
    ("national_id", "years", "months"),
    [(WANG, 14, 10), (LIN, 13, 3), (CHEN, 25, 9), (CHANG, 2, 2), (HUANG, 29, 8)],
)
def test_total_insured_period_sums_the_enrolments(national_id: str, years: int, months: int) -> None:
    period = answer(national_id, "labor.insurance")["total_insured_period"]

    assert period == {"years": years, "months": months, "days": 0}


@pytest.mark.parametrize("national_id", SANDBOX_NATIONAL_IDS)
def test_nhi_premiums_follow_the_category(national_id: str) -> None:
    nhi = answer(national_id, "nhi.enrolment")
    insured = nhi["insured"]
    share = {"第一類": Fraction("0.3"), "第二類": Fraction("0.6")}.get(insured["category"])

    if share is not None:
        assert insured["insured_amount"] in NHI_GRADES_2026
        premium = math.floor(insured["insured_amount"] * Fraction("0.0517") * share + Fraction(1, 2))
        assert insured["monthly_premium"] == premium
        assert all(d["monthly_premium"] == premium for d in nhi["dependants"][:3])
    assert nhi["total_monthly_premium"] == insured["monthly_premium"] + sum(
        d["monthly_premium"] for d in nhi["dependants"]
    )


@pytest.mark.parametrize("national_id", [WANG, CHANG, HUANG])
def test_employees_are_nhi_category_1_at_their_current_employer(national_id: str) -> None:
    nhi = answer(national_id, "nhi.enrolment")
    current = current_enrolment(national_id)

    assert nhi["insured"]["category"] == "第一類"
    assert nhi["insured_unit"]["name"] == current["unit_name"]
    assert current["unit_type"] == "事業單位"
    assert current["employment_insurance"] is True
    assert nhi["insured"]["insured_amount"] >= current["insured_salary_history"][-1]["insured_salary"]
    salary_payers = {i["payer_name"] for i in answer(national_id, "tax.income")["items"] if i["category_code"] == "50"}
    assert current["unit_name"] in salary_payers


def test_persona_1_office_worker_in_daan_with_family_flat_and_car() -> None:
    household = answer(WANG, "household.registration")
    holdings = answer(WANG, "tax.property")
    income = answer(WANG, "tax.income")

    assert household["address"]["city"] == "臺北市"
    assert household["address"]["district"] == "大安區"
    assert household["registration_office"] == "臺北市大安區戶政事務所"
    assert sorted(m["relationship"] for m in household["members"]) == sorted(["戶長", "配偶", "長子"])
    assert {t["category_code"] for t in income["totals_by_category"]} >= {"50"}
    assert income["totals_by_category"][0]["category_code"] == "50"
    assert [b["use"] for b in holdings["buildings"]] == ["住家用"]
    assert holdings["buildings"][0]["address"].startswith("臺北市大安區")
    assert [v["vehicle_type"] for v in holdings["vehicles"]] == ["自用小客車"]
    employers = {e["unit_name"] for e in answer(WANG, "labor.insurance")["enrolments"]}
    assert len(employers) == 2


def test_persona_2_low_income_single_mother_is_category_5() -> None:
    household = answer(LIN, "household.registration")
    nhi = answer(LIN, "nhi.enrolment")
    holdings = answer(LIN, "tax.property")

    assert household["address"]["city"] == "臺中市"
    assert [m["relationship"] for m in household["members"]] == ["戶長", "長女"]
    (daughter,) = [m for m in household["members"] if m["relationship"] == "長女"]
    assert 15 <= AS_OF.year - int(daughter["date_of_birth"][:4]) <= 18, "of senior-high-school age"
    assert nhi["insured"]["category"] == "第五類"
    assert nhi["insured"]["monthly_premium"] == nhi["total_monthly_premium"] == 0
    assert nhi["insured_unit"]["name"].endswith("區公所")
    assert holdings["lands"] == holdings["buildings"] == holdings["vehicles"] == holdings["investments"] == []
    assert holdings["total_value"] == 0
    assert current_enrolment(LIN)["insured_salary_history"][-1]["insured_salary"] in PART_TIME_GRADES


def test_persona_3_union_member_is_category_2_with_land_buildings_and_two_vehicles() -> None:
    nhi = answer(CHEN, "nhi.enrolment")
    current = current_enrolment(CHEN)
    holdings = answer(CHEN, "tax.property")
    income = answer(CHEN, "tax.income")

    assert nhi["insured"]["category"] == "第二類"
    assert current["unit_type"] == "職業工會"
    assert current["unit_name"].endswith("職業工會")
    assert nhi["insured_unit"]["name"] == current["unit_name"]
    assert current["employment_insurance"] is False
    assert nhi["insured"]["insured_amount"] == current["insured_salary_history"][-1]["insured_salary"]
    assert answer(CHEN, "household.registration")["address"]["city"] == "新北市"
    assert holdings["lands"]
    assert len(holdings["buildings"]) >= 2
    assert len(holdings["vehicles"]) == 2
    codes = {i["category_code"] for i in income["items"]}
    assert "9A" in codes
    assert "50" not in codes, "self-employed: no salary"
    assert any(b["use"] == "營業用" for b in holdings["buildings"]) == ("51" in codes), "rent comes from the shop"


def test_persona_4_is_25_in_kaohsiung_first_job_in_2024_no_property() -> None:
    household = answer(CHANG, "household.registration")
    (me,) = [m for m in household["members"] if m["is_requester"]]
    born = date.fromisoformat(me["date_of_birth"])
    age = AS_OF.year - born.year - ((AS_OF.month, AS_OF.day) < (born.month, born.day))
    enrolments = answer(CHANG, "labor.insurance")["enrolments"]
    holdings = answer(CHANG, "tax.property")

    assert age == 25
    assert household["address"]["city"] == "高雄市"
    assert len(enrolments) == 1
    assert enrolments[0]["enrolment_date"].startswith("2024-")
    assert holdings["lands"] == holdings["buildings"] == holdings["vehicles"] == holdings["investments"] == []


def test_persona_6_has_no_labour_insurance_and_is_nhi_category_6() -> None:
    nhi = answer(CHAO, "nhi.enrolment")
    income = answer(CHAO, "tax.income")

    assert nhi["insured"]["category"] == "第六類"
    assert nhi["insured"]["insured_amount"] is None
    assert "50" not in {i["category_code"] for i in income["items"]}, "no employer, so no salary"


def test_sandbox_personas_have_valid_national_ids() -> None:
    assert len(SANDBOX_NATIONAL_IDS) == 6
    assert all(national_id_is_valid(n) for n in SANDBOX_NATIONAL_IDS)
    assert not national_id_is_valid("A123456788")


@pytest.mark.parametrize(("national_id", "dataset_id"), ANSWERS)
def test_formal_text_uses_tai_not_the_simplified_variant(national_id: str, dataset_id: str) -> None:
    texts = list(strings(answer(national_id, dataset_id)))

    assert not [text for text in texts if "台" in text]


@pytest.mark.parametrize(("national_id", "dataset_id"), ANSWERS)
def test_no_date_lies_after_the_record_date(national_id: str, dataset_id: str) -> None:
    iso_dates = [text for text in strings(answer(national_id, dataset_id)) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)]

    assert iso_dates
    assert max(iso_dates) == AS_OF.isoformat()
