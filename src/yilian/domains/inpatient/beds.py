"""The bed register kept in step with the beds' Locations (a store write hook).

A bed row says where the bed is (ward, campus, hospital, the ward's department) and its
state. Any write of a Location reaches it in the writing transaction: a bed written, a room
or ward moved or renamed (its beds re-placed), a Location deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select

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
    for item in written:
        kind = repo.physical_type(item.resource) if item.resource is not None else None
        if item.resource is None or kind == PhysicalType.BED:
            beds[item.res_id] = item.resource
        else:
            # A room or ward (or anything beds may hang from): re-place the beds below it,
            # and the campus's beds still without a ward (written before their ward was).
            campus = repo.reference_id(item.resource.get("managingOrganization"),
                                       "Organization")
            for bed_id in _beds_below(conn, item.res_id, campus):
                beds.setdefault(bed_id, repo.read_in(conn, "Location", bed_id))
            conn.execute(delete(inpatient_bed).where(inpatient_bed.c.bed_id == item.res_id))
    if not beds:
        return
    conn.execute(delete(inpatient_bed).where(inpatient_bed.c.bed_id.in_(list(beds))))
    rows = [_row(conn, bed) for bed in beds.values() if bed is not None]
    if rows:
        conn.execute(insert(inpatient_bed), rows)


def _beds_below(conn: Connection, location_id: str, campus_id: str | None) -> list[str]:
    bed = inpatient_bed.c
    placeless = bed.ward_id.is_(None) & (bed.campus_id == campus_id) if campus_id \
        else bed.ward_id.is_(None)
    return list(conn.scalars(select(bed.bed_id).where(
        (bed.parent_id == location_id) | (bed.ward_id == location_id) | placeless)))


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
        "bed_id": bed["id"], "name": str(bed.get("name", bed["id"]))[:200],
        "parent_id": repo.reference_id(bed.get("partOf"), "Location"),
        "ward_id": place.ward_id if place else None,
        "campus_id": place.campus_id if place else
        repo.reference_id(bed.get("managingOrganization"), "Organization"),
        "hospital_id": place.hospital_id if place else None,
        "department_id": department,
        # A bed out of service (inactive, suspended) takes no one: closed, on the board too.
        "status": BedStatus.of(bed).value
        if bed.get("status") not in ("inactive", "suspended") else BedStatus.CLOSED.value,
    }
