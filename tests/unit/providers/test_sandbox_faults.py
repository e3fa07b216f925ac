"""Fault descriptions: the default file (persona 5), validation, and which fault applies."""

from __future__ import annotations

from pathlib import Path

import pytest

from mydata.config import ROOT
from providers.sandbox.faults import Fault, FaultKind, FaultTable, InvalidFault, load_faults, parse_fault

HUANG = "H120000004"


def test_the_default_file_gives_persona_5_its_faults() -> None:
    faults = {(f.national_id, f.dataset): f.kind for f in load_faults(ROOT / "config" / "sandbox-faults.toml")}
    assert faults == {
        (HUANG, "household.registration"): FaultKind.TIMEOUT,
        (HUANG, "tax.income"): FaultKind.ERROR,
        (HUANG, "labor.insurance"): FaultKind.BAD_SIGNATURE,
    }


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not a table", "an object"),
        ({"national_id": "nobody", "dataset": "tax.income", "kind": "error"}, "national_id"),
        ({"national_id": "*", "dataset": "tax.everything", "kind": "error"}, "dataset"),
        ({"national_id": "*", "dataset": "*", "kind": "explode"}, "kind"),
        ({"national_id": "*", "dataset": "*", "kind": "delay", "delay_ms": -1}, "delay_ms"),
        ({"national_id": "*", "dataset": "*", "kind": "delay", "delay_ms": True}, "delay_ms"),
        ({"national_id": "*", "dataset": "*", "kind": "busy", "retry_after": "soon"}, "retry_after"),
        ({"national_id": "*", "dataset": "*", "kind": "error", "colour": "red"}, "unknown fault field"),
    ],
)
def test_bad_fault_descriptions_say_what_is_wrong(document: object, reason: str) -> None:
    with pytest.raises(InvalidFault, match=reason):
        parse_fault(document)


def test_a_bad_file_names_the_fault(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text('[[fault]]\nnational_id = "*"\ndataset = "*"\nkind = "error"\n\n[[fault]]\nkind = "nope"\n')
    with pytest.raises(InvalidFault, match="fault 2 of"):
        load_faults(path)
    path.write_text("something = 1\n")
    with pytest.raises(InvalidFault, match=r"\[\[fault\]\]"):
        load_faults(path)
    path.write_text("[[fault]\n")
    with pytest.raises(InvalidFault, match="not valid TOML"):
        load_faults(path)
    with pytest.raises(InvalidFault, match="not found"):
        load_faults(tmp_path / "missing.toml")


def test_the_most_specific_fault_applies() -> None:
    table = FaultTable(
        [
            Fault("*", "*", FaultKind.DELAY, delay_ms=10),
            Fault("*", "tax.income", FaultKind.ERROR),
            Fault(HUANG, "*", FaultKind.BUSY),
            Fault(HUANG, "tax.income", FaultKind.BAD_SIGNATURE),
        ]
    )
    assert table.find(HUANG, "tax.income").kind is FaultKind.BAD_SIGNATURE  # type: ignore[union-attr]
    assert table.find(HUANG, "nhi.enrolment").kind is FaultKind.BUSY  # type: ignore[union-attr]
    assert table.find("A123456789", "tax.income").kind is FaultKind.ERROR  # type: ignore[union-attr]
    assert table.find("A123456789", "nhi.enrolment").kind is FaultKind.DELAY  # type: ignore[union-attr]
    assert table.remove("*", "*")
    assert table.find("A123456789", "nhi.enrolment") is None
    assert len(table.all()) == 3
