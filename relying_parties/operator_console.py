"""The operator's console (/console/operator, role ``operator``): review queues, decisions, ledger, signing key.

* Review queues, one page per kind (organisations, services, providers, datasets): what is pending
  first, then the rest with their status. An item is approved or rejected while pending,
  suspended while approved, and reinstated while suspended; a reason is required to reject or to
  suspend. Every decision is recorded with its reason by the service that makes the change
  (:mod:`mydata.decisions`), in the same transaction.
* The audit list: every recorded decision, newest first (who, when, what, why).
* The ledger's status: its size, the newest signed tree head, and the latest full verification
  (`mydata ledger verify` keeps each result).
* The platform signing key: which one is active, and its rotation after a confirmation.

Every action (a POST) needs a login of the last 15 minutes (:mod:`identity.staff`). A form posted
with an older login is kept, with its reason, for the same person; after the step-up the
confirmation page shows it again for one more click.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext, pgettext
from sqlalchemy import select

from consent.audit import latest_verification
from consent.ledger import b64, ledger, parse_rfc3339, read_head
from identity import staff
from identity.services import get_citizen
from identity.sessions import current_authentication
from mydata import decisions
from mydata.db import UnitOfWork, unit_of_work
from mydata.errors import MydataError
from mydata.keys import ACTIVE as KEY_ACTIVE
from mydata.keys import RETIRED as KEY_RETIRED
from mydata.keys import key_store
from mydata.models import Decision, StoredKey
from providers import services as providers_services
from providers.models import ACTIVE as PROVIDER_ACTIVE
from providers.models import PENDING as PROVIDER_PENDING
from providers.models import SCHEMA_PENDING
from providers.models import SUSPENDED as PROVIDER_SUSPENDED
from relying_parties import services
from relying_parties.consoles import console_blueprint, current_member
from relying_parties.models import APPROVED, PENDING, SUSPENDED

bp = console_blueprint("operator", __name__)

KINDS = ("organisations", "services", "providers", "datasets")
#: The decisions' subject type of each queue.
SUBJECT_TYPES = {"organisations": "organisation", "services": "service", "providers": "provider", "datasets": "dataset"}
ACTIONS = ("approve", "reject", "suspend", "reinstate")
NEEDS_REASON = ("reject", "suspend")
#: The audit list shows this many decisions, newest first.
AUDIT_LIMIT = 300

#: The services that carry out each decision, by queue and action ("reinstate" is an approval of a
#: suspended item, recorded as a reinstatement by the service).
_DO: dict[str, dict[str, Callable[..., Any]]] = {
    "organisations": {
        "approve": services.approve_organisation,
        "reject": services.reject_organisation,
        "suspend": services.suspend_organisation,
        "reinstate": services.approve_organisation,
    },
    "services": {
        "approve": services.approve_service,
        "reject": services.reject_service,
        "suspend": services.suspend_service,
        "reinstate": services.approve_service,
    },
    "providers": {
        "approve": providers_services.approve_provider,
        "reject": providers_services.reject_provider,
        "suspend": providers_services.suspend_provider,
        "reinstate": providers_services.approve_provider,
    },
    "datasets": {
        "approve": providers_services.approve_dataset,
        "reject": providers_services.reject_dataset,
        "suspend": providers_services.suspend_dataset,
        "reinstate": providers_services.approve_dataset,
    },
}


@dataclass
class Item:
    """One row of a review queue: what it is, its status, what may be done to it now, and what to show."""

    id: str
    name_zh: str
    name_en: str
    status: str
    details: list[tuple[str, str]] = field(default_factory=list)

    @property
    def actions(self) -> tuple[str, ...]:
        """Return what may be done now: approve or reject a pending item, suspend an approved one, reinstate."""
        if self.status in (PENDING, PROVIDER_PENDING):
            return ("approve", "reject")
        if self.status in (APPROVED, PROVIDER_ACTIVE):
            return ("suspend",)
        if self.status in (SUSPENDED, PROVIDER_SUSPENDED):
            return ("reinstate",)
        return ()  # rejected: final

    @property
    def pending(self) -> bool:
        """Tell whether the item waits for a decision."""
        return self.status == PENDING


def _items(uow: UnitOfWork, kind: str) -> list[Item]:
    """Return a queue's items: the pending ones first, then the rest, each by id."""
    items: list[Item] = []
    if kind == "organisations":
        for o in services.list_organisations(uow):
            contacts = ", ".join(f"{c.get('name', '')} <{c.get('email', '')}>" for c in o.contacts)
            details = [(gettext("Registration number"), o.registration_number), (gettext("Contact"), contacts)]
            items.append(Item(o.id, o.name_zh, o.name_en, o.status, details))
    elif kind == "services":
        for s in services.list_services(uow):
            details = [
                (gettext("Organisation"), s.organisation_id),
                (gettext("Purpose"), s.purpose_en if _english() else s.purpose_zh),
                (gettext("Required datasets"), ", ".join(s.required_datasets)),
                (gettext("Optional datasets"), ", ".join(s.optional_datasets) or "-"),
                (gettext("Retention (days)"), str(s.retention_days)),
            ]
            items.append(Item(s.id, s.name_zh, s.name_en, s.status, details))
    elif kind == "providers":
        for p in providers_services.list_providers(uow):
            details = [(gettext("Agency"), p.agency_id), (gettext("Base URL"), p.base_url)]
            items.append(Item(p.id, p.agency.name_zh, p.agency.name_en, p.status, details))
    else:
        for d in providers_services.list_datasets(uow):
            details = [
                (gettext("Provider"), d.provider_id),
                (gettext("Minimum level"), d.min_level),
                (gettext("Schema version"), str(d.schema_version)),
            ]
            items.append(Item(d.id, d.title_zh, d.title_en, d.status, details))
    return sorted(items, key=lambda item: (not item.pending, item.id))


