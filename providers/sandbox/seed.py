"""`mydata sandbox seed`: register the sandbox agencies, their providers and the five datasets.

Idempotent: a second run changes nothing, except what follows from the host (the providers' base
URLs follow the issuer) and from the key files (a provider's JWKS follows its key file). Operators'
approvals and suspensions are left as they are.
"""

from __future__ import annotations

from pathlib import Path

from mydata.db import UnitOfWork
from providers import services
from providers.models import ACTIVE, Agency, Dataset, Provider
from providers.sandbox.catalogue import AGENCIES, DATASETS
from providers.sandbox.keys import ensure_agency_key
from providers.schemas import load_schema

ACTOR = "sandbox seed"


def seed_sandbox_catalogue(uow: UnitOfWork, *, keys_dir: Path, agencies_url: str) -> None:
    """Register (or bring up to date) the sandbox catalogue; providers live at ``{agencies_url}/{id}``."""
    session = uow.session
    for agency in AGENCIES:
        if session.get(Agency, agency.id) is None:
            services.register_agency(
                uow, agency_id=agency.id, name_zh=agency.name_zh, name_en=agency.name_en, actor=ACTOR
            )
        key = ensure_agency_key(keys_dir, agency.id)
        base_url = f"{agencies_url.rstrip('/')}/{agency.id}"
        provider = session.get(Provider, agency.id)
        if provider is None:
            services.register_provider(
                uow,
                provider_id=agency.id,
                agency_id=agency.id,
                base_url=base_url,
                jwks=key.jwks(),
                allow_http=True,
                actor=ACTOR,
                status=ACTIVE,
            )
        elif provider.base_url != base_url or provider.jwks != key.jwks():
            services.update_provider(
                uow,
                agency.id,
                base_url=base_url if provider.base_url != base_url else None,
                jwks=key.jwks() if provider.jwks != key.jwks() else None,
                allow_http=True,
                actor=ACTOR,
            )
    for dataset in DATASETS:
        schema = load_schema(dataset.id)
        fields: dict[str, object] = {
            "title_zh": dataset.title_zh,
            "title_en": dataset.title_en,
            "description_zh": dataset.description_zh,
            "description_en": dataset.description_en,
            "min_level": dataset.min_level,
            "citizen_downloadable": dataset.citizen_downloadable,
        }
        if session.get(Dataset, dataset.id) is None:
            services.register_dataset(
                uow,
                dataset_id=dataset.id,
                provider_id=dataset.provider,
                title_zh=dataset.title_zh,
                title_en=dataset.title_en,
                description_zh=dataset.description_zh,
                description_en=dataset.description_en,
                json_schema=schema,
                min_level=dataset.min_level,
                citizen_downloadable=dataset.citizen_downloadable,
                actor=ACTOR,
                status=ACTIVE,
            )
        else:
            services.update_dataset(uow, dataset.id, changes={**fields, "json_schema": schema}, actor=ACTOR)
