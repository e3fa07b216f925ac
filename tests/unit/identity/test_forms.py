"""The login forms' own machinery: WTForms' messages in the reader's language, read once."""

from __future__ import annotations

from flask import Flask

from identity.forms import NhiForm


def test_wtforms_messages_follow_the_language_and_are_read_once(app: Flask) -> None:
    required = "This field is required."  # one of WTForms' own messages
    with app.test_request_context("/login?lang=zh_Hant_TW"):
        chinese = NhiForm(meta={"csrf": False})
        translations = chinese.meta.get_translations(chinese)
        assert translations.gettext(required) != required
    with app.test_request_context("/login?lang=zh_Hant_TW"):
        again = NhiForm(meta={"csrf": False})
        assert again.meta.get_translations(again) is translations
    with app.test_request_context("/login?lang=en"):
        english = NhiForm(meta={"csrf": False})
        assert english.meta.get_translations(english).gettext(required) == required
