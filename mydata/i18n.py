"""Languages: Traditional Chinese (zh_Hant_TW) by default, English on request.

The choice is made with ``?lang=en`` or ``?lang=zh_Hant_TW`` (the switch on every page) and kept in
a cookie. Browsers' Accept-Language is deliberately not used: the service is Taiwanese first, and a
citizen on a borrowed English-language computer must still see Chinese unless they switch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.support import NullTranslations
from flask import Flask, Response, current_app, g, has_app_context, request, url_for
from flask.templating import Environment
from flask_babel import Babel, force_locale, get_locale, get_translations
from jinja2 import Template
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream
from werkzeug.routing import BuildError

LOCALES = {"zh_Hant_TW": "zh-Hant-TW", "en": "en"}
LANGUAGE_NAMES = {"zh_Hant_TW": "中文", "en": "English"}
COOKIE = "mydata_lang"
TRANSLATIONS = Path(__file__).resolve().parent / "translations"


def select_locale() -> str:
    """Pick the locale: the ``lang`` argument, then the cookie, then the default."""
    asked = request.args.get("lang")
    if asked in LOCALES:
        g.mydata_new_locale = asked
        return asked
    remembered = request.cookies.get(COOKIE)
    if remembered in LOCALES:
        return remembered
    return str(current_app.config["MYDATA_DEFAULT_LOCALE"])


def browser_chose_locale() -> bool:
    """Tell whether this browser chose a language itself (the ``lang`` argument or the cookie)."""
    return request.args.get("lang") in LOCALES or request.cookies.get(COOKIE) in LOCALES


def choose_locale(locale: str) -> None:
    """Make *locale* this browser's language from this response on (account settings, login)."""
    if locale in LOCALES:
        g.mydata_new_locale = locale


def remember_locale(response: Response) -> Response:
    """Keep an explicit language choice in a cookie for a year."""
    chosen = g.pop("mydata_new_locale", None)
    if chosen:
        response.set_cookie(
            COOKIE,
            chosen,
            max_age=365 * 24 * 3600,
            samesite="Lax",
            httponly=True,
            secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        )
    return response


def request_translations() -> NullTranslations:
    """Return this request's translations, kept where Flask-Babel keeps them for the request.

    ``babel_translations`` on Flask-Babel's request namespace is the slot that its ``refresh()``
    and ``force_locale()`` clear and restore, so a change of language within a request is seen.
    """
    context = g.get("_flask_babel")
    cached: NullTranslations | None = getattr(context, "babel_translations", None)
    if cached is None:
        cached = get_translations()
        context = g.get("_flask_babel")
        if context is not None:
            context.babel_translations = cached
    return cached


def html_lang() -> str:
    """Return the BCP 47 tag for the ``lang`` attribute of the page."""
    return LOCALES.get(str(get_locale()), "zh-Hant-TW")


def this_page() -> str:
    """Return the path of the current page, rebuilt from its route, never copied from the request.

    The raw path is the visitor's to choose: ``/%5Cevil.example`` would make a link to
    ``/\\evil.example``, which browsers follow to ``//evil.example``. A request that matched no route
    (a 404, a 405) has no page of its own: its links go home.
    """
    home = url_for("web.index")
    if request.url_rule is None or request.endpoint is None:
        return home
    try:
        path = url_for(request.endpoint, **(request.view_args or {}))
    except BuildError:
        return home
    # A path argument could still begin with a slash: never hand out a protocol-relative link.
    return home if path.startswith(("//", "/\\")) else path


def switch_links() -> list[dict[str, str | bool]]:
    """Return one link per language for the switch, keeping the current page and its arguments."""
    current = str(get_locale())
    page = this_page()
    kept = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    links: list[dict[str, str | bool]] = []
    for code, name in LANGUAGE_NAMES.items():
        links.append(
            {
                "code": code,
                "tag": LOCALES[code],
                "name": name,
                "url": f"{page}?{urlencode([*kept, ('lang', code)])}",
                "current": code == current,
            }
        )
    return links


