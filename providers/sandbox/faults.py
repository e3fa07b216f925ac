"""Faults the sandbox agencies inject per persona and dataset, so that every outcome can be shown.

They come from the TOML file named by the ``sandbox_faults_file`` setting (persona 5's faults of
DESIGN §9 by default: config/sandbox-faults.toml) and change at run time through the agencies'
control endpoint (``PUT``/``DELETE /sandbox/faults``).
"""

from __future__ import annotations

import re
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from providers.schemas import DATASET_IDS

ANY = "*"
_NATIONAL_ID = re.compile(r"^[A-Z][0-9]{9}$")
MAX_DELAY_MS = 120_000


class FaultKind(StrEnum):
    """What goes wrong."""

    DELAY = "delay"  # a normal answer, late
    TIMEOUT = "timeout"  # an answer only after the platform has given up
    ERROR = "error"  # HTTP 500
    BUSY = "busy"  # HTTP 503 with Retry-After
    BAD_SIGNATURE = "bad_signature"  # signed by a key the catalogue does not know
    INVALID_DATA = "invalid_data"  # data that breaks the dataset's JSON Schema


class InvalidFault(ValueError):
    """A fault description is incomplete or wrong."""


@dataclass(frozen=True)
class Fault:
    """One fault: for whom (a national ID or ``*``), for which dataset (or ``*``), and what."""

    national_id: str
    dataset: str
    kind: FaultKind
    delay_ms: int = 0
    retry_after: int = 30

    def to_dict(self) -> dict[str, Any]:
        """Return the fault as JSON."""
        return {**asdict(self), "kind": str(self.kind)}


def parse_fault(document: object) -> Fault:
    """Return the fault a JSON or TOML table describes; raise :class:`InvalidFault` saying what is wrong."""
    if not isinstance(document, Mapping):
        raise InvalidFault("a fault is an object with national_id, dataset and kind")
    unknown = set(document) - {"national_id", "dataset", "kind", "delay_ms", "retry_after"}
    if unknown:
        raise InvalidFault(f"unknown fault field(s): {', '.join(sorted(map(str, unknown)))}")
    national_id = document.get("national_id")
    if not isinstance(national_id, str) or not (national_id == ANY or _NATIONAL_ID.match(national_id)):
        raise InvalidFault('national_id must be a national ID (A123456789) or "*"')
    dataset = document.get("dataset")
    if dataset != ANY and dataset not in DATASET_IDS:
        raise InvalidFault(f'dataset must be one of {", ".join(DATASET_IDS)} or "*"')
    try:
        kind = FaultKind(str(document.get("kind")))
    except ValueError:
        raise InvalidFault(f"kind must be one of {', '.join(FaultKind)}") from None
    delay_ms = document.get("delay_ms", 0)
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or not 0 <= delay_ms <= MAX_DELAY_MS:
        raise InvalidFault(f"delay_ms must be a whole number of milliseconds from 0 to {MAX_DELAY_MS}")
    retry_after = document.get("retry_after", 30)
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or not 0 <= retry_after <= 86_400:
        raise InvalidFault("retry_after must be a whole number of seconds from 0 to 86400")
    assert isinstance(dataset, str)
    return Fault(national_id=national_id, dataset=dataset, kind=kind, delay_ms=delay_ms, retry_after=retry_after)


def load_faults(path: Path) -> list[Fault]:
    """Read the ``[[fault]]`` tables of a TOML file; raise :class:`InvalidFault` naming the bad one."""
    try:
        with path.open("rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise InvalidFault(f"file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidFault(f"{path} is not valid TOML: {exc}") from None
    unknown = set(document) - {"fault"}
    if unknown or not isinstance(document.get("fault", []), list):
        raise InvalidFault(f"{path} may only hold [[fault]] tables")
    faults = []
    for position, table in enumerate(document.get("fault", []), start=1):
        try:
            faults.append(parse_fault(table))
        except InvalidFault as exc:
            raise InvalidFault(f"fault {position} of {path}: {exc}") from None
    return faults


class FaultTable:
    """The faults in force, keyed by (national ID, dataset); safe to use from several threads."""

    def __init__(self, faults: list[Fault] | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[tuple[str, str], Fault] = {}
        for fault in faults or []:
            self.put(fault)

    def put(self, fault: Fault) -> None:
        """Set a fault, replacing the one for the same person and dataset."""
        with self._lock:
            self._faults[(fault.national_id, fault.dataset)] = fault

    def remove(self, national_id: str, dataset: str) -> bool:
        """Remove the fault for exactly this person and dataset; tell whether there was one."""
        with self._lock:
            return self._faults.pop((national_id, dataset), None) is not None

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def find(self, national_id: str, dataset: str) -> Fault | None:
        """Return the fault that applies, the most specific first."""
        with self._lock:
            for key in ((national_id, dataset), (national_id, ANY), (ANY, dataset), (ANY, ANY)):
                fault = self._faults.get(key)
                if fault is not None:
                    return fault
        return None

    def all(self) -> list[Fault]:
        """Return every fault in force."""
        with self._lock:
            return [self._faults[key] for key in sorted(self._faults)]
