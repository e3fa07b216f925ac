"""No page links off the platform through its own address (issue 10, item 5: the language switch).

``GET /%5Cevil.example`` once rendered a 404 page whose language link was ``/\\evil.example?lang=en``,
which browsers follow to ``//evil.example``. This crawls every page a visitor can reach, in both
languages, and checks that no ``href``, ``action`` or ``src`` can leave the origin that way.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories.identity import LoginAs

pytestmark = pytest.mark.db

#: Paths that try to make the platform's own links point elsewhere.
HOSTILE_PATHS = (
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "//evil.example",
    "/%2F%2Fevil.example",
    "/%2F%5Cevil.example",
    "/%09/evil.example",
    "/%5Cevil.example/page?next=x&lang=zh_Hant_TW",
)
LANGUAGES = ("zh_Hant_TW", "en")
MAX_PAGES = 300
LINK_ATTRIBUTES = {"href", "action", "src", "formaction"}


class _Links(HTMLParser):
    """Collect every URL-valued attribute of a page (entities already decoded by the parser)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls.extend(value for name, value in attrs if name in LINK_ATTRIBUTES and value is not None)


def links(page: str) -> list[str]:
    """Return the URLs a page links to."""
    parser = _Links()
    parser.feed(page)
    return parser.urls


def leaves_the_origin(url: str) -> bool:
    """Tell whether a browser could take *url* (on this origin) to another host.

    Browsers drop tabs and newlines anywhere and leading spaces and control characters, and read
    ``\\`` as ``/`` in http(s) URLs; a percent-encoded slash that a server or proxy decodes does the same.
    """
    for candidate in (url, unquote(url), unquote(unquote(url))):
        cleaned = re.sub(r"[\t\n\r]", "", candidate).lstrip("".join(map(chr, range(0x21)))).replace("\\", "/")
        if cleaned.startswith("//"):
            return True
    return False


@pytest.mark.parametrize(
    ("url", "bad"),
    [
        ("/\\evil.example?lang=en", True),
        ("//evil.example", True),
        ("/%5Cevil.example", True),
        ("/%2F%2Fevil.example", True),
        ("/%252F%252Fevil.example", True),
        ("\t//evil.example", True),
        (" /\\evil.example", True),
        ("/\t/evil.example", True),
        ("/?lang=en", False),
        ("/login?next=%2Fme&lang=en", False),
        ("#main", False),
        ("https://www.example.gov.tw/", False),
    ],
)
def test_the_check_recognises_links_that_leave(url: str, bad: bool) -> None:
    assert leaves_the_origin(url) is bad


def get(client: FlaskClient, path: str) -> TestResponse:
    """GET *path* exactly as a browser sends it (the test client would read ``//host`` as a host)."""
    target = urlsplit(path)
    raw_path = path.split("?", 1)[0]
    return client.get(
        "/", query_string=target.query, environ_overrides={"PATH_INFO": unquote(raw_path), "REQUEST_URI": path}
    )


def get_routes(app: Flask) -> list[str]:
    """Return every GET route that needs no argument."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.arguments and rule.endpoint != "static"
    )


def crawl(client: FlaskClient, starts: list[str], language: str) -> Iterator[tuple[str, str]]:
    """Visit *starts* and every same-origin page they link to; yield (page, link) for each link found."""
    queue = deque(starts)
    seen: set[str] = set()
    while queue and len(seen) < MAX_PAGES:
        path = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        separator = "&" if "?" in path else "?"
        response = get(client, f"{path}{separator}lang={language}")
        if response.mimetype != "text/html":
            response.close()
            continue
        for link in links(response.get_data(as_text=True)):
            yield path, link
            if link.startswith("/") and not leaves_the_origin(link):
                target = urlsplit(link)
                if not target.path.startswith(("/static/", "/logout")):
                    queue.append(target.path + (f"?{target.query}" if target.query else ""))
    assert len(seen) > 5, "the crawl found no pages"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("logged_in", [False, True], ids=["visitor", "citizen"])
def test_no_page_links_off_the_origin(
    app: Flask, client: FlaskClient, login_as: LoginAs, language: str, logged_in: bool
) -> None:
    if logged_in:
        login_as()
    starts = ["/", "/login", "/login?next=%2Fme", *HOSTILE_PATHS, *get_routes(app)]
    leaving = [(page, link) for page, link in crawl(client, starts, language) if leaves_the_origin(link)]
    assert leaving == []


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_the_language_switch_of_an_error_page_goes_home(client: FlaskClient, path: str) -> None:
    response = get(client, path)
    assert response.status_code == 404
    switch = [link for link in links(response.get_data(as_text=True)) if "lang=" in link]
    assert switch
    assert all(link.startswith("/?") and link.endswith("lang=en") for link in switch), switch


def test_the_language_switch_keeps_the_page_and_its_query(client: FlaskClient) -> None:
    page = client.get("/login?next=%2Fme&level=substantial&lang=zh_Hant_TW").get_data(as_text=True)
    switch = [link for link in links(page) if "lang=" in link]
    assert "/login?next=%2Fme&level=substantial&lang=en" in switch
    english = client.get("/login?next=%2Fme&level=substantial&lang=en")
    assert '<html lang="en">' in english.get_data(as_text=True)
