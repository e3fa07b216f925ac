"""The login forms (field names as DESIGN §3.2) and the account settings form, each with its CSRF token."""

from __future__ import annotations

import functools
from typing import Any

from babel import support
from flask_babel import get_locale, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, PasswordField, RadioField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.i18n import messages_path
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from identity import national_id as nid


def _national_id(_form: Any, field: Field) -> None:
    """Accept a national ID number with a valid check digit (spaces and letter case forgiven)."""
    value = nid.normalize(field.data or "")
    if value and not nid.checksum_ok(value):
        raise ValidationError(
            lazy_gettext(
                "Enter a valid national ID number: one capital letter and nine digits, for example A123456789."
            )
        )
    field.data = value


@functools.cache
def _wtforms_translations(locale: str) -> support.NullTranslations:
    """WTForms' own messages in *locale*, read once per process (Flask-WTF reads them per request).

    WTForms names Traditional Chinese ``zh_TW`` where we say ``zh_Hant_TW``: both are tried.
    """
    return support.Translations.load(messages_path(), [locale, locale.replace("_Hant", "")], domain="wtforms")


class _LoginForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    """Where to go after login, and the level asked for (kept through the form)."""

    class Meta:
        def get_translations(self, form: Any) -> support.NullTranslations:
            """Return WTForms' messages in the reader's language."""
            return _wtforms_translations(str(get_locale()))

    next = HiddenField()
    level = HiddenField()


class EidCardForm(_LoginForm):
    """eID in the sandbox: the virtual card reader holds the card; the citizen types ID and PIN."""

    national_id = StringField(
        lazy_gettext("National ID number"),
        validators=[DataRequired(lazy_gettext("Enter your national ID number.")), _national_id],
    )
    pin = PasswordField(
        lazy_gettext("Card PIN"),
        validators=[
            DataRequired(lazy_gettext("Enter the PIN of your eID card.")),
            Length(min=6, max=8, message=lazy_gettext("The PIN of an eID card has 6 to 8 characters.")),
        ],
    )
    nonce = HiddenField(validators=[DataRequired()])


class EidCertificateForm(_LoginForm):
    """eID with a real card: the card-reader component fills in the certificate and signature."""

    certificate = TextAreaField(
        lazy_gettext("Certificate (PEM)"), validators=[DataRequired(lazy_gettext("The certificate is missing."))]
    )
    signature = TextAreaField(
        lazy_gettext("Signature (base64)"), validators=[DataRequired(lazy_gettext("The signature is missing."))]
    )
    nonce = HiddenField(validators=[DataRequired()])


class MobileForm(_LoginForm):
    """Mobile ID: the national ID number whose phone gets the request."""

    national_id = StringField(
        lazy_gettext("National ID number"),
        validators=[DataRequired(lazy_gettext("Enter your national ID number.")), _national_id],
    )


class NhiForm(_LoginForm):
    """NHI card: card number and registration password."""

    card_number = StringField(
        lazy_gettext("NHI card number"),
        filters=[lambda v: (v or "").replace(" ", "").replace("-", "")],
        validators=[
            DataRequired(lazy_gettext("Enter the card number of your NHI card.")),
            Regexp(r"^[0-9]{12}$", message=lazy_gettext("The NHI card number is the 12 digits printed on the card.")),
        ],
    )
    password = PasswordField(
        lazy_gettext("Registration password"),
        validators=[DataRequired(lazy_gettext("Enter the registration password of your card."))],
    )


class _TranslatedForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no type information
    """A form whose WTForms messages follow the reader's language."""

    class Meta:
        def get_translations(self, form: Any) -> support.NullTranslations:
            """Return WTForms' messages in the reader's language."""
            return _wtforms_translations(str(get_locale()))


_EMAIL_HINT = lazy_gettext("Enter an email address such as name@example.com.")


class SettingsForm(_TranslatedForm):
    """Account settings: the email address for notifications, the language, the notifications wanted."""

    email = StringField(
        lazy_gettext("Email address"),
        filters=[lambda v: (v or "").strip()],
        validators=[
            Optional(),
            Length(max=254, message=_EMAIL_HINT),
            # One @, a dot in the domain, no spaces or angle brackets: the confirmation link proves the rest.
            Regexp(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>.]+$", message=_EMAIL_HINT),
        ],
    )
    language = RadioField(
        lazy_gettext("Language of the portal and of your emails"),
        choices=[SelectChoice("zh_Hant_TW", "中文"), SelectChoice("en", "English")],
        validators=[DataRequired(lazy_gettext("Choose a language."))],
    )
    notifications = SelectMultipleField(
        lazy_gettext("Send me an email"),
        choices=[
            SelectChoice("delivery", lazy_gettext("when my data is delivered to an organisation")),
            SelectChoice("download", lazy_gettext("when my data is downloaded")),
            SelectChoice("verification", lazy_gettext("when someone verifies a document I downloaded")),
        ],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )


class ConfirmEmailForm(_TranslatedForm):
    """The button that uses a confirmation link (a link only shows it: mail scanners open links)."""