@bp.context_processor
def _labels() -> dict[str, object]:
    return {"action_labels": action_labels()}


def action_labels() -> dict[str, str]:
    """Name each decision for its button, in the reader's language ("approve" as an operator approves)."""
    return {
        "approve": pgettext("decision", "Approve"),
        "reject": gettext("Reject"),
        "suspend": gettext("Suspend"),
        "reinstate": gettext("Reinstate"),
    }


def _english() -> bool:
    from flask_babel import get_locale

    return not str(get_locale()).startswith("zh")


def _waiting(uow: UnitOfWork) -> dict[str, int]:
    return {kind: sum(1 for item in _items(uow, kind) if item.pending) for kind in KINDS}


# -- the kept action: a form posted with an old login ----------------------------------------------


def _keep_the_posted_action() -> None:
    """Before the console's door: keep a posted decision (with its reason) across the step-up it may need."""
    if not staff.is_action(request.method) or request.endpoint is None:
        return
    args = request.view_args or {}
    if request.endpoint == f"{bp.name}.decide":
        target = json.dumps([args["kind"], args["subject_id"], request.form.get("reason", "")])
        resume = staff.StaffAction(request.form.get("action", ""), target, url_for(f"{bp.name}.confirm"))
    elif request.endpoint == f"{bp.name}.rotate":
        resume = staff.StaffAction("rotate", "signing_key", url_for(f"{bp.name}.confirm"))
    else:
        return
    staff.require_staff_session(current_authentication(), action=True, resume=resume)


# Before the door's own check, which would ask for the step-up without keeping anything.
bp.before_request_funcs.setdefault(None, []).insert(0, _keep_the_posted_action)


def _actor(uow: UnitOfWork) -> str:
    return services.authenticate_operator(uow, bearer_token=None, citizen_id=current_member().citizen_id)


# -- pages ------------------------------------------------------------------------------------------


