"""Account settings (帳號設定): the email address, confirmed by a single-use link, the language, the notifications.

An address is used only once its owner has opened the link sent to it: until then it waits in an
:class:`identity.models.EmailConfirmation`, of which only the SHA-256 of the token is stored (a
copy of the database cannot confirm anyone's address). A link works once, for 24 hours, and a
newer link for the same account replaces it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flask_babel import force_locale, gettext
from sqlalchemy import bindparam, delete, select, update

from identity.models import AccountSettings, Citizen, EmailConfirmation
from mydata import mail
from mydata.config import LOCALES
from mydata.db import UnitOfWork

#: The notifications a citizen can choose (DESIGN §6.4).
KINDS = ("delivery", "download", "verification")
CONFIRMATION_LIFETIME = dt.timedelta(hours=24)
CONFIRM_PATH = "/me/settings/email/"
DEFAULT_LANGUAGE = "zh_Hant_TW"


@dataclass(frozen=True)
class AccountView:
    """What the settings page shows."""

    email: str | None
    pending_email: str | None
    language: str
    notifications: frozenset[str]


@dataclass(frozen=True)
class Contact:
    """Where and how to notify a citizen: their confirmed address, their language, their own name."""

    email: str
    language: str
    name: str


class LinkState(enum.Enum):
    """What a confirmation link is worth."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


def account_settings(uow: UnitOfWork, citizen_id: str, now: dt.datetime) -> AccountView:
    """Return a citizen's settings, with the address waiting for confirmation, if any."""
    stored = uow.session.get(AccountSettings, citizen_id)
    pending = uow.session.scalars(
        select(EmailConfirmation.email)
        .where(
            EmailConfirmation.citizen_id == citizen_id,
            EmailConfirmation.used_at.is_(None),
            EmailConfirmation.expires_at > now,
        )
        .order_by(EmailConfirmation.created_at.desc())
        .limit(1)
    ).first()
    if stored is None:
        return AccountView(email=None, pending_email=pending, language=DEFAULT_LANGUAGE, notifications=frozenset(KINDS))
    return AccountView(
        email=stored.email, pending_email=pending, language=stored.language, notifications=_wanted(stored)
    )


def save_settings(
    uow: UnitOfWork,
    citizen_id: str,
    *,
    email: str,
    language: str,
    notifications: Iterable[str],
    link_base: str,
    now: dt.datetime,
) -> bool:
    """Save the language and notifications; for a new address, send it a confirmation link. Commit.

    An empty *email* removes the address. Return whether a confirmation link was sent. *link_base*
    is the platform's public base URL (the issuer), which the link starts with.
    """
    if language not in LOCALES:
        raise ValueError(f"unknown language {language!r}")
    wanted = set(notifications)
    if not wanted <= set(KINDS):
        raise ValueError(f"unknown notifications {sorted(wanted - set(KINDS))}")
    stored = _settings_row(uow, citizen_id, now)
    stored.language = language
    stored.notify_delivery = "delivery" in wanted
    stored.notify_download = "download" in wanted
    stored.notify_verification = "verification" in wanted
    stored.updated_at = now
    email = email.strip()
    pending = account_settings(uow, citizen_id, now).pending_email
    sent = False
    if not email:
        stored.email, stored.email_confirmed_at = None, None
        _cancel_links(uow, citizen_id)
    elif email != stored.email and email != pending:
        _cancel_links(uow, citizen_id)
        citizen = uow.session.get(Citizen, citizen_id)
        assert citizen is not None  # foreign key
        token = secrets.token_urlsafe(32)
        uow.session.add(
            EmailConfirmation(
                token_hash=_hash(token),
                citizen_id=citizen_id,
                email=email,
                created_at=now,
                expires_at=now + CONFIRMATION_LIFETIME,
            )
        )
        subject, body = _confirmation_message(citizen.name, link_base + CONFIRM_PATH + token, language)
        mail.enqueue(uow, to=email, subject=subject, body=body, language=language, now=now)
        sent = True
    uow.commit()
    return sent


def link_state(uow: UnitOfWork, token: str, now: dt.datetime) -> LinkState:
    """Tell what a confirmation link is worth, without using it."""
    return _state(uow.session.get(EmailConfirmation, _hash(token)), now)


