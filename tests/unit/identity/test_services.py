"""Accounts: registration with a valid national ID, staff roles, phone enrolment."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask

from identity import services
from identity.interfaces import InvalidNationalId
from mydata.db import get_db
from mydata.keys import public_jwk

pytestmark = pytest.mark.db
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)


def test_registration_refuses_a_wrong_check_digit_and_is_idempotent(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        with pytest.raises(InvalidNationalId):
            services.register_citizen(uow, "A123456788", "王小明", NOW)
        first = services.register_citizen(uow, "a123456789", "王小明", NOW, dt.date(1985, 3, 14))
        again = services.register_citizen(uow, "A123456789", "someone else", NOW)
        assert again.id == first.id
        assert again.name == "王小明"
        assert services.get_citizen(uow, first.id) is first


def test_staff_roles_are_granted_once_and_checked_per_organisation(app: Flask) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = services.register_citizen(uow, "E224680132", "張雅婷", NOW)
        services.grant_role(uow, citizen.id, "counter", "sandbox-bank", NOW)
        services.grant_role(uow, citizen.id, "counter", "sandbox-bank", NOW)
        services.grant_role(uow, citizen.id, "counter", "sandbox-school", NOW)
        assert [(r.role, r.organisation_id) for r in services.staff_roles(uow, citizen.id)] == [
            ("counter", "sandbox-bank"),
            ("counter", "sandbox-school"),
        ]
        assert services.has_role(uow, citizen.id, "counter")
        assert services.has_role(uow, citizen.id, "counter", "sandbox-bank")
        assert not services.has_role(uow, citizen.id, "counter", "moi-household")
        assert not services.has_role(uow, citizen.id, "operator")
        with pytest.raises(ValueError, match="unknown staff role"):
            services.grant_role(uow, citizen.id, "admin", "platform", NOW)


def test_only_a_public_p256_key_can_be_enrolled(app: Flask) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = services.register_citizen(uow, "A123456789", "王小明", NOW)
        jwk = public_jwk(key.public_key(), kid="")
        device = services.enrol_device(uow, citizen.id, jwk, "phone", NOW)
        assert set(device.public_jwk) == {"kty", "crv", "x", "y"}
        with pytest.raises(ValueError, match="public EC P-256"):
            services.enrol_device(uow, citizen.id, {**jwk, "d": "secret"}, "phone", NOW)
        p384 = public_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), kid="")
        with pytest.raises(ValueError, match="public EC P-256"):
            services.enrol_device(uow, citizen.id, p384, "phone", NOW)