@bp.get("")
def index() -> ResponseReturnValue:
    """Link each queue and the schema versions with what waits in each, the audit list, the ledger and the key."""
    uow = unit_of_work()
    schemas = len(providers_services.list_schema_versions(uow, status=SCHEMA_PENDING))
    return render_template("console/operator/index.html", waiting=_waiting(uow), kinds=KINDS, schemas=schemas)


def queue(kind: str) -> ResponseReturnValue:
    """Show a review queue: the pending items first, then the rest with their status."""
    return _queue_page(kind)


for _kind in KINDS:
    bp.add_url_rule(f"/{_kind}", _kind, queue, methods=["GET"], defaults={"kind": _kind})


def _queue_page(
    kind: str, *, errors: dict[str, str] | None = None, reasons: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    items = _items(unit_of_work(), kind)
    return (
        render_template(
            "console/operator/queue.html",
            kind=kind,
            pending=[i for i in items if i.pending],
            others=[i for i in items if not i.pending],
            errors=errors or {},
            reasons=reasons or {},
        ),
        status,
    )


@bp.post("/<any(organisations, services, providers, datasets):kind>/<subject_id>/decision")
def decide(kind: str, subject_id: str) -> ResponseReturnValue:
    """Approve, reject, suspend or reinstate an item; a reason is required to reject or suspend."""
    action = request.form.get("action", "")
    reason = request.form.get("reason", "").strip()[: decisions.MAX_REASON]
    if action not in ACTIONS:
        abort(400)
    uow = unit_of_work()
    item = next((i for i in _items(uow, kind) if i.id == subject_id), None)
    if item is None:
        abort(404)
    if action in NEEDS_REASON and not reason:
        error = gettext("Give a reason: it is required to reject or suspend.")
        return _queue_page(kind, errors={subject_id: error}, reasons={subject_id: reason}, status=400)
    if action not in item.actions:
        error = gettext("This cannot be done now: the status has changed. Reload the page.")
        return _queue_page(kind, errors={subject_id: error}, reasons={subject_id: reason}, status=409)
    try:
        _DO[kind][action](uow, subject_id, actor=_actor(uow), reason=reason or None)
    except MydataError as exc:
        uow.rollback()
        return _queue_page(kind, errors={subject_id: _refusal(exc)}, reasons={subject_id: reason}, status=exc.status)
    staff.forget_action()
    flash(_done(action, subject_id))
    return redirect(url_for(f".{kind}"), 303)


def _refusal(error: MydataError) -> str:
    """Say in the reader's language why a service refused a decision."""
    known: dict[str, str] = {
        "organisation_not_approved": gettext("Approve the organisation first: its services wait for it."),
        "already_registered": gettext("An approved organisation already has this registration number."),
        "not_pending": gettext("Only a pending application can be rejected."),
    }
    return known.get(error.code) or gettext("This cannot be done: %(reason)s", reason=error.description)


def _done(action: str, subject_id: str) -> str:
    done: dict[str, str] = {
        "approve": gettext("%(id)s is approved.", id=subject_id),
        "reject": gettext("%(id)s is rejected.", id=subject_id),
        "suspend": gettext("%(id)s is suspended.", id=subject_id),
        "reinstate": gettext("%(id)s is reinstated.", id=subject_id),
    }
    return done[action]


@bp.get("/confirm")
def confirm() -> ResponseReturnValue:
    """Show the action kept across the operator's new login, to be confirmed with one click."""
    kept = staff.pending_action(current_authentication())
    if kept is None:
        return redirect(url_for(".index"), 303)
    if kept.name == "rotate":
        return render_template("console/operator/keys.html", kept=True, **_key_state(unit_of_work()))
    try:
        kind, subject_id, reason = json.loads(kept.target)
    except (ValueError, TypeError):
        kind = subject_id = reason = None
    if kind not in KINDS or kept.name not in ACTIONS:
        staff.forget_action()
        return redirect(url_for(".index"), 303)
    item = next((i for i in _items(unit_of_work(), kind) if i.id == subject_id), None)
    if item is None or kept.name not in item.actions:
        staff.forget_action()
        return redirect(url_for(f".{kind}"), 303)
    return render_template("console/operator/confirm.html", kind=kind, item=item, action=kept.name, reason=reason)


# -- the audit list ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    """One decision as the audit list shows it."""

    decision: Decision
    who: str


@bp.get("/decisions")
def audit() -> ResponseReturnValue:
    """List the latest decisions, newest first: when, who, what and why."""
    uow = unit_of_work()
    rows = [AuditRow(d, who) for d, who in _named(uow, decisions.recent(uow, limit=AUDIT_LIMIT))]
    return render_template("console/operator/decisions.html", rows=rows, limit=AUDIT_LIMIT)


def _named(uow: UnitOfWork, recorded: list[Decision]) -> list[tuple[Decision, str]]:
    """Pair each decision with who made it, as a reader knows them: a name, never a national ID."""
    names: dict[str, str] = {}
    for decision in recorded:
        actor = decision.actor
        if actor in names:
            continue
        if actor.startswith("citizen:"):
            citizen = get_citizen(uow, actor.removeprefix("citizen:"))
            names[actor] = citizen.name if citizen is not None else gettext("a former account")
        elif actor == "cli":
            names[actor] = gettext("command line")
        elif actor.startswith("operator-token:"):
            names[actor] = gettext("operator token %(id)s", id=actor.removeprefix("operator-token:"))
        else:
            names[actor] = actor
    return [(decision, names[decision.actor]) for decision in recorded]


# -- the ledger -------------------------------------------------------------------------------------


@bp.get("/ledger")
def ledger_status() -> ResponseReturnValue:
    """Show the ledger's size, its newest signed tree head and the latest full verification."""
    uow = unit_of_work()
    size = read_head(uow.session.connection()).tree_size
    newest = ledger(uow).latest_signed_tree_head()
    tree_head = None
    if newest is not None:
        tree_head = {
            "tree_size": newest.tree_size,
            "time": parse_rfc3339(newest.timestamp),
            "root_hash": b64(newest.root_hash),
        }
    return render_template(
        "console/operator/ledger.html", size=size, tree_head=tree_head, verification=latest_verification(uow)
    )


# -- the signing key --------------------------------------------------------------------------------


def _key_state(uow: UnitOfWork) -> dict[str, Any]:
    active = uow.session.scalars(
        select(StoredKey).where(StoredKey.status == KEY_ACTIVE).order_by(StoredKey.created_at.desc()).limit(1)
    ).first()
    retired = uow.session.scalars(
        select(StoredKey).where(StoredKey.status == KEY_RETIRED).order_by(StoredKey.created_at.desc())
    ).all()
    return {"active": active, "retired": list(retired), "error": None}


@bp.get("/keys")
def keys() -> ResponseReturnValue:
    """Show the active signing key and the retired ones still published, with the rotation form."""
    return render_template("console/operator/keys.html", kept=False, **_key_state(unit_of_work()))


@bp.post("/keys/rotate")
def rotate() -> ResponseReturnValue:
    """Rotate the platform signing key once the operator has ticked the confirmation; record the decision."""
    uow = unit_of_work()
    if request.form.get("confirm") != "yes":
        state = _key_state(uow) | {"error": gettext("Tick the box to confirm the rotation.")}
        return render_template("console/operator/keys.html", kept=False, **state), 400
    state = _key_state(uow)
    old = state["active"].kid if state["active"] is not None else "none"
    store = key_store(uow)
    # Recorded in the rotation's own transaction: rotate() commits both.
    decisions.record(
        uow, actor=_actor(uow), subject_type="signing_key", subject_id=old, action="rotate", now=store.clock.now()
    )
    new = store.rotate()
    staff.forget_action()
    flash(gettext("The signing key is rotated: the new key is %(kid)s.", kid=new.kid))
    return redirect(url_for(".keys"), 303)