class ConstantTranslations(Extension):
    """Translate ``_("a constant")`` in a template when it is compiled, for the environment's language.

    A page has dozens of constant texts; translated at run time, each is a call through Jinja's
    context, the i18n extension and Flask-Babel. Compiled in, it is template data. The result is
    what the run-time ``_`` gives (the i18n extension's newstyle gettext): the translation, marked
    safe, with ``%%`` read as ``%``. A text with arguments, ``ngettext`` and ``{% trans %}`` stay
    run-time calls.
    """

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        """Replace ``_("text")`` by ``("translated text"|safe)``."""
        translations: NullTranslations | None = getattr(self.environment, "constant_translations", None)
        tokens = list(stream)
        i = 0
        while i < len(tokens):
            token = tokens[i]
            call = [t.type for t in tokens[i + 1 : i + 4]] == ["lparen", "string", "rparen"]
            attribute = i > 0 and tokens[i - 1].type == "dot"
            if token.type == "name" and token.value in ("_", "gettext") and call and not attribute:
                translated = _translated(translations, tokens[i + 2].value)
                if translated is not None:
                    line = token.lineno
                    yield Token(line, "lparen", "(")
                    yield Token(line, "string", translated)
                    yield Token(line, "pipe", "|")
                    yield Token(line, "name", "safe")
                    yield Token(line, "rparen", ")")
                    i += 4
                    continue
            yield token
            i += 1


def _translated(translations: NullTranslations | None, text: str) -> str | None:
    """Return what newstyle gettext gives for *text* without arguments, or None if it would fail."""
    if translations is None:
        return None
    try:
        return str(translations.ugettext(text) % {})
    except (TypeError, ValueError, KeyError):
        return None  # left to run time, which fails (or not) the same way it always did


class LocalizedEnvironment(Environment):
    """Flask's template environment, which compiles each template once per language.

    Every template is looked up in an overlay of this environment for the request's language
    (shared globals and filters, its own cache), where :class:`ConstantTranslations` compiles the
    constant texts in that language. Outside a request it is the default language.
    """

    constant_translations: NullTranslations | None = None
    _overlays: dict[str, Environment] | None = None
    _overlays_lock = threading.Lock()

    def get_template(
        self,
        name: str | Template,
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        """Load *name* from the current language's overlay."""
        overlay = self._for_language()
        if overlay is self:
            return super().get_template(name, parent, globals)
        return overlay.get_template(name, parent, globals)

    def select_template(
        self,
        names: Iterable[str | Template],
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        """Load the first of *names* that exists from the current language's overlay."""
        overlay = self._for_language()
        if overlay is self:
            return super().select_template(names, parent, globals)
        return overlay.select_template(names, parent, globals)

    def _for_language(self) -> Environment:
        if self.constant_translations is not None or not has_app_context():
            return self  # an overlay already (or no language to compile for)
        try:
            chosen = get_locale()
        except RuntimeError:  # outside a request, no language forced: translated at run time, as ever
            return self
        locale = str(chosen or current_app.config["MYDATA_DEFAULT_LOCALE"])
        overlays = self._overlays
        if overlays is not None and locale in overlays:
            return overlays[locale]
        with self._overlays_lock:
            if self._overlays is None:
                self._overlays = {}
            if locale not in self._overlays:
                with force_locale(locale):
                    translations = get_translations()
                overlay = self.overlay(extensions=[ConstantTranslations])
                overlay.constant_translations = translations
                self._overlays[locale] = overlay
            return self._overlays[locale]


def init_app(app: Flask) -> None:
    """Install Flask-Babel and the language switch."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    if not isinstance(app.jinja_env, LocalizedEnvironment):
        raise RuntimeError("set app.jinja_environment = LocalizedEnvironment before the environment is first used")
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["MYDATA_DEFAULT_LOCALE"]
    app.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Taipei"
    Babel(app, locale_selector=select_locale)
    # Templates translate through the request's translations, looked up once per request: a page
    # has dozens of strings, and Flask-Babel's own callables look the translations up for each.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # from the i18n extension
        gettext=lambda string: request_translations().ugettext(string),
        ngettext=lambda singular, plural, n: request_translations().ungettext(singular, plural, n),
        newstyle=True,
    )
    app.after_request(remember_locale)
    app.jinja_env.globals.update(html_lang=html_lang, language_links=switch_links)
