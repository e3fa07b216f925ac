"""The record of operators' decisions (issue 13): approve, reject, suspend, reinstate, rotate.

Each feature package that changes the state of something an operator reviews (an organisation, a
service, a provider, a dataset, a schema version, the signing key) calls :func:`record` in the unit
of work of the change, so that the change and its record commit together or not at all. The
operator console lists them (:func:`recent`): who decided, when, about what, and why.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from mydata.db import UnitOfWork
from mydata.models import Decision

SUBJECT_TYPES = ("organisation", "service", "provider", "dataset", "schema", "signing_key")
ACTIONS = ("approve", "reject", "suspend", "reinstate", "rotate")
MAX_REASON = 1000


def record(
    uow: UnitOfWork,
    *,
    actor: str,
    subject_type: str,
    subject_id: str,
    action: str,
    now: dt.datetime,
    reason: str | None = None,
) -> Decision:
    """Add the record of a decision to *uow* (the caller commits it with the change)."""
    if subject_type not in SUBJECT_TYPES:
        raise ValueError(f"unknown subject type {subject_type!r}; expected one of {', '.join(SUBJECT_TYPES)}")
    if action not in ACTIONS:
        raise ValueError(f"unknown decision {action!r}; expected one of {', '.join(ACTIONS)}")
    decision = Decision(
        decided_at=now,
        actor=actor[:128],
        subject_type=subject_type,
        subject_id=subject_id,
        action=action,
        reason=(reason or "").strip()[:MAX_REASON] or None,
    )
    uow.session.add(decision)
    return decision


def recent(
    uow: UnitOfWork, *, limit: int = 100, subject_type: str | None = None, subject_id: str | None = None
) -> list[Decision]:
    """Return the latest decisions, newest first (about one type, or one thing, if given)."""
    query = select(Decision).order_by(Decision.decided_at.desc(), Decision.id.desc()).limit(limit)
    if subject_type is not None:
        query = query.where(Decision.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(Decision.subject_id == subject_id)
    return list(uow.session.scalars(query))
