"""The bed board: every bed of a campus (or one ward), its state and who is in it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, select

from yilian.domains.inpatient import repository as repo
from yilian.domains.inpatient.codes import BedStatus
from yilian.domains.inpatient.records import patient_name, reservation_of
from yilian.domains.inpatient.service import effective_status
from yilian.domains.inpatient.tables import inpatient_bed, inpatient_bed_stay
from yilian.errors import Forbidden, NotFound
from yilian.fhir.access import Access, Interaction
from yilian.fhir.guard import patients_in_care_seen
from yilian.fhir.interactions import Context
from yilian.fhir.masking import masked
from yilian.kit.clock import DISPLAY_ZONE, parse_datetime

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class BoardQuery:
    campus: str
    ward: str | None = None
    status: BedStatus | None = None  # only the beds in this state


def check_board_access(conn: Connection, access: Access, campus_id: str) -> JsonObject:
    """The campus Organization, when the caller may see its beds."""
    if access.patient is not None:
        raise Forbidden("YL-6170", "The bed board is for staff")
    access.require(Interaction.SEARCH, "Location")
    campus = repo.read_in(conn, "Organization", campus_id)
    if campus is None:
        raise NotFound("YL-6171", f"Organization/{campus_id} is not known",
                       expression=("campus",))
    hospital = repo.reference_id(campus.get("partOf"), "Organization")
    if access.organizations and campus_id not in access.organizations \
            and hospital not in access.organizations:
        raise Forbidden("YL-6172", f"Your roles do not reach Organization/{campus_id}",
                        expression=("campus",))
    return campus


def board(conn: Connection, access: Access, query: BoardQuery, now: datetime) -> JsonObject:
    campus = check_board_access(conn, access, query.campus)
    bed = inpatient_bed.c
    conditions = [bed.campus_id == query.campus, bed.ward_id.is_not(None)]
    if query.ward:
        conditions.append(bed.ward_id == query.ward)
    beds = conn.execute(select(inpatient_bed).where(*conditions)).all()
    stays = {row.bed_id: row for row in conn.execute(select(inpatient_bed_stay).where(
        inpatient_bed_stay.c.campus_id == query.campus, inpatient_bed_stay.c.ended.is_(None)))}
    patients = _patients(conn, access, stays.values())
    held = repo.read_many(conn, "Location", [b.bed_id for b in beds if b.status in (
        BedStatus.RESERVED.value, BedStatus.CLOSED.value)])
    wards = repo.read_many(conn, "Location", list({b.ward_id for b in beds}))
    departments = repo.read_many(conn, "HealthcareService",
                            [d for d in {b.department_id for b in beds} if d])
    today = now.astimezone(DISPLAY_ZONE).date()

    by_ward: dict[str, list[JsonObject]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for row in sorted(beds, key=lambda b: (b.parent_id or "", b.name)):
        status = BedStatus(row.status) if row.status in BedStatus._value2member_map_ \
            else BedStatus.CLOSED
        entry: JsonObject = {"id": row.bed_id, "name": row.name}
        location = held.get(row.bed_id)
        if status is BedStatus.RESERVED and location is not None:
            reservation = reservation_of(location)
            expires = parse_datetime(str(reservation.get("expires", "")))
            status = effective_status(location, now)
            if expires is not None and status is BedStatus.RESERVED:
                entry["reservedUntil"] = expires.astimezone(DISPLAY_ZONE).isoformat()
                entry["reservedFor"] = reservation.get("patient", {}).get("reference")
                entry["reason"] = _free_text(reservation.get("reason"), access)
        if status is BedStatus.CLOSED and location is not None and location.get("description"):
            entry["reason"] = _free_text(location["description"], access)
        stay = stays.get(row.bed_id)
        if stay is not None:
            entry["stay"] = _stay(stay, patients.get(stay.patient_id), access.masked, today)
        entry["status"] = status.value
        entry["statusName"] = {"zh": status.names[0], "en": status.names[1]}
        counts[status.value] += 1
        if query.status is None or status is query.status:
            by_ward[row.ward_id].append(entry)
    ward_list = []
    for ward_id, ward_beds in by_ward.items():
        ward = wards.get(ward_id, {})
        department_id = next((b.department_id for b in beds if b.ward_id == ward_id), None)
        department = departments.get(department_id or "", {})
        ward_list.append({"id": ward_id, "name": ward.get("name", ward_id),
                          "department": {"id": department_id,
                                         "name": department.get("name")},
                          "beds": ward_beds})
    ward_list.sort(key=lambda w: str(w["name"]))
    total = len(beds)
    occupied = counts.get(BedStatus.OCCUPIED.value, 0)
    return {
        "campus": {"id": query.campus, "name": campus.get("name")},
        "asOf": now.astimezone(DISPLAY_ZONE).isoformat(),
        "summary": {"beds": total, **{s.value: counts.get(s.value, 0) for s in BedStatus},
                    "occupancyRate": round(occupied / total, 4) if total else None},
        "wards": ward_list,
    }


def _patients(conn: Connection, access: Access, stays: Iterable[Any]
              ) -> dict[str, JsonObject]:
    """The patients in the beds whom the caller may read (the access rules, a patient's
    consent included); the others stay nameless on the board."""
    if not access.allows(Interaction.READ, "Patient"):
        return {}
    ctx = Context(conn, "", access=access)
    by_hospital: dict[str, list[str]] = defaultdict(list)
    for stay in stays:
        by_hospital[stay.hospital_id].append(stay.patient_id)
    seen: set[str] = set()
    for hospital, ids in by_hospital.items():  # their stays' Encounters are the hospital's
        seen |= patients_in_care_seen(ctx, ids, hospital)
    return repo.read_many(conn, "Patient", sorted(seen))


def _free_text(text: Any, access: Access) -> str | None:
    """A reason typed by staff, masked as the caller's reads are (it may hold a phone)."""
    if not isinstance(text, str):
        return None
    return str(masked(text)) if access.masked else text


def _stay(stay: Any, patient: JsonObject | None, mask: bool, today: date) -> JsonObject:
    admitted = stay.admitted.astimezone(DISPLAY_ZONE)
    entry: JsonObject = {
        "encounter": stay.encounter_id, "patient": stay.patient_id,
        # The day of admission is day 1 (住院第1天).
        "admitted": admitted.isoformat(), "daysInHospital": (today - admitted.date()).days + 1,
        "expectedDischarge": stay.expected_discharge.isoformat()
        if stay.expected_discharge else None,
        "department": stay.department_id,
    }
    if patient is not None:
        name = _name(patient)
        entry["name"] = _mask_name(name) if mask else name
        entry["gender"] = patient.get("gender")
        birth = patient.get("birthDate")
        if isinstance(birth, str) and len(birth) >= 10:
            born = date.fromisoformat(birth[:10])
            entry["age"] = today.year - born.year - ((today.month, today.day) <
                                                     (born.month, born.day))
    return entry


def _name(patient: JsonObject) -> str:
    return patient_name(patient) or str(patient.get("id"))


def _mask_name(name: str) -> str:
    """张** for 张三丰: the family name only, as a masked role may see."""
    return name[:1] + "*" * max(1, len(name) - 1)

