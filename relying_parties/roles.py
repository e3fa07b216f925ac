"""The staff of an organisation: who may act for it, as a developer (`rp_developer`) or at its counter (`counter`).

An organisation asks the operator to give a person a role (docs/counter.md); the person must have
logged in to MyData once, so that their account exists. Roles are kept by the identity package
(:class:`identity.models.StaffRole`); this module checks the organisation and the person first.
"""

from __future__ import annotations

import datetime as dt

from identity import national_id as national_ids
from identity import services as identity_services
from identity.models import Citizen, StaffRole
from mydata.db import UnitOfWork
from relying_parties.interfaces import InvalidInput, RoleNotHeld, StaffAccountNotFound
from relying_parties.services import get_organisation

ORGANISATION_ROLES = ("rp_developer", "counter")
"""The roles a person holds for a relying party (the operator's and agency officers' roles are not an RP's)."""


def grant(uow: UnitOfWork, organisation_id: str, national_id: str, role: str, *, now: dt.datetime) -> Citizen:
    """Give the person with *national_id* *role* for the organisation; return their account. Commits."""
    citizen = _account(uow, organisation_id, national_id, role)
    identity_services.grant_role(uow, citizen.id, role, organisation_id, now)
    return citizen


def revoke(uow: UnitOfWork, organisation_id: str, national_id: str, role: str) -> Citizen:
    """Take *role* back from the person with *national_id*; raise :class:`RoleNotHeld` if they had not it. Commits."""
    citizen = _account(uow, organisation_id, national_id, role)
    if not identity_services.revoke_role(uow, citizen.id, role, organisation_id):
        raise RoleNotHeld()
    uow.commit()
    return citizen


def staff(uow: UnitOfWork, organisation_id: str) -> list[tuple[StaffRole, Citizen]]:
    """Return the organisation's staff roles and their holders."""
    get_organisation(uow, organisation_id)
    return identity_services.role_holders(uow, organisation_id)


def _account(uow: UnitOfWork, organisation_id: str, national_id: str, role: str) -> Citizen:
    if role not in ORGANISATION_ROLES:
        raise InvalidInput(f"The role must be one of {', '.join(ORGANISATION_ROLES)}.")
    get_organisation(uow, organisation_id)
    number = national_ids.normalize(national_id)
    if not national_ids.checksum_ok(number):
        raise InvalidInput("This is not a valid national ID number (one letter and nine digits).")
    citizen = identity_services.find_citizen(uow, number)
    if citizen is None:
        raise StaffAccountNotFound()
    return citizen
