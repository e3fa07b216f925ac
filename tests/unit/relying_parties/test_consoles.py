"""The staff consoles' doors (issue 13, "Roles everywhere" and acceptance 3): who gets in, who is sent
to log in or step up, who is refused, and that a member sees only their own organisation or agency."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import AnyConverter, BaseConverter, IntegerConverter

from identity.services import grant_role
from mydata.clock import FrozenClock
from mydata.db import get_db
from tests.factories.identity import LoginAs, form_token, make_citizen, text
from tests.unit.relying_parties.conftest import BANK, make_organisation, make_service

pytestmark = pytest.mark.db

#: Each console's pages (issue 13): every one passes the same door.
CONSOLE_PAGES = {
    "operator": [
        "/console/operator",
        "/console/operator/organisations",
        "/console/operator/services",
        "/console/operator/providers",
        "/console/operator/datasets",
        "/console/operator/schemas",
        "/console/operator/decisions",
        "/console/operator/statistics",
        "/console/operator/ledger",
        "/console/operator/keys",
    ],
    "agency": [
        "/console/agency",
        "/console/agency/providers/new",
        "/console/agency/providers/moi-household",
        "/console/agency/datasets/new",
        "/console/agency/datasets/household.registration",
        "/console/agency/health",
        "/console/agency/usage",
    ],
    "rp": [
        "/console/rp",
        "/console/rp/clients",
        "/console/rp/services",
        "/console/rp/initial-access-token",
        "/console/rp/transactions",
    ],
}
ROLES = {
    "operator": ("operator", "platform"),
    "agency": ("agency_officer", "moi-household"),
    "rp": ("rp_developer", BANK),
}
OTHER_BANK = "other-bank"
#: How an account with no role learns to apply as an organisation: the refusal and the console list say it.
APPLY_LINK = 'href="/console/rp/apply"'
APPLY_WORDS = {
    "en": "If you want to receive citizens' data for your organisation",
    "zh_Hant_TW": "如果您想為您的機構接收民眾的資料",
}


@pytest.fixture
def staff(app: Flask, clock: FrozenClock, catalogue: None) -> None:
    """Two approved banks with a service each; 王小明 is a developer of the test bank only."""
    with app.app_context(), get_db().unit_of_work() as uow:
        make_organisation(uow)
        make_service(uow)
        make_organisation(uow, OTHER_BANK, registration_number="04595257")
        make_service(uow, OTHER_BANK, "mortgages")
        uow.commit()


def grant(app: Flask, clock: FrozenClock, national_id: str, role: str, scope: str) -> None:
    with app.app_context(), get_db().unit_of_work() as uow:
        citizen = make_citizen(uow, national_id, clock.now())
        grant_role(uow, citizen.id, role, scope, clock.now())


def all_pages() -> list[tuple[str, str]]:
    return [(console, path) for console, paths in CONSOLE_PAGES.items() for path in paths]


@pytest.mark.parametrize(("console", "path"), all_pages())
def test_an_anonymous_visitor_is_sent_to_log_in(client: FlaskClient, staff: None, console: str, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 303
    target = urlsplit(answer.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query)["level"] == ["high"]


@pytest.mark.parametrize(("console", "path"), all_pages())
def test_a_staff_session_at_level_low_is_sent_to_step_up(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None, console: str, path: str
) -> None:
    role, scope = ROLES[console]
    grant(app, clock, "A123456789", role, scope)
    login_as("A123456789", method="nhi_card")
    answer = client.get(path)
    assert answer.status_code == 303
    assert parse_qs(urlsplit(answer.headers["Location"]).query)["level"] == ["high"]


@pytest.mark.parametrize(("console", "path"), all_pages())
def test_an_account_without_the_role_is_refused(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None, console: str, path: str
) -> None:
    # A role of another console opens nothing here.
    other = next(c for c in ROLES if c != console)
    grant(app, clock, "A123456789", *ROLES[other])
    login_as("A123456789")
    for lang, words in (("en", "no role that opens this console"), ("zh_Hant_TW", "沒有開啟這個管理介面的角色")):
        answer = client.get(f"{path}?lang={lang}")
        assert answer.status_code == 403
        assert words in text(answer)
        assert APPLY_LINK in text(answer)
        assert APPLY_WORDS[lang] in text(answer)
    as_json = client.get(path, headers={"Accept": "application/json"})
    assert as_json.status_code == 403
    assert as_json.json is not None
    assert as_json.json["error"] == "not_a_console_member"


@pytest.mark.parametrize(("console", "path"), all_pages())
def test_a_member_gets_in(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None, console: str, path: str
) -> None:
    grant(app, clock, "A123456789", *ROLES[console])
    login_as("A123456789")
    answer = client.get(f"{path}?lang=en")
    assert answer.status_code == 200, text(answer)
    assert "王小明" in text(answer)


def test_a_developer_sees_their_own_organisation_and_not_another(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None
) -> None:
    grant(app, clock, "A123456789", "rp_developer", BANK)
    login_as("A123456789")
    page = text(client.get("/console/rp?lang=en"))
    assert BANK in page
    assert "loans" in page
    assert OTHER_BANK not in page
    assert "mortgages" not in page


def test_an_agency_officer_sees_their_own_agency_only(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None
) -> None:
    grant(app, clock, "F135792464", "agency_officer", "moi-household")
    login_as("F135792464")
    page = text(client.get("/console/agency?lang=en"))
    assert "household.registration" in page
    assert "tax.income" not in page  # another agency's dataset


def test_the_console_list_shows_the_consoles_of_the_accounts_roles(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None
) -> None:
    login_as("A123456789")
    grant(app, clock, "A123456789", "rp_developer", BANK)
    page = client.get("/console?lang=en")
    assert page.status_code == 200
    assert 'href="/console/rp"' in page.get_data(as_text=True)
    assert 'href="/console/operator"' not in page.get_data(as_text=True)


def test_the_console_list_of_an_account_with_no_role_says_so_and_links_the_application(
    client: FlaskClient, login_as: LoginAs, staff: None
) -> None:
    # Where a new relying party starts: a page, not a refusal, in both languages.
    login_as("A123456789")
    for lang, words in (("en", "has no staff role yet"), ("zh_Hant_TW", "還沒有工作人員角色")):
        page = client.get(f"/console?lang={lang}")
        assert page.status_code == 200
        assert words in text(page)
        assert APPLY_LINK in text(page)
        assert APPLY_WORDS[lang] in text(page)
        assert 'href="/console/operator"' not in text(page)
        assert 'href="/console/rp"' not in text(page)


def test_the_console_list_sends_an_anonymous_visitor_to_log_in(client: FlaskClient, staff: None) -> None:
    answer = client.get("/console")
    assert answer.status_code == 303
    assert urlsplit(answer.headers["Location"]).path == "/login"


# -- every route of every console, whatever its method (acceptance 3) -----------------------------------

#: Console routes with a door of their own: applying as an organisation needs a login but no role yet.
OWN_DOOR = {"console_home", "console_rp_apply"}


def _value(converter: BaseConverter) -> object:
    """Return a value the converter accepts: one of an ``any``'s words, a number, or a made-up id."""
    if isinstance(converter, AnyConverter):
        return sorted(converter.items)[0]
    return 1 if isinstance(converter, IntegerConverter) else "x"


