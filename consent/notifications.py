"""Notifications (通知): an email to the citizen after a delivery, a download or a document verification.

DESIGN §6.4: the email names the recipient and the datasets, in the citizen's language, and
contains no data: nothing about the citizen but their own name (no national ID, no birth date, no
address), and a link to their usage history. It is queued in the caller's unit of work
(:func:`mydata.mail.enqueue`), so it is committed with the event it tells of, or not at all, and
the request that causes it never waits for a mail server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from flask import current_app
from flask_babel import force_locale, format_datetime, gettext

from identity.contacts import Contact, notification_contact
from mydata import mail
from mydata.db import UnitOfWork
from providers.services import dataset_titles

KINDS = ("delivery", "download", "verification", "counter")
# A counter clerk seeing the data is a delivery to an organisation: the same choice in the settings.
PREFERENCE = {"counter": "delivery"}
HISTORY_PATH = "/me/history"


def notify_citizen(
    uow: UnitOfWork,
    *,
    citizen_id: str,
    kind: str,
    recipient: str | None,
    datasets: Sequence[str],
    now: dt.datetime,
) -> bool:
    """Queue the email of one event for the citizen, if they confirmed an address and want this *kind*.

    *kind* is ``delivery`` (*recipient* names the organisation and service), ``download`` (the
    citizen themselves), ``verification`` (someone checked a document the citizen downloaded) or
    ``counter`` (a clerk of *recipient* saw the data at a desk).
    Return whether an email was queued; the caller commits.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}; expected one of {', '.join(KINDS)}")
    contact = notification_contact(uow, citizen_id, PREFERENCE.get(kind, kind))
    if contact is None:
        return False
    titles = _titles(uow, datasets, contact.language)
    link = str(current_app.config["MYDATA_ISSUER"]) + HISTORY_PATH
    subject, body = _message(kind, contact, recipient, titles, link, now)
    mail.enqueue(uow, to=contact.email, subject=subject, body=body, language=contact.language, now=now)
    return True


def send_confirmation_code(uow: UnitOfWork, *, citizen_id: str, code: str, recipient: str, now: dt.datetime) -> bool:
    """Queue the 6-digit counter confirmation code for the citizen, if they confirmed an address.

    The citizen asked for it (they are at the desk), so it goes whatever notifications they chose.
    It names the organisation whose clerk waits for it and holds no data. Return whether it was queued.
    """
    contact = notification_contact(uow, citizen_id, None)
    if contact is None:
        return False
    with force_locale(contact.language):
        subject = gettext("MyData: your counter confirmation code")
        body = "\n\n".join(
            [
                gettext("Dear %(name)s,", name=contact.name),
                gettext("A clerk of %(recipient)s entered your counter code.", recipient=recipient),
                gettext("Your confirmation code is %(code)s. Tell it to the clerk within 2 minutes.", code=code),
                gettext(
                    "If you are not at a counter of %(recipient)s now, do not tell anyone this code, and cancel "
                    "the counter verification on MyData.",
                    recipient=recipient,
                ),
            ]
        )
    mail.enqueue(uow, to=contact.email, subject=subject, body=body + "\n", language=contact.language, now=now)
    return True


def _titles(uow: UnitOfWork, datasets: Sequence[str], language: str) -> list[str]:
    """Return each dataset's title in *language* (its id when the catalogue no longer has it)."""
    known = dataset_titles(uow, datasets)
    return [known[d][1 if language == "en" else 0] if d in known else d for d in datasets]


def _message(
    kind: str, contact: Contact, recipient: str | None, titles: list[str], link: str, now: dt.datetime
) -> tuple[str, str]:
    """Return the subject and body of a notification, in the contact's language."""
    with force_locale(contact.language):
        when = format_datetime(now, "yyyy-MM-dd HH:mm")
        if kind == "delivery":
            subject = gettext("MyData: your data was delivered to %(recipient)s", recipient=recipient or "")
            what = gettext("At %(time)s (Taiwan time), MyData delivered your data to %(recipient)s.",
                           time=when, recipient=recipient or "")  # fmt: skip
        elif kind == "counter":
            subject = gettext("MyData: your data was shown at the counter of %(recipient)s", recipient=recipient or "")
            what = gettext("At %(time)s (Taiwan time), a clerk of %(recipient)s saw your data at their counter.",
                           time=when, recipient=recipient or "")  # fmt: skip
        elif kind == "download":
            subject = gettext("Your data was downloaded")
            what = gettext("At %(time)s (Taiwan time), you downloaded your data from MyData.", time=when)
        else:
            subject = gettext("Someone verified a document of yours")
            what = gettext(
                "At %(time)s (Taiwan time), someone verified a document you downloaded from MyData.", time=when
            )
        lines = [
            gettext("Dear %(name)s,", name=contact.name),
            what,
            gettext("Datasets:") + "\n" + "\n".join(f"- {title}" for title in titles),
            gettext("Your usage history shows every use of your data, and lets you verify it: %(link)s", link=link),
            gettext(
                "This email contains none of your data. If you did not expect it, look at your usage history "
                "and contact the MyData service desk."
            ),
            gettext("You can choose which emails you receive in your account settings."),
        ]
    return subject, "\n\n".join(lines) + "\n"
