"""Accounts: citizens, their staff roles and their enrolled phones.

The authentication methods live in their own modules (identity.eid, identity.mobile, identity.nhi)
and sessions in identity.sessions.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, bindparam, select, text

from identity import national_id as nid
from identity.interfaces import InvalidNationalId
from identity.models import ROLES, Citizen, MobileDevice, StaffRole
from mydata.db import UnitOfWork


def find_citizen(uow: UnitOfWork, national_id: str) -> Citizen | None:
    """Return the account of *national_id*, if there is one."""
    return uow.session.scalars(select(Citizen).where(Citizen.national_id == nid.normalize(national_id))).first()


def get_citizen(uow: UnitOfWork, citizen_id: str) -> Citizen | None:
    """Return the account with id *citizen_id*, if there is one."""
    return uow.session.get(Citizen, citizen_id)


@dataclass(frozen=True)
class Account:
    """Who an account is, as a login needs it: its id, national ID number and name."""

    id: str
    national_id: str
    name: str


_CITIZEN = cast(Table, Citizen.__table__)
# Built once: every login reads the account (decision 0012).
_ACCOUNT_BY_NATIONAL_ID = select(_CITIZEN.c.id, _CITIZEN.c.national_id, _CITIZEN.c.name).where(
    _CITIZEN.c.national_id == bindparam("national_id")
)
_ACCOUNT_BY_ID = select(_CITIZEN.c.id, _CITIZEN.c.national_id, _CITIZEN.c.name).where(_CITIZEN.c.id == bindparam("id"))


def account_for_login(uow: UnitOfWork, national_id: str, name: str, now: dt.datetime) -> Account:
    """Return the account a login proves, creating it on the first login (left in *uow*, not committed)."""
    national_id = nid.normalize(national_id)
    if not nid.checksum_ok(national_id):
        raise InvalidNationalId()
    found = uow.run(_ACCOUNT_BY_NATIONAL_ID, {"national_id": national_id}).first()
    if found is not None:
        return Account(found.id, found.national_id, found.name)
    citizen = register_citizen(uow, national_id, name, now, commit=False)
    uow.session.flush()  # the login session about to be written refers to it
    return Account(citizen.id, citizen.national_id, citizen.name)


def account(uow: UnitOfWork, citizen_id: str) -> Account | None:
    """Return the account with id *citizen_id*, if there is one."""
    found = uow.run(_ACCOUNT_BY_ID, {"id": citizen_id}).first()
    return None if found is None else Account(found.id, found.national_id, found.name)


def register_citizen(
    uow: UnitOfWork,
    national_id: str,
    name: str,
    now: dt.datetime,
    birth_date: dt.date | None = None,
    *,
    commit: bool = True,
) -> Citizen:
    """Return the account of *national_id*, creating it if needed; raise on a bad check digit.

    With ``commit=False`` a new account is left in *uow*, for a caller that commits more with it.
    """
    national_id = nid.normalize(national_id)
    if not nid.checksum_ok(national_id):
        raise InvalidNationalId()
    citizen = find_citizen(uow, national_id)
    if citizen is None:
        citizen = Citizen(
            id=str(uuid.uuid4()), national_id=national_id, name=name, birth_date=birth_date, created_at=now
        )
        uow.session.add(citizen)
        if commit:
            uow.commit()
    return citizen


def grant_role(uow: UnitOfWork, citizen_id: str, role: str, organisation_id: str, now: dt.datetime) -> StaffRole:
    """Give an account a staff role for an organisation (idempotent)."""
    if role not in ROLES:
        raise ValueError(f"unknown staff role {role!r}; expected one of {', '.join(ROLES)}")
    granted = uow.session.get(StaffRole, (citizen_id, role, organisation_id))
    if granted is None:
        granted = StaffRole(citizen_id=citizen_id, role=role, organisation_id=organisation_id, granted_at=now)
        uow.session.add(granted)
        uow.commit()
    return granted


def revoke_role(uow: UnitOfWork, citizen_id: str, role: str, organisation_id: str) -> bool:
    """Take a staff role back; return whether the account held it. The caller commits."""
    granted = uow.session.get(StaffRole, (citizen_id, role, organisation_id))
    if granted is None:
        return False
    uow.session.delete(granted)
    return True


def role_holders(uow: UnitOfWork, organisation_id: str) -> list[tuple[StaffRole, Citizen]]:
    """Return the staff roles held for an organisation, with their accounts, by role then name."""
    rows = uow.session.execute(
        select(StaffRole, Citizen)
        .join(Citizen, Citizen.id == StaffRole.citizen_id)
        .where(StaffRole.organisation_id == organisation_id)
        .order_by(StaffRole.role, Citizen.name)
    ).all()
    return [(role, citizen) for role, citizen in rows]


def staff_roles(uow: UnitOfWork, citizen_id: str) -> list[StaffRole]:
    """Return the staff roles of an account, by role then organisation."""
    return list(
        uow.session.scalars(
            select(StaffRole)
            .where(StaffRole.citizen_id == citizen_id)
            .order_by(StaffRole.role, StaffRole.organisation_id)
        )
    )


def has_role(uow: UnitOfWork, citizen_id: str, role: str, organisation_id: str | None = None) -> bool:
    """Tell whether an account holds *role* (for *organisation_id*, or for any organisation)."""
    query = select(StaffRole.role).where(StaffRole.citizen_id == citizen_id, StaffRole.role == role)
    if organisation_id is not None:
        query = query.where(StaffRole.organisation_id == organisation_id)
    return uow.session.scalars(query.limit(1)).first() is not None


def enrol_device(
    uow: UnitOfWork,
    citizen_id: str,
    public_jwk: dict[str, str],
    label: str,
    now: dt.datetime,
    device_id: str | None = None,
) -> MobileDevice:
    """Enrol a phone's P-256 public key for mobile ID; with *device_id*, replace that device's key."""
    if public_jwk.get("kty") != "EC" or public_jwk.get("crv") != "P-256" or "d" in public_jwk:
        raise ValueError("a mobile ID device key must be a public EC P-256 JWK")
    public = {k: public_jwk[k] for k in ("kty", "crv", "x", "y")}
    device = uow.session.get(MobileDevice, device_id) if device_id else None
    if device is None:
        device = MobileDevice(
            id=device_id or str(uuid.uuid4()), citizen_id=citizen_id, label=label, public_jwk=public, enrolled_at=now
        )
        uow.session.add(device)
    elif device.public_jwk != public or device.citizen_id != citizen_id:
        device.public_jwk, device.citizen_id, device.enrolled_at = public, citizen_id, now
    uow.commit()
    return device


# One statement for every single-use identifier: insert it, or take over an expired one; RETURNING
# tells whether this request was the one to record it. Written once as SQL (PostgreSQL and SQLite
# both read it): it runs several times in every flow, and the ORM's insert costs twice as much.
_REMEMBER_ONCE = text(
    "INSERT INTO identity_oauth_jti (key, expires_at) VALUES (:key, :expires_at) "
    "ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at "
    "WHERE identity_oauth_jti.expires_at <= :now RETURNING key"
)


def remember_once(uow: UnitOfWork, key: str, expires_at: int, now: int, *, commit: bool = False) -> bool:
    """Record a one-time identifier; return False if it was already recorded (a replay).

    One statement, safe between concurrent requests on every node: an insert that does nothing
    when the identifier is known, unless the known one has expired (its proof is stale anyway).
    With *commit* the record is durable at once (with anything *uow* did before): on PostgreSQL,
    with nothing pending, that is the one statement in autocommit, one round trip.
    """
    params = {"key": key, "expires_at": expires_at, "now": now}
    if commit:
        return bool(uow.run_alone(_REMEMBER_ONCE, params))
    return uow.run(_REMEMBER_ONCE, params).first() is not None
