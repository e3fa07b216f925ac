"""Languages: Traditional Chinese (zh_Hant_TW) by default, English on request.

The choice is made with ``?lang=en`` or ``?lang=zh_Hant_TW`` (the switch on every page) and kept in
a cookie. Browsers' Accept-Language is deliberately not used: the service is Taiwanese first, and a
citizen on a borrowed English-language computer must still see Chinese unless they switch.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from babel.support import NullTranslations
from flask import Flask, Response, current_app, g, request, url_for
from flask_babel import Babel, get_locale, get_translations
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


def init_app(app: Flask) -> None:
    """Install Flask-Babel and the language switch."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
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
