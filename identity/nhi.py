"""NHI card login (健保卡 + 註冊密碼): card number and registration password, with a per-card lock.

Passwords are stored as Argon2id hashes (RFC 9106, argon2-cffi's defaults). Five wrong passwords
within 15 minutes lock that card for 15 minutes (ASVS 5 V6.3.1: per account, so that an attacker
spreading guesses over many addresses still stops); the per-address cap is the rate limiter's.
A card number that no card has gets the same answer, work and lock as a wrong password.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from identity.interfaces import CardLocked, WrongPassword
from identity.models import NhiCard, NhiUnknownCard
from mydata.db import UnitOfWork

MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
LOCK_DURATION = dt.timedelta(minutes=15)
CARD_NUMBER = re.compile(r"[0-9]{12}")

_hasher = PasswordHasher()


@functools.cache
def _decoy_hash() -> str:
    return _hasher.hash("not a registration password")


def prepare_decoy() -> None:
    """Make the decoy hash that numbers without a card are checked against (once per process)."""
    _decoy_hash()


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

    Raise :class:`CardLocked` while the card is locked (the password is not even checked), or
    :class:`WrongPassword` with the attempts left. A number no card has is answered the same way,
    after the same work: its password is checked against a decoy hash of the same cost, and its
    failures lock it like a card's, so that nothing tells which numbers exist. Failures are
    committed before raising.
    """
    # The row lock serialises concurrent attempts on one card, so no failure is lost to a race.
    card = uow.session.get(NhiCard, card_number, with_for_update=True)
    record: NhiCard | NhiUnknownCard = card if card is not None else _unknown_card(uow, card_number, now)
    if record.locked_until is not None and now < record.locked_until:
        raise CardLocked(record.locked_until)
    right = _verify(card.password_hash if card is not None else _decoy_hash(), password)
    if right and card is not None:
        card.recent_failures, card.locked_until = [], None
        if _hasher.check_needs_rehash(card.password_hash):
            card.password_hash = hash_password(password)
        uow.commit()
        return card.citizen_id
    cutoff = (now - FAILURE_WINDOW).timestamp()
    failures = [t for t in record.recent_failures if t > cutoff] + [int(now.timestamp())]
    if isinstance(record, NhiUnknownCard):
        record.updated_at = now
    if len(failures) >= MAX_FAILURES:
        record.recent_failures, record.locked_until = [], now + LOCK_DURATION
        uow.commit()
        raise CardLocked(record.locked_until)
    record.recent_failures = failures
    uow.commit()
    raise WrongPassword(attempts_left=MAX_FAILURES - len(failures))


def _unknown_card(uow: UnitOfWork, card_number: str, now: dt.datetime) -> NhiUnknownCard:
    """Return the (locked) failure record of a number no card has, creating it if needed."""
    record = uow.session.get(NhiUnknownCard, card_number, with_for_update=True)
    if record is not None:
        return record
    # Records whose failures and lock are all past tell nothing any more.
    uow.session.execute(delete(NhiUnknownCard).where(NhiUnknownCard.updated_at < now - FAILURE_WINDOW - LOCK_DURATION))
    record = NhiUnknownCard(card_number=card_number, recent_failures=[], locked_until=None, updated_at=now)
    try:
        with uow.session.begin_nested():
            uow.session.add(record)
    except IntegrityError:  # a concurrent attempt on the same number created it first
        record = uow.session.get(NhiUnknownCard, card_number, with_for_update=True, populate_existing=True)
        assert record is not None
    return record


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
