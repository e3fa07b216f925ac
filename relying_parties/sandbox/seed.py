"""`mydata sandbox seed`: the sandbox bank and school, their services, clients and keys (DESIGN §5.2).

Idempotent: a second run changes nothing, except what follows from the host (the clients' redirect
URIs follow the issuer) and from the key files (a client's JWKS follows its key file). Operators'
approvals and suspensions are left as they are. Runs after the providers' seeding: the services
name datasets of the sandbox catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from identity.oauth import clients as oauth_clients
from identity.oauth.models import OAuthClient
from mydata.db import UnitOfWork
from relying_parties import registration, services
from relying_parties.models import APPROVED, Organisation, Service
from relying_parties.sandbox.keys import ensure_client_keys

ACTOR = "sandbox seed"


@dataclass(frozen=True)
class SandboxService:
    """A sandbox relying party's service."""

    id: str
    name_zh: str
    name_en: str
    purpose_zh: str
    purpose_en: str
    purpose_code: str
    required_datasets: tuple[str, ...]
    optional_datasets: tuple[str, ...]
    retention_days: int


@dataclass(frozen=True)
class SandboxRelyingParty:
    """A sandbox organisation with one web client and one service."""

    id: str
    name_zh: str
    name_en: str
    type: str
    registration_number: str
    contact_name: str
    contact_email: str
    contact_phone: str
    client_id: str
    # Under the issuer: where the sandbox RP app lives and where the platform sends the browser back.
    start_path: str
    callback_path: str
    service: SandboxService

    def redirect_uri(self, issuer: str) -> str:
        """Return the client's redirect URI under *issuer*."""
        return issuer.rstrip("/") + self.callback_path


RELYING_PARTIES = (
    SandboxRelyingParty(
        id="sandbox-bank",
        name_zh="沙盒銀行",
        name_en="Sandbox Bank",
        type="bank",
        registration_number="90000001",
        contact_name="沙盒銀行數位金融處",
        contact_email="mydata@sandbox-bank.example",
        contact_phone="+886 2 2345 6789",
        client_id="sandbox-bank-web",
        start_path="/sandbox/bank/",
        callback_path="/sandbox/bank/callback",
        service=SandboxService(
            id="sandbox-bank.credit-card",
            name_zh="信用卡線上申辦",
            name_en="Credit card application",
            purpose_zh="審核信用卡線上申請：確認申請人身分、戶籍、所得及工作資料，以核定信用額度。",
            purpose_en="To assess an online credit card application: the applicant's identity, household, "
            "income and employment, to set the credit limit.",
            # 個人資料保護法之特定目的 067: 信用卡、現金卡、轉帳卡或電子票證業務
            purpose_code="067",
            required_datasets=("household.registration", "tax.income", "labor.insurance"),
            optional_datasets=(),
            retention_days=5 * 365,
        ),
    ),
    SandboxRelyingParty(
        id="sandbox-school",
        name_zh="沙盒高中",
        name_en="Sandbox Senior High School",
        type="school",
        registration_number="90000006",
        contact_name="沙盒高中學務處",
        contact_email="mydata@sandbox-school.example",
        contact_phone="+886 4 2345 6789",
        client_id="sandbox-school-web",
        start_path="/sandbox/school/",
        callback_path="/sandbox/school/callback",
        service=SandboxService(
            id="sandbox-school.tuition-waiver",
            name_zh="中低收入戶學雜費減免",
            name_en="Tuition waiver for low-income households",
            purpose_zh="審核學生之中低收入戶學雜費減免資格：確認戶內成員及家庭所得與財產。",
            purpose_en="To check a student's eligibility for the tuition waiver of low- and middle-low-income "
            "households: the household's members, income and property.",
            # 個人資料保護法之特定目的 109: 教育或訓練行政
            purpose_code="109",
            required_datasets=("household.registration", "tax.income"),
            optional_datasets=("tax.property",),
            retention_days=3 * 365,
        ),
    ),
)


def seed_sandbox_relying_parties(uow: UnitOfWork, *, keys_dir: Path, issuer: str) -> None:
    """Register (or bring up to date) the sandbox relying parties; their apps live under *issuer*."""
    for party in RELYING_PARTIES:
        _seed_organisation(uow, party)
        _seed_service(uow, party)
        _seed_client(uow, party, keys_dir, issuer)


def _seed_organisation(uow: UnitOfWork, party: SandboxRelyingParty) -> None:
    if uow.session.get(Organisation, party.id) is not None:
        return
    services.register_organisation(
        uow,
        organisation_id=party.id,
        name_zh=party.name_zh,
        name_en=party.name_en,
        organisation_type=party.type,
        registration_number=party.registration_number,
        contacts=[{"name": party.contact_name, "email": party.contact_email, "phone": party.contact_phone}],
        actor=ACTOR,
        status=APPROVED,
    )


def _seed_service(uow: UnitOfWork, party: SandboxRelyingParty) -> None:
    service = party.service
    if uow.session.get(Service, service.id) is not None:
        return
    organisation = services.get_organisation(uow, party.id)
    services.define_service(
        uow,
        organisation_id=party.id,
        service_id=service.id,
        name_zh=service.name_zh,
        name_en=service.name_en,
        purpose_zh=service.purpose_zh,
        purpose_en=service.purpose_en,
        purpose_code=service.purpose_code,
        required_datasets=service.required_datasets,
        optional_datasets=service.optional_datasets,
        retention_days=service.retention_days,
        actor=ACTOR,
        # An operator who suspended the organisation decides about its services too.
        status=APPROVED if organisation.status == APPROVED else "pending",
    )


def _seed_client(uow: UnitOfWork, party: SandboxRelyingParty, keys_dir: Path, issuer: str) -> None:
    jwks = ensure_client_keys(keys_dir, party.id).public_jwks()
    redirect_uris = [party.redirect_uri(issuer)]
    client = uow.session.get(OAuthClient, party.client_id)
    if client is None:
        if services.get_organisation(uow, party.id).status != APPROVED:
            return  # suspended by an operator: no new client until it is approved again
        registration.register_organisation_client(
            uow,
            party.id,
            name=party.name_zh,
            jwks=jwks,
            redirect_uris=redirect_uris,
            sandbox=True,
            sandbox_origin=issuer,
            client_id=party.client_id,
        )
    elif client.jwks != jwks or client.redirect_uris != redirect_uris:
        oauth_clients.update_client(
            uow,
            party.client_id,
            jwks=jwks if client.jwks != jwks else None,
            redirect_uris=redirect_uris if client.redirect_uris != redirect_uris else None,
            sandbox=True,
            require_encryption_key=True,
            sandbox_origin=issuer,
        )