def console_routes(app: Flask) -> list[tuple[str, str, str]]:
    """Return (console, method, path) for every console route, path parameters filled with a seeded id."""
    routes = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.rsplit(".", 1)[0]
        if not blueprint.startswith("console_") or blueprint in OWN_DOOR:
            continue
        console = blueprint.removeprefix("console_").split("_", 1)[0]
        values = {name: _value(converter) for name, converter in rule._converters.items()}
        path = app.url_map.bind("localhost").build(rule.endpoint, values, method=next(iter(rule.methods or ())))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((console, method, path))
    return routes


def test_every_console_route_passes_the_door(
    app: Flask, client: FlaskClient, clock: FrozenClock, login_as: LoginAs, staff: None
) -> None:
    routes = console_routes(app)
    assert {console for console, _, _ in routes} == set(ROLES)
    assert len(routes) > 30
    token = form_token(client, "/login")

    def call(method: str, path: str) -> int:
        data = {"csrf_token": token} if method == "POST" else None
        return client.open(path, method=method, data=data).status_code

    anonymous = {(method, path): call(method, path) for _, method, path in routes}
    assert set(anonymous.values()) == {303}, {k: v for k, v in anonymous.items() if v != 303}

    grant(app, clock, "A123456789", "counter", BANK)  # a staff role, of none of these consoles
    login_as("A123456789")
    token = form_token(client, "/me")
    refused = {(method, path): call(method, path) for _, method, path in routes}
    assert set(refused.values()) == {403}, {k: v for k, v in refused.items() if v != 403}

    login_as("A123456789", method="nhi_card")
    token = form_token(client, "/me")
    for console in ROLES:
        grant(app, clock, "A123456789", *ROLES[console])
    low = {(method, path): call(method, path) for _, method, path in routes}
    assert set(low.values()) == {303}, {k: v for k, v in low.items() if v != 303}
