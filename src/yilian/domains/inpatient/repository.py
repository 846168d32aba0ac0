"""The inpatient domain's named queries: places of a bed, open stays, inpatient numbers.

Everything here runs inside the caller's transaction (`Context.conn`); staged writes of the
unit of work are flushed before a read so the transaction sees its own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Row, insert, select, update

from yilian.domains.inpatient import census_days
from yilian.domains.inpatient.tables import inpatient_bed_stay, inpatient_counter
from yilian.domains.network.codes import LOCATION_PHYSICAL_TYPE as _PHYSICAL
from yilian.domains.network.codes import PhysicalType, code_in
from yilian.fhir.interactions import Context
from yilian.fhir.store import sql as store
from yilian.kit import jsonfmt
from yilian.kit.clock import DISPLAY_ZONE, utcnow

JsonObject = dict[str, Any]
_MAX_DEPTH = 6  # bed → room → ward → building → site: never deeper in a sane tree


def read(ctx: Context, res_type: str, res_id: str) -> JsonObject | None:
    """The current version of a live resource, or None (the unit's writes flushed first)."""
    if ctx.uow is not None:
        ctx.uow.flush()
    return read_in(ctx.conn, res_type, res_id)


def read_in(conn: Connection, res_type: str, res_id: str) -> JsonObject | None:
    stored = store.read_current(conn, res_type, res_id)
    if stored is None or stored.deleted or stored.content is None:
        return None
    found: JsonObject = jsonfmt.loads(stored.content)
    return found


def read_many(conn: Connection, res_type: str, ids: Sequence[str]) -> dict[str, JsonObject]:
    """Live resources of one type by id (orjson: for what pages show, no decimals kept)."""
    return {res_id: orjson.loads(stored.content)
            for res_id, stored in store.read_current_by_ids(conn, res_type, ids).items()
            if stored.content is not None and not stored.deleted}


def reference_id(value: Any, res_type: str) -> str | None:
    """The id of a relative reference `Type/id` to `res_type` (None for anything else)."""
    if not isinstance(value, dict):
        return None
    reference = value.get("reference")
    if not isinstance(reference, str):
        return None
    kind, _, res_id = reference.partition("/")
    return res_id if kind == res_type and res_id and "/" not in res_id else None


def physical_type(location: JsonObject) -> str | None:
    return code_in(location.get("physicalType"), _PHYSICAL)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a bed is: its ward (with any admission restrictions), campus and hospital."""

    bed: JsonObject
    ward: JsonObject
    campus_id: str  # the campus Organization managing the bed
    hospital_id: str  # the hospital the campus is part of

    @property
    def bed_id(self) -> str:
        return str(self.bed["id"])

    @property
    def ward_id(self) -> str:
        return str(self.ward["id"])

    def label(self) -> str:
        """The bed as a nurse names it: ward, then bed."""
        return f"{self.ward.get('name', self.ward_id)} {self.bed.get('name', self.bed_id)}"


def place_of(ctx: Context, bed: JsonObject) -> Place | None:
    """The bed's ward (up its partOf chain), campus and hospital; None if the bed is not in a
    ward of a campus of a hospital."""
    if ctx.uow is not None:
        ctx.uow.flush()
    return place_in(ctx.conn, bed)


def place_in(conn: Connection, bed: JsonObject) -> Place | None:
    ward = None
    current = bed
    for _ in range(_MAX_DEPTH):
        parent_id = reference_id(current.get("partOf"), "Location")
        if parent_id is None:
            break
        parent = read_in(conn, "Location", parent_id)
        if parent is None:
            break
        if physical_type(parent) == PhysicalType.WARD:
            ward = parent
            break
        current = parent
    campus_id = reference_id(bed.get("managingOrganization"), "Organization")
    if ward is None or campus_id is None:
        return None
    campus = read_in(conn, "Organization", campus_id)
    hospital_id = reference_id((campus or {}).get("partOf"), "Organization")
    if campus is None:
        return None
    return Place(bed, ward, campus_id, hospital_id or campus_id)


# --- the movement record ---------------------------------------------------------------------


def open_stay_of_patient(conn: Connection, patient_id: str) -> Row[Any] | None:
    return conn.execute(select(inpatient_bed_stay).where(
        inpatient_bed_stay.c.patient_id == patient_id,
        inpatient_bed_stay.c.ended.is_(None))).first()


def open_stay_in_bed(conn: Connection, bed_id: str) -> Row[Any] | None:
    return conn.execute(select(inpatient_bed_stay).where(
        inpatient_bed_stay.c.bed_id == bed_id, inpatient_bed_stay.c.ended.is_(None))).first()


def open_stay_of_encounter(conn: Connection, encounter_id: str) -> Row[Any] | None:
    return conn.execute(select(inpatient_bed_stay).where(
        inpatient_bed_stay.c.encounter_id == encounter_id,
        inpatient_bed_stay.c.ended.is_(None))).first()


@dataclass(frozen=True, slots=True)
class BedStay:
    """One patient in one bed, from `began` (admission or transfer in)."""

    encounter_id: str
    patient_id: str
    hospital_id: str
    campus_id: str
    department_id: str
    ward_id: str
    bed_id: str
    admitted: datetime
    began: datetime
    came_by: str  # admit | transfer
    expected_discharge: date | None = None
    ended: datetime | None = None
    left_by: str | None = None  # transfer | discharge

    def row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def begin_stay(conn: Connection, stay: BedStay) -> None:
    conn.execute(insert(inpatient_bed_stay), [stay.row()])
    census_days.reopen_from(conn, _day(stay.began), utcnow())


def end_stay(conn: Connection, pk: int, at: datetime, left_by: str) -> None:
    conn.execute(update(inpatient_bed_stay).where(inpatient_bed_stay.c.pk == pk)
                 .values(ended=at, left_by=left_by))
    census_days.reopen_from(conn, _day(at), utcnow())


def _day(moment: datetime) -> date:
    return moment.astimezone(DISPLAY_ZONE).date()


def next_inpatient_number(conn: Connection, hospital_id: str, year: int) -> int:
    """The next number of the hospital's year; the counter row is locked until commit (on
    SQLite the write transaction holds the database's only write lock already). One
    statement: the row is incremented where it is."""
    key = (inpatient_counter.c.hospital_id == hospital_id) & (inpatient_counter.c.year == year)
    last = conn.execute(update(inpatient_counter).where(key)
                        .values(last=inpatient_counter.c.last + 1)
                        .returning(inpatient_counter.c.last)).scalar()
    if last is None:  # the hospital's first of the year (a race for it: one insert wins)
        conn.execute(insert(inpatient_counter), [{"hospital_id": hospital_id, "year": year,
                                                  "last": 1}])
        return 1
    return int(last)
