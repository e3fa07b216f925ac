"""Constant texts translated when a template is compiled give what the run-time `_` gives."""

from __future__ import annotations

from typing import Any

import pytest
from babel.support import NullTranslations
from flask import Flask, render_template
from jinja2 import DictLoader, Environment

from mydata.i18n import ConstantTranslations, LocalizedEnvironment


class Translations(NullTranslations):
    """A catalogue of a few texts, some with characters HTML escapes."""

    CATALOGUE = {  # noqa: RUF012
        "Log in": "登入",
        "Tom & Jerry <b>": "湯姆 & 傑利 <b>",
        "100%% sure": "百分之百 100%% 確定",
        "Hello %(name)s": "你好 %(name)s",
        "Broken %": "壞掉的 %",
    }

    def ugettext(self, message: str) -> str:
        """Translate *message* when it is in the catalogue."""
        return self.CATALOGUE.get(message, message)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        """Translate nothing in the plural."""
        return singular if n == 1 else plural


SOURCES = {
    "plain": '<p>{{ _("Log in") }}</p>',
    "escaped": '<p title="{{ _("Tom & Jerry <b>") }}">{{ _("Tom & Jerry <b>") }}</p>',
    "percent": '{{ _("100%% sure") }}',
    "argument": '{{ _("Hello %(name)s", name="<i>Ann</i>") }}',
    "gettext": '{{ gettext("Log in") }}',
    "unknown": '{{ _("Not in the catalogue") }}',
    "in a dict": '{% set t = {"a": _("Log in")} %}{{ t.a }}|{{ t.a|length }}',
    "in a call": '{{ ", ".join([_("Log in"), _("Tom & Jerry <b>")]) }}',
    "attribute": '{{ obj._("Log in") }}',
    "broken": '{% if false %}{{ _("Broken %") }}{% endif %}ok',
}


def environment(*, compiled_in: bool) -> Environment:
    """Return an autoescaping environment with newstyle gettext, the constant texts compiled in or not."""
    env = Environment(loader=DictLoader(SOURCES), autoescape=True, extensions=["jinja2.ext.i18n"])
    translations = Translations()
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=translations.ugettext, ngettext=translations.ungettext, newstyle=True
    )
    if compiled_in:
        env = env.overlay(extensions=[ConstantTranslations])
        env.constant_translations = translations  # type: ignore[attr-defined]
    return env


class Object:
    """An object with a method called `_`."""

    def _(self, text: str) -> str:
        return f"method:{text}"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_text_compiled_in_renders_as_the_run_time_translation(name: str) -> None:
    context: dict[str, Any] = {"obj": Object()}
    at_run_time = environment(compiled_in=False).get_template(name).render(context)
    compiled_in = environment(compiled_in=True).get_template(name).render(context)
    assert compiled_in == at_run_time


def test_a_constant_text_is_template_data_and_one_with_arguments_a_call() -> None:
    env = environment(compiled_in=True)
    plain = env.compile(SOURCES["plain"], raw=True)
    assert "登入" in plain
    assert "Log in" not in plain  # no call left to make
    assert "resolve('_')" in env.compile(SOURCES["argument"], raw=True)


def test_each_language_gets_its_own_compiled_template(app: Flask) -> None:
    assert isinstance(app.jinja_env, LocalizedEnvironment)
    pages = {}
    for lang in ("en", "zh_Hant_TW"):
        with app.test_request_context(f"/?lang={lang}"):
            pages[lang] = render_template("portal/index.html")
    assert "<title>Home · MyData personal data service</title>" in pages["en"]
    assert "首頁" in pages["zh_Hant_TW"]
    with app.test_request_context("/?lang=en"):
        assert render_template("portal/index.html") == pages["en"]
