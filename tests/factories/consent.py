"""What tests of the consent lifecycle ask citizens for."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from consent.consents import ServiceTerms
from mydata.db import UnitOfWork
from providers.protocol import FetchResult, Outcome

#: The sandbox bank's credit-card service, with one optional dataset.
TERMS = ServiceTerms(
    organisation_id="sandbox-bank",
    organisation_name="沙盒銀行",
    service_id="sandbox-bank.credit-card",
    purpose="信用卡線上申辦：核對身分與收入",
    retention="P1Y",
    level="substantial",
    datasets_required=("household.registration", "tax.income"),
    datasets_optional=("tax.property",),
)

DATA = {"as_of": "2026-05-01", "insured": {"name": "王小明", "monthly_premium": 990}, "note": "=HYPERLINK()"}


def fake_fetcher(  # type: ignore[no-untyped-def]
    outcomes: Mapping[str, Outcome] | None = None,
    data: Callable[[str, str], object] | None = None,
    provider: str = "nhia",
    generated_at: str = "2026-05-01T08:00:00Z",
):
    """Return a fetcher answering every dataset with DATA, or *data*(national_id, dataset), or the outcome
    given, recording each call."""
    calls: list[dict[str, object]] = []

    def fetch(
        uow: UnitOfWork, *, national_id: str, datasets: Sequence[str], txn: str, purpose: str
    ) -> dict[str, FetchResult]:
        calls.append({"national_id": national_id, "datasets": list(datasets), "txn": txn, "purpose": purpose})
        results = {}
        for dataset in datasets:
            outcome = (outcomes or {}).get(dataset, Outcome.OK)
            ok = outcome == Outcome.OK
            results[dataset] = FetchResult(
                dataset=dataset,
                provider=provider,
                outcome=outcome,
                provider_jws=f"e30.{dataset}.sig" if ok else None,
                data=(DATA if data is None else data(national_id, dataset)) if ok else None,
                generated_at=generated_at if ok else None,
            )
        return results

    fetch.calls = calls  # type: ignore[attr-defined]
    return fetch
