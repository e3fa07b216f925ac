"""NHI card login (健保卡 + 註冊密碼): card number and registration password, with a per-card lock.

Passwords are stored as Argon2id hashes (RFC 9106, argon2-cffi's defaults). Five wrong passwords
within 15 minutes lock that card for 15 minutes (ASVS 5 V6.3.1: per account, so that an attacker
spreading guesses over many addresses still stops); the per-address cap is the rate limiter's.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from identity.interfaces import CardLocked, UnknownNhiCard, WrongPassword
from identity.models import NhiCard
from mydata.db import UnitOfWork

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCK_DURATION = dt.timedelta(minutes=15)
CARD_NUMBER = re.compile(r"[0-9]{12}")

_hasher = PasswordHasher()


@functools.cache
def _decoy_hash() -> str:
    return _hasher.hash("not a registration password")


def hash_password(password: str) -> str:
    """Return the Argon2id hash of a registration password."""
    return _hasher.hash(password)


def register_card(
    uow: UnitOfWork, citizen_id: str, card_number: str, password: str, now: dt.datetime, *, password_hash: str = ""
) -> NhiCard:
    """Register an NHI card and its password for a citizen (idempotent: an existing card is kept)."""
    if not CARD_NUMBER.fullmatch(card_number):
        raise ValueError("an NHI card number is 12 digits")
    card = uow.session.get(NhiCard, card_number)
    if card is None:
        card = NhiCard(
            card_number=card_number,
            citizen_id=citizen_id,
            password_hash=password_hash or hash_password(password),
            recent_failures=[],
            registered_at=now,
        )
        uow.session.add(card)
        uow.commit()
    return card


def log_in(uow: UnitOfWork, card_number: str, password: str, now: dt.datetime) -> str:
    """Check a card number and password; return the citizen id.

    Raise :class:`CardLocked` while the card is locked (the password is not even checked),
    :class:`WrongPassword` with the attempts left, or :class:`UnknownNhiCard`. Failures are
    committed before raising.
    """
    # The row lock serialises concurrent attempts on one card, so no failure is lost to a race.
    card = uow.session.get(NhiCard, card_number, with_for_update=True)
    if card is None:
        # Same work as for a real card, so that timing does not tell which card numbers exist.
        _verify(_decoy_hash(), password)
        raise UnknownNhiCard()
    if card.locked_until is not None and now < card.locked_until:
        raise CardLocked(card.locked_until)
    if _verify(card.password_hash, password):
        card.recent_failures, card.locked_until = [], None
        if _hasher.check_needs_rehash(card.password_hash):
            card.password_hash = hash_password(password)
        uow.commit()
        return card.citizen_id
    cutoff = (now - FAILURE_WINDOW).timestamp()
    failures = [t for t in card.recent_failures if t > cutoff] + [int(now.timestamp())]
    if len(failures) >= MAX_FAILURES:
        card.recent_failures, card.locked_until = [], now + LOCK_DURATION
        uow.commit()
        raise CardLocked(card.locked_until)
    card.recent_failures = failures
    uow.commit()
    raise WrongPassword(attempts_left=MAX_FAILURES - len(failures))


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
