"""The API reference at /docs: a page of the platform that renders /openapi.json with Swagger UI served locally."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from flask.testing import FlaskClient

from mydata.api_reference import SWAGGER_UI_VERSION

HEADINGS = {"en": "API reference", "zh_Hant_TW": "API 參考文件"}


class Links(HTMLParser):
    """Collect every URL a page loads or links to (src, href), and its scripts' and stylesheets' URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name in ("src", "href", "data-spec", "action"):
            if attributes.get(name):
                self.urls.append(str(attributes[name]))
        if tag == "script":
            if attributes.get("src"):
                self.scripts.append(str(attributes["src"]))
            else:
                self.inline_scripts += 1
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(str(attributes["href"]))
        if attributes.get("style") is not None:
            raise AssertionError(f"an inline style on <{tag}>")


def links_of(client: FlaskClient, lang: str) -> Links:
    response = client.get(f"/docs?lang={lang}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    parser = Links()
    parser.feed(response.get_data(as_text=True))
    return parser


@pytest.mark.parametrize("lang", ["en", "zh_Hant_TW"])
def test_the_reference_page_answers_in_both_languages(client: FlaskClient, lang: str) -> None:
    response = client.get(f"/docs?lang={lang}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"<h1>{HEADINGS[lang]}</h1>" in page
    assert f'lang="{"en" if lang == "en" else "zh-Hant-TW"}"' in page
    assert 'data-spec="/openapi.json"' in page  # what the viewer renders
    assert 'href="/openapi.json"' in page  # and a plain link to the document for those who want the file


@pytest.mark.parametrize("lang", ["en", "zh_Hant_TW"])
def test_the_page_loads_nothing_from_another_host_and_no_inline_script(client: FlaskClient, lang: str) -> None:
    links = links_of(client, lang)
    assert links.inline_scripts == 0  # script-src 'self'
    elsewhere = [url for url in links.urls if url.startswith(("http://", "https://", "//"))]
    assert elsewhere == []
    assert f"/docs/assets/{SWAGGER_UI_VERSION}/swagger-ui-bundle.js" in links.scripts
    assert "/static/js/api-reference.js" in [url.split("?")[0] for url in links.scripts]
    assert f"/docs/assets/{SWAGGER_UI_VERSION}/swagger-ui.css" in links.stylesheets


def test_the_page_keeps_the_platform_policy(client: FlaskClient) -> None:
    response = client.get("/docs")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy
    assert response.headers["Cache-Control"] == "no-store"


def test_every_asset_the_page_uses_answers_with_its_type_and_may_be_kept(client: FlaskClient) -> None:
    links = links_of(client, "en")
    expected = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",)}
    assets = [url for url in links.scripts + links.stylesheets if url.startswith("/docs/assets/")]
    assert len(assets) == 2
    for url in assets:
        response = client.get(url)
        size = len(response.get_data())
        response.close()  # the file it streams
        assert size > 10_000, url
        assert response.status_code == 200, url
        assert response.mimetype in expected["." + url.rsplit(".", 1)[1]], url
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        # The version is in the URL, so a browser may keep the file for a year.
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable", url


def test_the_licence_of_swagger_ui_is_served_and_linked(client: FlaskClient) -> None:
    links = links_of(client, "en")
    licence = f"/docs/assets/{SWAGGER_UI_VERSION}/LICENSE"
    assert licence in links.urls
    response = client.get(licence)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "Apache License" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path",
    [
        f"/docs/assets/{SWAGGER_UI_VERSION}/index.html",  # the package's demo page, pointing at the petstore
        f"/docs/assets/{SWAGGER_UI_VERSION}/swagger-ui-bundle.js.map",
        f"/docs/assets/{SWAGGER_UI_VERSION}/swagger-initializer.js",
        f"/docs/assets/{SWAGGER_UI_VERSION}/..%2F..%2F__init__.py",
        "/docs/assets/0.0.1/swagger-ui-bundle.js",  # another version: not what this platform serves
    ],
)
def test_nothing_else_of_the_package_is_served(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"  # the platform's friendly page
