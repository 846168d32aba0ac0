"""The movement record follows inpatient Encounters written outside the operations.

$admit, $transfer and $discharge keep the record themselves. An Encounter finished,
cancelled or deleted by a plain FHIR write (an integration engine closing a stay) ends its
open bed stay here, in the writing transaction, so the patient is no longer counted in
hospital and may be admitted again. The bed's Location is left as it was written; a bed left
occupied without a stay is freed with $clean.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection

from yilian.domains.inpatient import repository as repo
from yilian.fhir.store.sql import WriteHook, Written
from yilian.kit.clock import utcnow


def register_hooks(hooks: dict[str, list[WriteHook]]) -> None:
    hooks.setdefault("Encounter", []).append(end_stays_of_closed_encounters)


def end_stays_of_closed_encounters(conn: Connection, written: Sequence[Written]) -> None:
    for item in written:
        if item.resource is not None and item.resource.get("status") == "in-progress":
            continue
        stay = repo.open_stay_of_encounter(conn, item.res_id)
        if stay is not None:
            repo.end_stay(conn, stay.pk, utcnow(), "ended")
