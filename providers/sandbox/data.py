"""Synthetic records that the sandbox agencies serve for the sandbox personas (DESIGN.md §9).

**All of this is sample data.** Every person, national ID, address, household number, company,
統一編號, insurance number, plate number and amount below is invented for the sandbox; none of it
describes a real person or business. The shapes follow what Taiwan's agencies issue
(address forms, 稱謂, income category codes, insured-salary grades, NHI categories) so that
integrators who later connect real agencies meet no surprises.

The data is deterministic: no randomness and no clock. The tax year is fixed at 2025 (民國114年)
and every record is read "as of" :data:`AS_OF` (1 May 2026, when the 2025 income data opens for the
filing season). Derived figures (totals, values of ownership shares, premiums, insured periods) are
computed from the facts below, so they always agree with each other.

Persona 5 (黃建國) gets ordinary, valid data here: the faults the design gives that persona are
injected by the sandbox agency app, not by this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

from providers.schemas import DATASET_IDS

__all__ = [
    "AS_OF",
    "DATASET_IDS",
    "INCOME_CATEGORIES",
    "SANDBOX_NATIONAL_IDS",
    "TAX_YEAR",
    "dataset_for",
    "mask_national_id",
]

JSONObject = dict[str, Any]

#: The date every sandbox record is read on.
AS_OF = date(2026, 5, 1)

#: The income year of ``tax.income`` (民國114年).
TAX_YEAR = 2025

#: Income category codes of the 各類所得 data and their names.
INCOME_CATEGORIES: Mapping[str, str] = {
    "50": "薪資所得",
    "5A": "利息所得",
    "51": "租賃所得",
    "53": "權利金所得",
    "54": "股利或盈餘所得",
    "9A": "執行業務所得",
    "9B": "稿費等所得",
    "91": "競技競賽及機會中獎獎金",
    "92": "其他所得",
}

# National Health Insurance premium rate since 2021, and the insured person's share of it by
# category (全民健康保險法 §27); 第五類 is paid in full by the government, 第六類 is a flat amount.
_NHI_RATE = Fraction("0.0517")
_NHI_INSURED_SHARE = {"第一類": Fraction("0.30"), "第二類": Fraction("0.60"), "第三類": Fraction("0.30")}
_NHI_FLAT_PREMIUM = {"第四類": 0, "第五類": 0, "第六類": 826}
# Dependants beyond the third are insured without premium (全民健康保險法 §18).
_NHI_PAYING_DEPENDANTS = 3


# ---------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------

# The parts of an address in the order 戶政 writes them; each part keeps its own suffix.
_ADDRESS = re.compile(
    r"(?P<city>\S{2}[市縣])(?P<district>\S+?區|\S+?[鄉鎮市])(?P<village>\S+?[里村])(?P<neighbourhood>[1-9][0-9]*鄰)"
    r"(?P<street>\S+?(?:大道|路|街))?(?P<section>[一二三四五六七八九十]+段)?(?P<lane>[1-9][0-9]*巷)?"
    r"(?P<alley>[1-9][0-9]*弄)?(?P<number>[1-9][0-9]*(?:之[1-9][0-9]*)?號)(?P<floor>(?:地下)?[1-9][0-9]*樓(?:之[1-9][0-9]*)?)?"
)


@dataclass(frozen=True)
class _Address:
    """A registered address (戶籍地址) such as 臺北市大安區龍門里12鄰復興南路二段100號5樓."""

    full: str

    def parts(self) -> dict[str, str]:
        """Return the parts present (city, district, village, neighbourhood, street, ..., floor)."""
        match = _ADDRESS.fullmatch(self.full)
        if match is None:
            raise ValueError(f"not an address in 戶政 form: {self.full}")
        return {name: part for name, part in match.groupdict().items() if part}

    @property
    def door_plate(self) -> str:
        """Return the address without 里 and 鄰, as on the house-tax register."""
        return "".join(part for name, part in self.parts().items() if name not in ("village", "neighbourhood"))


@dataclass(frozen=True)
class _Person:
    name: str
    national_id: str
    sex: str
    born: date


@dataclass(frozen=True)
class _Member:
    person: _Person
    relationship: str
    registered: date
    event: str


@dataclass(frozen=True)
class _Household:
    number: str
    address: _Address
    moved_in: date
    office: str
    members: tuple[_Member, ...]


@dataclass(frozen=True)
class _Payer:
    name: str
    tax_id: str


@dataclass(frozen=True)
class _Income:
    payer: _Payer
    category: str
    gross: int
    withheld: int


@dataclass(frozen=True)
class _Land:
    city: str
    district: str
    section: str
    lot: str
    area_m2: str
    share: str
    value_per_m2: int


@dataclass(frozen=True)
class _Building:
    tax_registry_number: str
    address: _Address
    area_m2: str
    share: str
    assessed_value: int
    use: str


@dataclass(frozen=True)
class _Vehicle:
    plate: str
    kind: str
    make: str
    year: int
    engine_cc: int


@dataclass(frozen=True)
class _Investment:
    company: _Payer
    shares: int


@dataclass(frozen=True)
class _Enrolment:
    unit: str
    unit_type: str
    insurance_number: str
    enrolled: date
    salaries: tuple[tuple[date, int], ...]
    withdrawn: date | None = None
    employment_insurance: bool = True


@dataclass(frozen=True)
class _Dependant:
    person: _Person
    relationship: str
    enrolled: date


@dataclass(frozen=True)
class _HealthInsurance:
    category: str
    description: str
    unit: str
    unit_code: str
    enrolled: date
    insured_amount: int | None
    dependants: tuple[_Dependant, ...] = ()


@dataclass(frozen=True)
class _Persona:
    person: _Person
    household: _Household
    incomes: tuple[_Income, ...]
    health: _HealthInsurance
    labour: tuple[_Enrolment, ...] = ()
    lands: tuple[_Land, ...] = ()
    buildings: tuple[_Building, ...] = ()
    vehicles: tuple[_Vehicle, ...] = ()
    investments: tuple[_Investment, ...] = ()


_BEICHEN_BANK = _Payer("臺灣北辰商業銀行股份有限公司", "86319027")
_EMPLOYEE = "公民營事業、機構之受僱者"


def _persona_1() -> _Persona:
    """王小明: office worker in Taipei (Da'an), spouse and son at home, apartment and car."""
    me = _Person("王小明", "A123456789", "男", date(1988, 5, 20))
    spouse = _Person("李淑芬", "A223518704", "女", date(1990, 2, 14))
    son = _Person("王宥翔", "A129033182", "男", date(2017, 8, 9))
    home = _Address("臺北市大安區龍門里12鄰復興南路二段151巷8號5樓")
    employer = _Payer("信義雲端科技股份有限公司", "28453165")
    investee = _Payer("欣聯光電股份有限公司", "53028718")
    return _Persona(
        person=me,
        household=_Household(
            number="A0382615",
            address=home,
            moved_in=date(2016, 3, 18),
            office="臺北市大安區戶政事務所",
            members=(
                _Member(me, "戶長", date(2016, 3, 18), "遷入登記"),
                _Member(spouse, "配偶", date(2016, 3, 18), "遷入登記"),
                _Member(son, "長子", date(2017, 8, 30), "出生登記"),
            ),
        ),
        incomes=(
            _Income(employer, "50", 875_000, 16_800),
            _Income(_BEICHEN_BANK, "5A", 3_215, 0),
            _Income(investee, "54", 6_400, 0),
        ),
        # The flat and its share of the plot under the building.
        lands=(_Land("臺北市", "大安區", "大安段三小段", "0245-0000", "1024.00", "186/10000", 592_000),),
        buildings=(_Building("010230456781", home, "112.35", "1/1", 682_400, "住家用"),),
        vehicles=(_Vehicle("BKR-8263", "自用小客車", "HONDA", 2021, 1_498),),
        investments=(_Investment(investee, 2_000),),
        labour=(
            _Enrolment(
                unit="宏遠電腦股份有限公司",
                unit_type="事業單位",
                insurance_number="035184261",
                enrolled=date(2011, 7, 1),
                withdrawn=date(2018, 9, 30),
                salaries=(
                    (date(2011, 7, 1), 31_800),
                    (date(2013, 1, 1), 36_300),
                    (date(2015, 1, 1), 40_100),
                    (date(2017, 1, 1), 43_900),
                ),
            ),
            _Enrolment(
                unit=employer.name,
                unit_type="事業單位",
                insurance_number="041276539",
                enrolled=date(2018, 10, 1),
                # The salary is above the highest grade.
                salaries=((date(2018, 10, 1), 45_800),),
            ),
        ),
        health=_HealthInsurance(
            category="第一類",
            description=_EMPLOYEE,
            unit=employer.name,
            unit_code="281537460",
            enrolled=date(2018, 10, 1),
            insured_amount=63_800,
            # The spouse keeps house and is insured as his dependant.
            dependants=(
                _Dependant(spouse, "配偶", date(2018, 10, 1)),
                _Dependant(son, "子", date(2018, 10, 1)),
            ),
        ),
    )


def _persona_2() -> _Persona:
    """林美華: single mother in Taichung, low-income household, part-time work, no property."""
    me = _Person("林美華", "B223456782", "女", date(1983, 11, 2))
    daughter = _Person("林芷晴", "B226709155", "女", date(2009, 6, 15))
    employer = _Payer("青禾餐飲有限公司", "24816530")
    return _Persona(
        person=me,
        household=_Household(
            number="B0517342",
            address=_Address("臺中市北區賴村里7鄰太原路二段38巷5弄9號2樓"),
            moved_in=date(2019, 8, 1),
            office="臺中市北區戶政事務所",
            members=(
                _Member(me, "戶長", date(2019, 8, 1), "遷入登記"),
                _Member(daughter, "長女", date(2019, 8, 1), "遷入登記"),
            ),
        ),
        incomes=(_Income(employer, "50", 234_000, 0),),
        labour=(
            _Enrolment(
                unit="臺中精密機械股份有限公司",
                unit_type="事業單位",
                insurance_number="052318764",
                enrolled=date(2002, 8, 1),
                withdrawn=date(2009, 3, 31),
                salaries=((date(2002, 8, 1), 21_900), (date(2007, 7, 1), 24_000)),
            ),
            # Part-time (部分工時) work is insured at the grades below the monthly minimum wage.
            _Enrolment(
                unit="樂活便利商店有限公司",
                unit_type="事業單位",
                insurance_number="063124578",
                enrolled=date(2019, 9, 1),
                withdrawn=date(2022, 12, 31),
                salaries=((date(2019, 9, 1), 19_047),),
            ),
            _Enrolment(
                unit=employer.name,
                unit_type="事業單位",
                insurance_number="067452183",
                enrolled=date(2023, 2, 1),
                salaries=((date(2023, 2, 1), 20_008),),
            ),
        ),
        # Every member of a low-income household is insured in their own right in 第五類 through the
        # district office, so the daughter is not her dependant.
        health=_HealthInsurance(
            category="第五類",
            description="低收入戶成員",
            unit="臺中市北區區公所",
            unit_code="660700012",
            enrolled=date(2020, 3, 1),
            insured_amount=None,
        ),
    )


def _persona_3() -> _Persona:
    """陳志強: self-employed electrician in New Taipei, insured through an occupational union."""
    me = _Person("陳志強", "F135792464", "男", date(1974, 9, 30))
    spouse = _Person("吳佩君", "F224781251", "女", date(1976, 12, 5))
    daughter = _Person("陳怡安", "F226059314", "女", date(2006, 3, 22))
    son = _Person("陳冠宇", "F129842168", "男", date(2010, 7, 18))
    mother = _Person("陳林秀英", "F203175520", "女", date(1949, 1, 25))
    home = _Address("新北市新莊區中平里15鄰中平路135巷7號")
    shop = _Address("新北市新莊區中港里3鄰中正路512號1樓")
    union = "新北市水電工程職業工會"
    return _Persona(
        person=me,
        household=_Household(
            number="F0294857",
            address=home,
            moved_in=date(2002, 10, 15),
            office="新北市新莊戶政事務所",
            members=(
                _Member(me, "戶長", date(2002, 10, 15), "遷入登記"),
                _Member(spouse, "配偶", date(2004, 5, 1), "結婚登記"),
                _Member(daughter, "長女", date(2006, 4, 10), "出生登記"),
                _Member(son, "長子", date(2010, 8, 2), "出生登記"),
                _Member(mother, "母", date(2002, 10, 15), "遷入登記"),
            ),
        ),
        incomes=(
            _Income(_Payer("宏達營造有限公司", "82135744"), "9A", 386_000, 38_600),
            _Income(_Payer("盛豐室內裝修工程有限公司", "54602388"), "9A", 248_500, 24_850),
            # The tenant of his shop.
            _Income(_Payer("禾豐烘焙坊有限公司", "43819255"), "51", 300_000, 30_000),
            _Income(_BEICHEN_BANK, "5A", 1_842, 0),
        ),
        lands=(
            _Land("新北市", "新莊區", "中平段", "0321-0000", "98.52", "1/1", 168_000),
            _Land("新北市", "新莊區", "中港段", "0127-0002", "165.30", "1/4", 212_000),
            # Farmland inherited with two siblings.
            _Land("新北市", "三峽區", "溪東段", "0512-0003", "1205.60", "1/3", 6_800),
        ),
        buildings=(
            _Building("220150382716", home, "286.40", "1/1", 1_124_600, "住家用"),
            _Building("220160417295", shop, "98.20", "1/1", 842_300, "營業用"),
        ),
        vehicles=(
            _Vehicle("BLR-5521", "自用小客車", "TOYOTA", 2019, 1_798),
            _Vehicle("RBQ-7610", "自用小貨車", "MITSUBISHI", 2017, 2_351),
        ),
        labour=(
            _Enrolment(
                unit="永興水電工程行",
                unit_type="事業單位",
                insurance_number="021845736",
                enrolled=date(2000, 8, 1),
                withdrawn=date(2014, 2, 28),
                salaries=((date(2000, 8, 1), 21_900), (date(2006, 1, 1), 27_600), (date(2010, 1, 1), 31_800)),
            ),
            _Enrolment(
                unit=union,
                unit_type="職業工會",
                insurance_number="021973548",
                enrolled=date(2014, 3, 1),
                salaries=((date(2014, 3, 1), 36_300),),
                # Union members have no employment insurance (就業保險法 §5).
                employment_insurance=False,
            ),
        ),
        health=_HealthInsurance(
            category="第二類",
            description="無一定雇主或自營作業而參加職業工會者",
            unit=union,
            unit_code="210394857",
            enrolled=date(2014, 3, 1),
            insured_amount=36_300,
            # The spouse is employed and insured through her own employer.
            dependants=(
                _Dependant(daughter, "女", date(2014, 3, 1)),
                _Dependant(son, "子", date(2014, 3, 1)),
                _Dependant(mother, "母", date(2014, 3, 1)),
            ),
        ),
    )


def _persona_4() -> _Persona:
    """張雅婷: 25, in her parents' household in Kaohsiung, first job since March 2024, no property."""
    me = _Person("張雅婷", "E224680132", "女", date(2000, 11, 3))
    father = _Person("張文雄", "E108731605", "男", date(1969, 4, 12))
    mother = _Person("蔡美玲", "E221964748", "女", date(1972, 8, 30))
    brother = _Person("張家豪", "E124750388", "男", date(2003, 2, 27))
    employer = _Payer("高雄港灣物流股份有限公司", "29073656")
    return _Persona(
        person=me,
        household=_Household(
            number="E0468213",
            address=_Address("高雄市前鎮區草衙里9鄰翠亨北路235巷16號4樓"),
            moved_in=date(1998, 6, 20),
            office="高雄市前鎮區戶政事務所",
            members=(
                _Member(father, "戶長", date(1998, 6, 20), "遷入登記"),
                _Member(mother, "配偶", date(1998, 6, 20), "遷入登記"),
                _Member(me, "長女", date(2000, 11, 20), "出生登記"),
                _Member(brother, "長子", date(2003, 3, 12), "出生登記"),
            ),
        ),
        incomes=(
            _Income(employer, "50", 503_250, 0),
            _Income(_BEICHEN_BANK, "5A", 126, 0),
        ),
        labour=(
            _Enrolment(
                unit=employer.name,
                unit_type="事業單位",
                insurance_number="073265184",
                enrolled=date(2024, 3, 1),
                salaries=((date(2024, 3, 1), 36_300), (date(2025, 3, 1), 38_200)),
            ),
        ),
        health=_HealthInsurance(
            category="第一類",
            description=_EMPLOYEE,
            unit=employer.name,
            unit_code="730521846",
            enrolled=date(2024, 3, 1),
            insured_amount=38_200,
        ),
    )


def _persona_5() -> _Persona:
    """黃建國: factory engineer in Taoyuan (Zhongli) with wife, daughter and mother at home."""
    me = _Person("黃建國", "H120000004", "男", date(1971, 7, 8))
    spouse = _Person("鄭雅惠", "H223807169", "女", date(1973, 3, 19))
    daughter = _Person("黃詩涵", "H229518438", "女", date(2001, 12, 1))
    mother = _Person("黃王月娥", "H204736298", "女", date(1945, 10, 5))
    home = _Address("桃園市中壢區興南里10鄰中華路二段418巷22弄6號3樓")
    employer = _Payer("中壢光電材料股份有限公司", "85324613")
    moved_in = date(2008, 12, 5)
    return _Persona(
        person=me,
        household=_Household(
            number="H0731590",
            address=home,
            moved_in=moved_in,
            office="桃園市中壢戶政事務所",
            members=(
                _Member(me, "戶長", moved_in, "遷入登記"),
                _Member(spouse, "配偶", moved_in, "遷入登記"),
                _Member(daughter, "長女", moved_in, "遷入登記"),
                _Member(mother, "母", moved_in, "遷入登記"),
            ),
        ),
        incomes=(
            _Income(employer, "50", 742_000, 14_200),
            _Income(_BEICHEN_BANK, "5A", 4_870, 0),
        ),
        lands=(_Land("桃園市", "中壢區", "興南段", "1326-0000", "1412.00", "215/10000", 48_500),),
        buildings=(_Building("180320561942", home, "104.80", "1/1", 586_200, "住家用"),),
        vehicles=(
            _Vehicle("BDA-8812", "自用小客車", "NISSAN", 2016, 1_598),
            _Vehicle("MLK-6235", "普通重型機車", "SYM", 2018, 124),
        ),
        labour=(
            _Enrolment(
                unit="桃園精密工業股份有限公司",
                unit_type="事業單位",
                insurance_number="044718253",
                enrolled=date(1996, 9, 1),
                withdrawn=date(2007, 6, 30),
                salaries=((date(1996, 9, 1), 21_900), (date(2001, 1, 1), 28_800), (date(2005, 1, 1), 33_300)),
            ),
            _Enrolment(
                unit=employer.name,
                unit_type="事業單位",
                insurance_number="046135827",
                enrolled=date(2007, 7, 1),
                salaries=((date(2007, 7, 1), 38_200), (date(2011, 1, 1), 43_900), (date(2015, 1, 1), 45_800)),
            ),
        ),
        health=_HealthInsurance(
            category="第一類",
            description=_EMPLOYEE,
            unit=employer.name,
            unit_code="460358217",
            enrolled=date(2007, 7, 1),
            insured_amount=53_000,
            # The daughter works and is insured through her own employer.
            dependants=(
                _Dependant(spouse, "配偶", date(2007, 7, 1)),
                _Dependant(mother, "母", moved_in),
            ),
        ),
    )


def _persona_6() -> _Persona:
    """趙曉雯: freelance translator living alone in Taichung; never insured under labour insurance."""
    me = _Person("趙曉雯", "L200000002", "女", date(1993, 4, 17))
    return _Persona(
        person=me,
        household=_Household(
            number="B1042378",
            address=_Address("臺中市西屯區惠來里18鄰市政北二路282號9樓之3"),
            moved_in=date(2021, 9, 10),
            office="臺中市西屯區戶政事務所",
            members=(_Member(me, "戶長", date(2021, 9, 10), "遷入登記"),),
        ),
        incomes=(
            _Income(_Payer("晨光文化事業股份有限公司", "50194874"), "9B", 186_000, 18_600),
            _Income(_Payer("遠山出版有限公司", "24631581"), "9B", 94_500, 9_450),
            _Income(_BEICHEN_BANK, "5A", 862, 0),
        ),
        vehicles=(_Vehicle("NHP-2051", "普通重型機車", "KYMCO", 2020, 124),),
        # A freelancer outside any occupational union is insured with her district office.
        health=_HealthInsurance(
            category="第六類",
            description="地區人口（家戶戶長）",
            unit="臺中市西屯區公所",
            unit_code="660800027",
            enrolled=date(2021, 9, 10),
            insured_amount=None,
        ),
    )


_PERSONAS: Mapping[str, _Persona] = {
    persona.person.national_id: persona
    for persona in (_persona_1(), _persona_2(), _persona_3(), _persona_4(), _persona_5(), _persona_6())
}

#: National IDs of the sandbox personas 1-6, in persona order.
SANDBOX_NATIONAL_IDS: tuple[str, ...] = tuple(_PERSONAS)


# ---------------------------------------------------------------------------------------------
# The documents
# ---------------------------------------------------------------------------------------------


def mask_national_id(national_id: str) -> str:
    """Mask a national ID for anyone but its owner: ``A123456789`` -> ``A12****789``."""
    return f"{national_id[:3]}****{national_id[-3:]}"


def _round(value: Fraction) -> int:
    """Round a non-negative amount half up to a whole dollar (Python's round() is half-even)."""
    return math.floor(value + Fraction(1, 2))


def _household_registration(persona: _Persona) -> JSONObject:
    household = persona.household
    members: list[JSONObject] = []
    for member in household.members:
        is_requester = member.person == persona.person
        members.append(
            {
                "name": member.person.name,
                "national_id": (
                    member.person.national_id if is_requester else mask_national_id(member.person.national_id)
                ),
                "is_requester": is_requester,
                "sex": member.person.sex,
                "date_of_birth": member.person.born.isoformat(),
                "relationship": member.relationship,
                "registration_date": member.registered.isoformat(),
                "registration_event": member.event,
            }
        )
    return {
        "as_of": AS_OF.isoformat(),
        "household_number": household.number,
        "address": {"full": household.address.full, **household.address.parts()},
        "moved_in_date": household.moved_in.isoformat(),
        "registration_office": household.office,
        "members": members,
    }


def _subject(person: _Person) -> JSONObject:
    return {"name": person.name, "national_id": person.national_id}


def _tax_income(persona: _Persona) -> JSONObject:
    items: list[JSONObject] = [
        {
            "payer_name": income.payer.name,
            "payer_tax_id": income.payer.tax_id,
            "category_code": income.category,
            "category_name": INCOME_CATEGORIES[income.category],
            "gross_amount": income.gross,
            "tax_withheld": income.withheld,
            "net_payment": income.gross - income.withheld,
        }
        for income in persona.incomes
    ]
    totals: list[JSONObject] = []
    for code, name in INCOME_CATEGORIES.items():
        in_category = [item for item in items if item["category_code"] == code]
        if in_category:
            totals.append(
                {
                    "category_code": code,
                    "category_name": name,
                    "item_count": len(in_category),
                    "gross_amount": sum(item["gross_amount"] for item in in_category),
                    "tax_withheld": sum(item["tax_withheld"] for item in in_category),
                    "net_payment": sum(item["net_payment"] for item in in_category),
                }
            )
    return {
        "as_of": AS_OF.isoformat(),
        "tax_year": TAX_YEAR,
        "tax_year_roc": TAX_YEAR - 1911,
        "taxpayer": _subject(persona.person),
        "items": items,
        "totals_by_category": totals,
        "total_gross_amount": sum(item["gross_amount"] for item in items),
        "total_tax_withheld": sum(item["tax_withheld"] for item in items),
        "total_net_payment": sum(item["net_payment"] for item in items),
    }


def _tax_property(persona: _Persona) -> JSONObject:
    lands: list[JSONObject] = [
        {
            "city": land.city,
            "district": land.district,
            "section": land.section,
            "lot_number": land.lot,
            "area_m2": float(land.area_m2),
            "ownership_share": land.share,
            "announced_current_value_per_m2": land.value_per_m2,
            "value_of_share": _round(Fraction(land.area_m2) * land.value_per_m2 * Fraction(land.share)),
        }
        for land in persona.lands
    ]
    buildings: list[JSONObject] = [
        {
            "tax_registry_number": building.tax_registry_number,
            "address": building.address.door_plate,
            "area_m2": float(building.area_m2),
            "ownership_share": building.share,
            "assessed_value": building.assessed_value,
            "value_of_share": _round(building.assessed_value * Fraction(building.share)),
            "use": building.use,
        }
        for building in persona.buildings
    ]
    vehicles: list[JSONObject] = [
        {
            "plate_number": vehicle.plate,
            "vehicle_type": vehicle.kind,
            "make": vehicle.make,
            "year_of_manufacture": vehicle.year,
            "engine_cc": vehicle.engine_cc,
        }
        for vehicle in persona.vehicles
    ]
    investments: list[JSONObject] = [
        {
            "company_name": investment.company.name,
            "company_tax_id": investment.company.tax_id,
            "shares": investment.shares,
            # Listed shares have a par value of NT$10.
            "capital_amount": investment.shares * 10,
        }
        for investment in persona.investments
    ]
    total = (
        sum(land["value_of_share"] for land in lands)
        + sum(building["value_of_share"] for building in buildings)
        + sum(investment["capital_amount"] for investment in investments)
    )
    return {
        "as_of": AS_OF.isoformat(),
        "owner": _subject(persona.person),
        "lands": lands,
        "buildings": buildings,
        "vehicles": vehicles,
        "investments": investments,
        "total_value": total,
    }


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    next_month = date(year + month // 12, month % 12 + 1, 1)
    return date(year, month, min(day.day, (next_month - timedelta(days=1)).day))


def _period(first_day: date, last_day: date) -> tuple[int, int]:
    """Return the whole months and the days left over from ``first_day`` to ``last_day`` inclusive."""
    end = last_day + timedelta(days=1)
    months = (end.year - first_day.year) * 12 + end.month - first_day.month
    if _add_months(first_day, months) > end:
        months -= 1
    return months, (end - _add_months(first_day, months)).days


def _labor_insurance(persona: _Persona) -> JSONObject | None:
    if not persona.labour:
        return None
    months = days = 0
    for enrolment in persona.labour:
        # A current enrolment is counted up to the day before the record was read.
        last_day = enrolment.withdrawn or AS_OF - timedelta(days=1)
        period_months, period_days = _period(enrolment.enrolled, last_day)
        months += period_months
        days += period_days
    # Periods are summed the way 年資 is usually stated: 30 days to a month, 12 months to a year.
    months, days = months + days // 30, days % 30
    current = [enrolment for enrolment in persona.labour if enrolment.withdrawn is None]
    return {
        "as_of": AS_OF.isoformat(),
        "insured": _subject(persona.person),
        "enrolments": [
            {
                "unit_name": enrolment.unit,
                "unit_type": enrolment.unit_type,
                "insurance_number": enrolment.insurance_number,
                "enrolment_date": enrolment.enrolled.isoformat(),
                "withdrawal_date": enrolment.withdrawn.isoformat() if enrolment.withdrawn else None,
                "employment_insurance": enrolment.employment_insurance,
                "insured_salary_history": [
                    {"effective_date": effective.isoformat(), "insured_salary": salary}
                    for effective, salary in enrolment.salaries
                ],
            }
            for enrolment in persona.labour
        ],
        "current_insured_salary": current[-1].salaries[-1][1] if current else None,
        "total_insured_period": {"years": months // 12, "months": months % 12, "days": days},
    }


def _nhi_premium(health: _HealthInsurance) -> int:
    """Return the monthly premium the insured pays per person (self or dependant)."""
    if health.category in _NHI_FLAT_PREMIUM:
        return _NHI_FLAT_PREMIUM[health.category]
    assert health.insured_amount is not None, "categories 1-3 have an insured amount"
    return _round(health.insured_amount * _NHI_RATE * _NHI_INSURED_SHARE[health.category])


def _nhi_enrolment(persona: _Persona) -> JSONObject:
    health = persona.health
    premium = _nhi_premium(health)
    dependants: list[JSONObject] = [
        {
            "name": dependant.person.name,
            "national_id": mask_national_id(dependant.person.national_id),
            "relationship": dependant.relationship,
            "date_of_birth": dependant.person.born.isoformat(),
            "enrolment_date": dependant.enrolled.isoformat(),
            "monthly_premium": premium if position < _NHI_PAYING_DEPENDANTS else 0,
        }
        for position, dependant in enumerate(health.dependants)
    ]
    return {
        "as_of": AS_OF.isoformat(),
        "insured": {
            **_subject(persona.person),
            "date_of_birth": persona.person.born.isoformat(),
            "category": health.category,
            "category_description": health.description,
            "enrolment_date": health.enrolled.isoformat(),
            "insured_amount": health.insured_amount,
            "monthly_premium": premium,
        },
        "insured_unit": {"name": health.unit, "unit_code": health.unit_code},
        "dependants": dependants,
        "total_monthly_premium": premium + sum(d["monthly_premium"] for d in dependants),
    }


_BUILDERS: Mapping[str, Callable[[_Persona], JSONObject | None]] = {
    "household.registration": _household_registration,
    "tax.income": _tax_income,
    "tax.property": _tax_property,
    "labor.insurance": _labor_insurance,
    "nhi.enrolment": _nhi_enrolment,
}


def dataset_for(national_id: str, dataset_id: str) -> dict[str, Any] | None:
    """Return the ``data`` object an agency serves for this person and dataset.

    Returns ``None`` when the agency holds no record (the protocol's ``no_record``): for an ID that
    is not a sandbox persona, and for persona 6's labour insurance. Each call builds a new object,
    so callers may change what they get.

    :raises KeyError: if ``dataset_id`` is not one of :data:`DATASET_IDS`.
    """
    if dataset_id not in _BUILDERS:
        raise KeyError(f"unknown dataset {dataset_id!r}")
    persona = _PERSONAS.get(national_id)
    if persona is None:
        return None
    return _BUILDERS[dataset_id](persona)