def confirm_email(uow: UnitOfWork, token: str, now: dt.datetime) -> tuple[LinkState, str | None]:
    """Use a confirmation link: make its address the account's; commit. Return the link's state and address.

    The link is spent by a conditional UPDATE, so of two concurrent uses only one confirms.
    """
    confirmation = uow.session.get(EmailConfirmation, _hash(token))
    state = _state(confirmation, now)
    if state is not LinkState.VALID or confirmation is None:
        return state, None
    spent = uow.session.execute(
        update(EmailConfirmation)
        .where(EmailConfirmation.token_hash == confirmation.token_hash, EmailConfirmation.used_at.is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        return LinkState.USED, None
    stored = _settings_row(uow, confirmation.citizen_id, now)
    stored.email, stored.email_confirmed_at, stored.updated_at = confirmation.email, now, now
    uow.commit()
    return LinkState.VALID, confirmation.email


def set_confirmed_address(uow: UnitOfWork, citizen_id: str, email: str, now: dt.datetime) -> None:
    """Give an account a confirmed address directly (sandbox personas); the caller commits."""
    stored = _settings_row(uow, citizen_id, now)
    if stored.email is None:
        stored.email, stored.email_confirmed_at = email, now


# Built once, plain columns read past the ORM: every delivery reads it (decision 0013). Only this
# module's functions write account settings, and no unit of work that does sends a notification.
_CONTACT = (
    select(
        AccountSettings.email,
        AccountSettings.email_confirmed_at,
        AccountSettings.language,
        AccountSettings.notify_delivery,
        AccountSettings.notify_download,
        AccountSettings.notify_verification,
        Citizen.name,
    )
    .join(Citizen, Citizen.id == AccountSettings.citizen_id)
    .where(AccountSettings.citizen_id == bindparam("citizen_id"))
)


def notification_contact(uow: UnitOfWork, citizen_id: str, kind: str | None) -> Contact | None:
    """Return where to send a notification of *kind*, or None if the citizen has no confirmed address or wants none.

    *kind* None is a message the citizen asked for (a counter confirmation code): it goes to any
    confirmed address.
    """
    row = uow.run(_CONTACT, {"citizen_id": citizen_id}).first()
    if row is None:
        return None
    if row.email is None or row.email_confirmed_at is None or (kind is not None and kind not in _wanted(row)):
        return None
    return Contact(email=row.email, language=row.language, name=row.name)


# Built once: every login reads it (decision 0012).
_PREFERRED_LANGUAGE = select(AccountSettings.language).where(AccountSettings.citizen_id == bindparam("citizen_id"))


def preferred_language(uow: UnitOfWork, citizen_id: str) -> str | None:
    """Return the language a citizen chose in their settings, if they chose one."""
    found = uow.read(_PREFERRED_LANGUAGE, {"citizen_id": citizen_id}).first()
    return None if found is None else str(found.language)


def _settings_row(uow: UnitOfWork, citizen_id: str, now: dt.datetime) -> AccountSettings:
    stored = uow.session.get(AccountSettings, citizen_id)
    if stored is None:
        stored = AccountSettings(
            citizen_id=citizen_id,
            language=DEFAULT_LANGUAGE,
            notify_delivery=True,
            notify_download=True,
            notify_verification=True,
            updated_at=now,
        )
        uow.session.add(stored)
    return stored


def _wanted(stored: Any) -> frozenset[str]:
    """Return the notifications chosen in *stored* (the settings entity, or a row of their columns)."""
    flags = {
        "delivery": stored.notify_delivery,
        "download": stored.notify_download,
        "verification": stored.notify_verification,
    }
    return frozenset(kind for kind, on in flags.items() if on)


def _cancel_links(uow: UnitOfWork, citizen_id: str) -> None:
    uow.session.execute(
        delete(EmailConfirmation).where(EmailConfirmation.citizen_id == citizen_id, EmailConfirmation.used_at.is_(None))
    )


def _state(confirmation: EmailConfirmation | None, now: dt.datetime) -> LinkState:
    if confirmation is None:
        return LinkState.UNKNOWN
    if confirmation.used_at is not None:
        return LinkState.USED
    if now >= confirmation.expires_at:
        return LinkState.EXPIRED
    return LinkState.VALID


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _confirmation_message(name: str, link: str, language: str) -> tuple[str, str]:
    """Return the subject and body of a confirmation email in *language*."""
    with force_locale(language):
        subject = gettext("Confirm your email address")
        body = "\n\n".join(
            [
                gettext("Hello %(name)s,", name=name),
                gettext("To receive MyData notifications at this address, open this link within 24 hours:"),
                link,
                gettext("If you did not ask for this, ignore this message: the address will not be used."),
                gettext("MyData personal data service"),
            ]
        )
    return subject, body + "\n"
