"""The bed register kept in step with the beds' Locations (a store write hook).

A bed row says where the bed is (ward, campus, hospital, the ward's department) and its
state. Any write of a Location reaches it in the writing transaction: a bed written, a room
or ward moved or renamed (its beds re-placed), a Location deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from yilian.domains.inpatient import repository as repo
from yilian.domains.inpatient.codes import BedStatus
from yilian.domains.inpatient.tables import inpatient_bed
from yilian.domains.network.codes import WARD_RESTRICTION, PhysicalType
from yilian.fhir.store.sql import WriteHook, Written

JsonObject = dict[str, Any]


def register_hooks(hooks: dict[str, list[WriteHook]]) -> None:
    hooks.setdefault("Location", []).append(project_locations)


def project_locations(conn: Connection, written: Sequence[Written]) -> None:
    beds: dict[str, JsonObject | None] = {}
    replaced: set[str] = set()  # beds placed again whatever their row says
    for item in written:
        kind = repo.physical_type(item.resource) if item.resource is not None else None
        if kind == PhysicalType.BED:
            beds[item.res_id] = item.resource
            continue
        # Deleted, or a room or ward (or anything beds may hang from): its own row goes (if
        # it was a bed), and the beds below it are placed again; for one written, also the
        # campus's beds still without a ward (written before their ward was).
        campus = None if item.resource is None else repo.reference_id(
            item.resource.get("managingOrganization"), "Organization")
        for bed_id in _beds_below(conn, item.res_id, campus,
                                  placeless=item.resource is not None):
            if bed_id != item.res_id:
                beds.setdefault(bed_id, repo.read_in(conn, "Location", bed_id))
                replaced.add(bed_id)
        beds.setdefault(item.res_id, None)
    if not beds:
        return
    bed = inpatient_bed.c
    known = {row.bed_id: row for row in conn.execute(
        select(bed.bed_id, bed.parent_id, bed.campus_id, bed.ward_id)
        .where(bed.bed_id.in_(list(beds))))}
    # A bed written where it was (same room or ward, same campus): its state and name
    # change, its place does not (a ward's changes re-place its beds when the ward is
    # written), so its row is updated without walking up to its ward again.
    same_place = [resource for bed_id, resource in beds.items()
                  if resource is not None and bed_id not in replaced
                  and (row := known.get(bed_id)) is not None
                  and row.ward_id is not None and row.parent_id == _parent(resource)
                  and row.campus_id == _campus(resource)]
    if same_place:
        conn.execute(_UPDATE_STATE, [{"bed": r["id"], **_state(r)} for r in same_place])
    kept = {r["id"] for r in same_place}
    moved = [bed_id for bed_id in beds if bed_id not in kept]
    if moved:
        conn.execute(delete(inpatient_bed).where(bed.bed_id.in_(moved)))
        rows = [_row(conn, resource) for bed_id in moved
                if (resource := beds[bed_id]) is not None]
        if rows:
            conn.execute(insert(inpatient_bed), rows)


_UPDATE_STATE = (update(inpatient_bed).where(inpatient_bed.c.bed_id == bindparam("bed"))
                 .values(name=bindparam("name"), status=bindparam("status")))


def _parent(bed: JsonObject) -> str | None:
    return repo.reference_id(bed.get("partOf"), "Location")


def _campus(bed: JsonObject) -> str | None:
    return repo.reference_id(bed.get("managingOrganization"), "Organization")


def _state(bed: JsonObject) -> dict[str, Any]:
    return {
        "name": str(bed.get("name", bed["id"]))[:200],
        # A bed out of service (inactive, suspended) takes no one: closed, on the board too.
        "status": BedStatus.of(bed).value
        if bed.get("status") not in ("inactive", "suspended") else BedStatus.CLOSED.value,
    }


def _beds_below(conn: Connection, location_id: str, campus_id: str | None, *,
                placeless: bool) -> list[str]:
    bed = inpatient_bed.c
    below = (bed.parent_id == location_id) | (bed.ward_id == location_id)
    if placeless:
        below |= bed.ward_id.is_(None) & (bed.campus_id == campus_id) if campus_id \
            else bed.ward_id.is_(None)
    return list(conn.scalars(select(bed.bed_id).where(below)))


def _row(conn: Connection, bed: JsonObject) -> dict[str, Any]:
    place = repo.place_in(conn, bed)
    department = None
    if place is not None:
        for rule in place.ward.get("extension", []):
            if rule.get("url") == WARD_RESTRICTION:
                department = next((
                    repo.reference_id(e.get("valueReference"), "HealthcareService")
                    for e in rule.get("extension", []) if e.get("url") == "department"), None)
    return {
        "bed_id": bed["id"], "parent_id": _parent(bed),
        "ward_id": place.ward_id if place else None,
        "campus_id": place.campus_id if place else _campus(bed),
        "hospital_id": place.hospital_id if place else None,
        "department_id": department,
        **_state(bed),
    }
