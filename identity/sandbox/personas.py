"""The six sandbox personas of DESIGN §9, their staff roles, cards and phones.

Seeding is idempotent: accounts, roles, cards and phones that exist are kept, so running
`mydata sandbox seed` twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from identity import contacts, nhi, services
from identity.sandbox.phones import SandboxPhones
from identity.sandbox.pki import SandboxPki
from mydata.clock import Clock
from mydata.db import UnitOfWork

EID_PIN = "123456"
NHI_PASSWORD = "Sandbox-2026"  # noqa: S105  # the published sandbox password (DESIGN §9)


@dataclass(frozen=True)
class Persona:
    """A made-up person of the sandbox."""

    number: int
    national_id: str
    name: str
    birth_date: dt.date
    nhi_card: str
    mobile_id: bool
    roles: tuple[tuple[str, str], ...] = ()
    # An example address (RFC 2606 domain), already confirmed: its mail shows at /sandbox/outbox.
    # Named after the persona, never after the national ID, which no email may carry.
    email: str = ""


PERSONAS = (
    # Office worker in Taipei with a spouse and a son: born 1985.
    Persona(
        1,
        "A123456789",
        "王小明",
        dt.date(1985, 3, 14),
        "000011110001",
        True,
        (("rp_developer", "sandbox-bank"),),
        "wang.xiaoming@example.com",
    ),
    # Single mother in Taichung; her daughter is in senior high school.
    Persona(2, "B223456782", "林美華", dt.date(1982, 7, 21), "000011110002", True, email="lin.meihua@example.com"),
    # Self-employed in New Taipei, with land, buildings and two vehicles.
    Persona(
        3,
        "F135792464",
        "陳志強",
        dt.date(1976, 11, 2),
        "000011110003",
        True,
        (("agency_officer", "moi-household"),),
        "chen.zhiqiang@example.com",
    ),
    # 25 years old in Kaohsiung (2026), first job since 2024.
    Persona(
        4,
        "E224680132",
        "張雅婷",
        dt.date(2001, 5, 18),
        "000011110004",
        True,
        (("counter", "sandbox-bank"),),
        "zhang.yating@example.com",
    ),
    # The fault persona (agency faults are the sandbox agencies' business).
    Persona(5, "H120000004", "黃建國", dt.date(1968, 9, 9), "000011110005", False, email="huang.jianguo@example.com"),
    # No labour insurance record, no mobile ID.
    Persona(
        6,
        "L200000002",
        "趙曉雯",
        dt.date(1990, 1, 30),
        "000011110006",
        False,
        (("operator", "platform"),),
        "zhao.xiaowen@example.com",
    ),
)


def seed_personas(uow: UnitOfWork, folder: Path, clock: Clock) -> None:
    """Create the personas with their roles, NHI cards, eID cards (and the CA), phones and confirmed addresses."""
    now = clock.now()
    pki = SandboxPki(folder / "eid")
    phones = SandboxPhones(folder / "mobile")
    issuer = pki.ensure_authorities(now)
    pki.ensure_crl(issuer, now)
    for persona in PERSONAS:
        citizen = services.register_citizen(uow, persona.national_id, persona.name, now, persona.birth_date)
        for role, organisation in persona.roles:
            services.grant_role(uow, citizen.id, role, organisation, now)
        nhi.register_card(uow, citizen.id, persona.nhi_card, NHI_PASSWORD, now)
        pki.ensure_card(issuer, persona.national_id, persona.name, EID_PIN, now)
        if persona.mobile_id:
            phones.enrol(uow, citizen.id, persona.national_id, now)
        if persona.email:
            contacts.set_confirmed_address(uow, citizen.id, persona.email, now)
    uow.commit()


def demo_notes() -> list[str]:
    """Return the lines `mydata demo` prints about logging in as a persona (``{base}`` is the URL)."""
    lines = [
        "",
        "Sandbox personas (eID PIN " + EID_PIN + ", NHI registration password " + NHI_PASSWORD + "):",
    ]
    for p in PERSONAS:
        mobile = "mobile ID" if p.mobile_id else "no mobile ID"
        roles = ", ".join(f"{role} of {organisation}" for role, organisation in p.roles)
        lines.append(
            f"  {p.number}. {p.name}  {p.national_id}  NHI card {p.nhi_card}  {mobile}"
            + (f"  ({roles})" if roles else "")
        )
    lines += [
        "Log in at {base}/login ; approve mobile ID logins at {base}/sandbox/mobile-id",
    ]
    return lines
