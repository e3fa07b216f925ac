"""Account settings pages (/me/settings) and the email confirmation link (DESIGN §6.4, issue 11).

Thin views: load the form, call one service of :mod:`identity.contacts`, render or redirect.
"""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from identity import contacts, sessions
from identity.forms import ConfirmEmailForm, SettingsForm
from identity.oauth.server import issuer
from mydata.clock import clock
from mydata.db import unit_of_work
from mydata.i18n import choose_locale

bp = Blueprint("account_settings", __name__)

#: HTTP status of the page a confirmation link leads to, by what the link is worth.
LINK_STATUS = {
    contacts.LinkState.VALID: 200,
    contacts.LinkState.USED: 410,
    contacts.LinkState.EXPIRED: 410,
    contacts.LinkState.UNKNOWN: 404,
}


@bp.route("/me/settings", methods=["GET", "POST"])
def settings() -> ResponseReturnValue:
    """Show and save the citizen's email address, language and notifications."""
    authentication = sessions.current_authentication()
    if authentication is None:
        return redirect(sessions.login_url("/me/settings"), 303)
    now = clock().now()
    with unit_of_work(read_only=request.method == "GET") as uow:
        current = contacts.account_settings(uow, authentication.citizen_id, now)
        form = SettingsForm()
        if request.method == "GET":
            form.email.data = current.pending_email or current.email or ""
            form.language.data = current.language
            form.notifications.data = sorted(current.notifications)
        elif form.validate_on_submit():
            sent = contacts.save_settings(
                uow,
                authentication.citizen_id,
                email=form.email.data,
                language=form.language.data,
                notifications=form.notifications.data or (),
                link_base=issuer(),
                now=now,
            )
            choose_locale(form.language.data)
            return redirect(url_for(".settings", saved="link" if sent else "1"), 303)
        # The error summary links to each field (the language and notifications to their fieldsets).
        errors = [(f"settings-{name}", messages[0]) for name, messages in form.errors.items() if name != "csrf_token"]
        page = render_template(
            "settings/settings.html", form=form, current=current, errors=errors, saved=request.args.get("saved")
        )
    return page, 400 if form.errors else 200


@bp.route("/me/settings/email/<token>", methods=["GET", "POST"])
def confirm_email(token: str) -> ResponseReturnValue:
    """Show the button that confirms an address (GET), or use the link (POST)."""
    form = ConfirmEmailForm()
    now = clock().now()
    with unit_of_work(read_only=request.method == "GET") as uow:
        if request.method == "POST" and form.validate_on_submit():
            state, email = contacts.confirm_email(uow, token, now)
        else:
            state, email = contacts.link_state(uow, token, now), None
    template = "settings/confirmed.html" if email else "settings/confirm.html"
    return render_template(template, form=form, state=state.value, email=email), LINK_STATUS[state]
