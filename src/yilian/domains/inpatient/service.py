"""Admission, transfer, discharge and bed states: the hospital's rules over the FHIR record.

Each `do_*` action runs inside one write transaction (the caller's `Context`): it takes its
locks, checks every rule (`check_*`), then writes the Encounter, Conditions, the beds'
Locations and the movement record together; a refusal raises before anything is written.

Locks, always in this order so two actions never wait on each other in a circle: the
patient's stay key (admission), the Encounter row (transfer, discharge), then the beds' rows
in id order. On PostgreSQL these are row locks and advisory locks held until commit; on
SQLite the write transaction already holds the database's only write lock. Behind them, the
movement record's partial unique indexes refuse a second open stay in a bed or of a patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from yilian.domains.inpatient import records
from yilian.domains.inpatient import repository as repo
from yilian.domains.inpatient.codes import (
    BED_RESERVATION,
    AdmitSource,
    BedStatus,
    Disposition,
)
from yilian.domains.inpatient.repository import BedStay, Place
from yilian.domains.network.codes import (
    WARD_RESTRICTION,
    PhysicalType,
)
from yilian.errors import Conflict, Forbidden, NotFound, Unprocessable
from yilian.fhir.access import Interaction
from yilian.fhir.guard import require_member
from yilian.fhir.interactions import Context, check_resource
from yilian.fhir.store import sql as store
from yilian.kit.clock import DISPLAY_ZONE, parse_datetime, to_instant
from yilian.kit.ids import new_id

JsonObject = dict[str, Any]
MAX_RESERVATION = timedelta(days=14)  # a bed held longer is a closed bed (unverified default)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """An ICD-10 coding to record as a new Condition, or an existing Condition."""

    coding: JsonObject | None = None
    condition_id: str | None = None
    where: str = ""  # the input's FHIRPath, for errors


@dataclass(frozen=True, slots=True)
class Admission:
    patient_id: str
    department_id: str
    bed_id: str
    practitioner_id: str
    diagnoses: tuple[Diagnosis, ...]
    admit_source: AdmitSource | None = None
    expected_discharge: date | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    encounter_id: str
    bed_id: str
    reason: str | None = None
    department_id: str | None = None  # a transfer between departments (转科)


@dataclass(frozen=True, slots=True)
class Discharge:
    encounter_id: str
    disposition: Disposition
    diagnoses: tuple[Diagnosis, ...]
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    """What an action wrote: the resource to return, and what it touched (for the audit)."""

    resource: JsonObject
    touched: tuple[str, ...]


# --- admission ------------------------------------------------------------------------------


def do_admit(ctx: Context, admission: Admission, *, at: datetime | None = None) -> Done:
    at = at or ctx.writer.now
    check_staff(ctx)
    # The patient's key first: two admissions of one patient wait for each other here.
    store.lock_key(ctx.conn, f"inpatient-stay:Patient/{admission.patient_id}")
    patient = _required(ctx, "Patient", admission.patient_id, "patient")
    department = _required(ctx, "HealthcareService", admission.department_id, "department")
    _required(ctx, "Practitioner", admission.practitioner_id, "practitioner")
    bed, bed_row = _lock_bed(ctx, admission.bed_id, "bed")
    place = _place(ctx, bed, "bed")
    check_reach(ctx, place)
    check_department(place, department, "department")
    check_ward_admits(place, patient, admission.department_id, at, "bed")
    check_bed_takes(ctx, bed, admission.patient_id, at, "bed")
    check_not_in_hospital(ctx, admission.patient_id)
    if not admission.diagnoses:
        raise Unprocessable("YL-6110", "An admission needs the admitting diagnosis (入院诊断)",
                            expression=(_param("diagnosis"),))

    encounter_id = new_id()
    conditions = [_diagnosis_condition(ctx, d, admission.patient_id, encounter_id, at,
                                       verification="provisional")
                  for d in admission.diagnoses]
    _set_bed(ctx, bed, bed_row, BedStatus.OCCUPIED)
    repo.begin_stay(ctx.conn, BedStay(
        encounter_id, admission.patient_id, place.hospital_id, place.campus_id,
        admission.department_id, place.ward_id, place.bed_id, admitted=at, began=at,
        came_by="admit", expected_discharge=admission.expected_discharge))
    # The hospital's number counter stays locked until commit, and every admission of the
    # hospital waits for it: the other writes go out first, the number is taken last.
    ctx.writer.flush()
    number = repo.next_inpatient_number(ctx.conn, place.hospital_id, _local(at).year)
    encounter = records.admission_encounter(
        encounter_id, number=f"ZY{_local(at).year}{number:06d}", place=place,
        patient=patient, practitioner_id=admission.practitioner_id, department=department,
        conditions=conditions, at=at, admit_source=admission.admit_source,
        expected_discharge=admission.expected_discharge)
    stored = _create(ctx, encounter)
    return Done(stored, (f"Encounter/{encounter_id}", f"Patient/{admission.patient_id}",
                         f"Location/{place.bed_id}"))


# --- transfer -------------------------------------------------------------------------------


def do_transfer(ctx: Context, transfer: Transfer, *, at: datetime | None = None) -> Done:
    at = at or ctx.writer.now
    check_staff(ctx)
    encounter, encounter_row, stay = _lock_stay(ctx, transfer.encounter_id)
    if transfer.bed_id == stay.bed_id:
        raise Unprocessable("YL-6120", f"The patient is already in Location/{stay.bed_id}",
                            expression=(_param("bed"),))
    check_reach_ids(ctx, stay.hospital_id, stay.campus_id, stay.bed_id)
    # Both beds in id order (see the module docstring).
    if stay.bed_id < transfer.bed_id:
        old = _lock_old_bed(ctx, stay.bed_id)
        new_bed, new_row = _lock_bed(ctx, transfer.bed_id, "bed")
    else:
        new_bed, new_row = _lock_bed(ctx, transfer.bed_id, "bed")
        old = _lock_old_bed(ctx, stay.bed_id)
    place = _place(ctx, new_bed, "bed")
    check_reach(ctx, place)
    if place.hospital_id != stay.hospital_id:
        raise Unprocessable(
            "YL-6121", f"Location/{transfer.bed_id} belongs to another hospital: moving a "
            "patient between hospitals is a discharge and a referral, not a transfer",
            expression=(_param("bed"),))
    patient = _required(ctx, "Patient", stay.patient_id, "patient")
    department_id = transfer.department_id or stay.department_id
    department = _required(ctx, "HealthcareService", department_id, "department")
    check_department(place, department, "department")
    check_ward_admits(place, patient, department_id, at, "bed")
    check_bed_takes(ctx, new_bed, stay.patient_id, at, "bed")

    changed = records.transferred(encounter, place, at, reason=transfer.reason,
                                  department=department if transfer.department_id else None)
    stored = _update(ctx, changed, encounter_row)
    if old is not None:
        _set_bed(ctx, *old, BedStatus.HOUSEKEEPING)
    _set_bed(ctx, new_bed, new_row, BedStatus.OCCUPIED)
    repo.end_stay(ctx.conn, stay.pk, at, "transfer")
    repo.begin_stay(ctx.conn, BedStay(
        transfer.encounter_id, stay.patient_id, place.hospital_id, place.campus_id,
        department_id, place.ward_id, place.bed_id, admitted=stay.admitted, began=at,
        came_by="transfer", expected_discharge=stay.expected_discharge))
    return Done(stored, (f"Encounter/{transfer.encounter_id}", f"Patient/{stay.patient_id}",
                         f"Location/{stay.bed_id}", f"Location/{transfer.bed_id}"))


# --- discharge ------------------------------------------------------------------------------


def do_discharge(ctx: Context, discharge: Discharge, *, at: datetime | None = None) -> Done:
    at = at or ctx.writer.now
    check_staff(ctx)
    encounter, encounter_row, stay = _lock_stay(ctx, discharge.encounter_id)
    check_reach_ids(ctx, stay.hospital_id, stay.campus_id, stay.bed_id)
    bed = _lock_old_bed(ctx, stay.bed_id)
    if not discharge.diagnoses:
        raise Unprocessable("YL-6130", "A discharge needs the discharge diagnoses (出院诊断), "
                            "coded in ICD-10", expression=(_param("diagnosis"),))
    conditions = [_diagnosis_condition(ctx, d, stay.patient_id, discharge.encounter_id, at,
                                       verification="confirmed")
                  for d in discharge.diagnoses]
    changed = records.discharged(encounter, at, discharge.disposition, conditions)
    stored = _update(ctx, changed, encounter_row)
    if bed is not None:
        _set_bed(ctx, *bed, BedStatus.HOUSEKEEPING)
    repo.end_stay(ctx.conn, stay.pk, at, "discharge")
    touched = [f"Encounter/{discharge.encounter_id}", f"Patient/{stay.patient_id}",
               f"Location/{stay.bed_id}"]
    if discharge.summary:
        summary = _create(ctx, records.discharge_summary(new_id(), stored, discharge.summary, at))
        touched.append(f"Composition/{summary['id']}")
    return Done(stored, tuple(touched))


# --- bed states -----------------------------------------------------------------------------


def do_reserve(ctx: Context, bed_id: str, *, until: datetime, patient_id: str | None,
               reason: str | None, at: datetime | None = None) -> Done:
    """Hold a free bed for a referral or a planned admission until `until`."""
    at = at or ctx.writer.now
    check_staff(ctx)
    bed, row = _lock_bed(ctx, bed_id, "bed")
    check_reach(ctx, _place(ctx, bed, "bed"))
    if until <= at:
        raise Unprocessable("YL-6140", "A reservation must expire in the future",
                            expression=(_param("expires"),))
    if until - at > MAX_RESERVATION:
        raise Unprocessable("YL-6144", f"A bed is reserved for at most "
                            f"{MAX_RESERVATION.days} days", expression=(_param("expires"),))
    if patient_id is not None:
        _required(ctx, "Patient", patient_id, "patient")
    status = effective_status(bed, at)
    if status is not BedStatus.FREE:
        raise _unavailable(bed, status, at)
    details: list[JsonObject] = [{"url": "expires", "valueDateTime": to_instant(until)}]
    if patient_id is not None:
        details.append({"url": "patient", "valueReference": records.ref("Patient", patient_id)})
    if reason:
        details.append({"url": "reason", "valueString": reason})
    stored = _set_bed(ctx, bed, row, BedStatus.RESERVED,
                      reservation={"url": BED_RESERVATION, "extension": details})
    return Done(stored, (f"Location/{bed_id}",))


def do_close(ctx: Context, bed_id: str, *, reason: str | None,
             at: datetime | None = None) -> Done:
    """Take a bed out of use (repairs, staff shortage); never an occupied one."""
    at = at or ctx.writer.now
    check_staff(ctx)
    bed, row = _lock_bed(ctx, bed_id, "bed")
    check_reach(ctx, _place(ctx, bed, "bed"))
    status = effective_status(bed, at)
    if status in (BedStatus.OCCUPIED, BedStatus.ISOLATED, BedStatus.CLOSED):
        raise _unavailable(bed, status, at, doing="closed")
    if status is BedStatus.RESERVED:
        raise Conflict("YL-6141", f"Location/{bed_id} is reserved until "
                       f"{records.reservation_of(bed).get('expires')}: cancel the reservation "
                       "($reopen) before closing it", expression=(_param("bed"),))
    stored = _set_bed(ctx, bed, row, BedStatus.CLOSED, note=reason)
    return Done(stored, (f"Location/{bed_id}",))


def do_clean(ctx: Context, bed_id: str, *, at: datetime | None = None) -> Done:
    """Housekeeping done: a bed being cleaned (or contaminated) is free again."""
    at = at or ctx.writer.now
    check_staff(ctx)
    bed, row = _lock_bed(ctx, bed_id, "bed")
    check_reach(ctx, _place(ctx, bed, "bed"))
    status = effective_status(bed, at)
    left_outside = status is BedStatus.OCCUPIED and \
        repo.open_stay_in_bed(ctx.conn, bed_id) is None  # its stay ended by a plain write
    if status not in (BedStatus.HOUSEKEEPING, BedStatus.CONTAMINATED) and not left_outside:
        raise Conflict("YL-6142", f"Location/{bed_id} is {status.names[1].lower()} "
                       f"({status.names[0]}), not waiting for cleaning",
                       expression=(_param("bed"),))
    stored = _set_bed(ctx, bed, row, BedStatus.FREE)
    return Done(stored, (f"Location/{bed_id}",))


def do_reopen(ctx: Context, bed_id: str, *, at: datetime | None = None) -> Done:
    """A closed bed back in use, or a reservation cancelled."""
    at = at or ctx.writer.now
    check_staff(ctx)
    bed, row = _lock_bed(ctx, bed_id, "bed")
    check_reach(ctx, _place(ctx, bed, "bed"))
    status = BedStatus.of(bed)
    if status not in (BedStatus.CLOSED, BedStatus.RESERVED):
        raise Conflict("YL-6143", f"Location/{bed_id} is {status.names[1].lower()} "
                       f"({status.names[0]}): only a closed or reserved bed is reopened",
                       expression=(_param("bed"),))
    stored = _set_bed(ctx, bed, row, BedStatus.FREE)
    return Done(stored, (f"Location/{bed_id}",))


# --- the rules ------------------------------------------------------------------------------


def check_staff(ctx: Context) -> None:
    if ctx.access.patient is not None:
        raise Forbidden("YL-6100", "Admissions, transfers, discharges and bed states are "
                        "staff work; a patient's token cannot do them")


def check_reach(ctx: Context, place: Place) -> None:
    """Staff act on the beds of their own hospitals (or campuses) only."""
    check_reach_ids(ctx, place.hospital_id, place.campus_id, place.bed_id)


def check_reach_ids(ctx: Context, hospital_id: str, campus_id: str, bed_id: str) -> None:
    organizations = ctx.access.organizations
    if organizations and hospital_id not in organizations and campus_id not in organizations:
        raise Forbidden("YL-6101", f"Location/{bed_id} is a bed of Organization/{hospital_id},"
                        " where your roles do not reach")


def check_department(place: Place, department: JsonObject, where: str) -> None:
    provider = repo.reference_id(department.get("providedBy"), "Organization")
    if provider not in (place.hospital_id, place.campus_id):
        raise Unprocessable(
            "YL-6111", f"HealthcareService/{department['id']} is a department of "
            f"Organization/{provider}, not of the bed's hospital "
            f"Organization/{place.hospital_id}", expression=(_param(where),))
    if department.get("active") is False:
        raise Unprocessable("YL-6112", f"HealthcareService/{department['id']} is not active",
                            expression=(_param(where),))


def check_ward_admits(place: Place, patient: JsonObject, department_id: str, at: datetime,
                      where: str) -> None:
    """The ward's restrictions: the departments it serves, the sex and the ages it takes."""
    restriction = _extension(place.ward, WARD_RESTRICTION)
    if restriction is None:
        return
    ward = place.ward.get("name", place.ward_id)
    departments = [repo.reference_id(e.get("valueReference"), "HealthcareService")
                   for e in restriction.get("extension", []) if e.get("url") == "department"]
    if departments and department_id not in departments:
        raise Unprocessable("YL-6113", f"Ward {ward} takes patients of other departments "
                            f"only, not of HealthcareService/{department_id}",
                            expression=(_param(where),))
    sex = _sub_value(restriction, "sex", "valueCode")
    if sex is not None and patient.get("gender") != sex:
        raise Unprocessable("YL-6114", f"Ward {ward} takes {sex} patients only; "
                            f"Patient/{patient['id']} is {patient.get('gender', 'of unknown sex')}",
                            expression=(_param(where),))
    max_age = _sub_value(restriction, "maxAge", "valueInteger")
    min_age = _sub_value(restriction, "minAge", "valueInteger")
    if max_age is not None or min_age is not None:
        age = _age(patient, _local(at).date())
        if age is None:
            raise Unprocessable("YL-6115", f"Ward {ward} takes patients by age, and "
                                f"Patient/{patient['id']} has no birth date",
                                expression=(_param(where),))
        if (max_age is not None and age > max_age) or (min_age is not None and age < min_age):
            limits = f"{min_age or 0}–{max_age if max_age is not None else '…'}"
            raise Unprocessable("YL-6116", f"Ward {ward} takes patients aged {limits}; "
                                f"Patient/{patient['id']} is {age}",
                                expression=(_param(where),))


def check_bed_takes(ctx: Context, bed: JsonObject, patient_id: str, at: datetime,
                    where: str) -> None:
    status = effective_status(bed, at)
    if status is BedStatus.FREE:
        if repo.open_stay_in_bed(ctx.conn, str(bed["id"])) is not None:
            # The Location was set free by a plain write while a stay is still open in it.
            raise _unavailable(bed, BedStatus.OCCUPIED, at)
        return
    if status is BedStatus.RESERVED:
        holder = repo.reference_id(records.reservation_of(bed).get("patient"), "Patient")
        if holder == patient_id:
            return
        raise Conflict("YL-6117", f"Location/{bed['id']} is reserved for another patient until "
                       f"{records.reservation_of(bed).get('expires')}", expression=(_param(where),))
    raise _unavailable(bed, status, at)


def check_not_in_hospital(ctx: Context, patient_id: str) -> None:
    stay = repo.open_stay_of_patient(ctx.conn, patient_id)
    if stay is not None:
        raise Conflict("YL-6118", f"Patient/{patient_id} is in hospital already: "
                       f"Encounter/{stay.encounter_id} in Location/{stay.bed_id}; transfer "
                       "or discharge that stay instead", expression=(_param("patient"),))


def effective_status(bed: JsonObject, at: datetime) -> BedStatus:
    """The bed's state, a lapsed reservation counting as free."""
    status = BedStatus.of(bed)
    if status is BedStatus.RESERVED:
        expires = parse_datetime(str(records.reservation_of(bed).get("expires", "")))
        if expires is None or expires <= at:  # lapsed (or unreadable): holds no one
            return BedStatus.FREE
    return status


# --- helpers --------------------------------------------------------------------------------


def _param(name: str) -> str:
    return f"Parameters.parameter.where(name='{name}')"


def _required(ctx: Context, res_type: str, res_id: str, where: str) -> JsonObject:
    """A resource the operation names: it must exist and, for a patient's records, be one the
    caller may read (an admission must not be what opens a patient to a caller: break the
    glass is the way for that). Unseen and absent answer alike."""
    unknown = Unprocessable("YL-6102", f"{res_type}/{res_id} is not known",
                            expression=(_param(where),), issue_type="not-found")
    if res_type in _PATIENT_RECORDS:
        ctx.access.require(Interaction.READ, res_type)
        try:
            require_member(ctx, Interaction.READ, res_type, res_id)
        except NotFound:
            raise unknown from None
    found = repo.read(ctx, res_type, res_id)
    if found is None:
        raise unknown
    return found


# Read through the access rules: the patient's records, not the directory.
_PATIENT_RECORDS = frozenset({"Patient", "Condition", "Encounter"})


def _lock_bed(ctx: Context, bed_id: str, where: str) -> tuple[JsonObject, store.CurrentRow]:
    row = ctx.writer.lock_current("Location", bed_id)
    bed = repo.read(ctx, "Location", bed_id) if row is not None and not row.deleted else None
    if row is None or bed is None:
        raise Unprocessable("YL-6103", f"Location/{bed_id} is not known",
                            expression=(_param(where),), issue_type="not-found")
    if repo.physical_type(bed) != PhysicalType.BED:
        raise Unprocessable("YL-6104", f"Location/{bed_id} is not a bed (physicalType bd)",
                            expression=(_param(where),))
    if bed.get("status") in ("inactive", "suspended"):
        raise Conflict("YL-6105", f"Location/{bed_id} is {bed['status']}",
                       expression=(_param(where),))
    return bed, row


def _lock_old_bed(ctx: Context, bed_id: str) -> tuple[JsonObject, store.CurrentRow] | None:
    """The bed a patient leaves, locked: whatever became of it meanwhile (made inactive,
    moved, deleted), the patient can still leave it; None when it is gone."""
    row = ctx.writer.lock_current("Location", bed_id)
    bed = repo.read(ctx, "Location", bed_id) if row is not None and not row.deleted else None
    return None if bed is None or row is None else (bed, row)


def _place(ctx: Context, bed: JsonObject, where: str) -> Place:
    place = repo.place_of(ctx, bed)
    if place is None:
        raise Unprocessable("YL-6106", f"Location/{bed['id']} is not in a ward of a campus: "
                            "its partOf chain must reach a ward (physicalType wa) and its "
                            "managingOrganization name the campus", expression=(_param(where),))
    return place


def _lock_stay(ctx: Context, encounter_id: str
               ) -> tuple[JsonObject, store.CurrentRow, Any]:
    row = ctx.writer.lock_current("Encounter", encounter_id)
    encounter = repo.read(ctx, "Encounter", encounter_id) if row is not None else None
    if row is None or encounter is None:
        raise Unprocessable("YL-6107", f"Encounter/{encounter_id} is not known",
                            issue_type="not-found")
    stay = repo.open_stay_of_encounter(ctx.conn, encounter_id)
    if encounter.get("status") != "in-progress" or stay is None:
        raise Conflict("YL-6108", f"Encounter/{encounter_id} is not an inpatient stay in "
                       f"progress (status {encounter.get('status')})")
    return encounter, row, stay


def _unavailable(bed: JsonObject, status: BedStatus, at: datetime,
                 doing: str = "taken") -> Conflict:
    zh, en = status.names
    return Conflict("YL-6119", f"Location/{bed['id']} ({bed.get('name', '')}) is "
                    f"{en.lower()} ({zh}) and cannot be {doing}", expression=(_param("bed"),))


def _create(ctx: Context, resource: JsonObject) -> JsonObject:
    res_type = str(resource["resourceType"])
    ctx.access.require(Interaction.CREATE, res_type)  # a Condition, a Composition too
    check_resource(res_type, resource, validate=ctx.validate)
    _, stored = ctx.writer.put(res_type, str(resource["id"]), resource, method="POST",
                               current=None)
    return stored


def _update(ctx: Context, resource: JsonObject, row: store.CurrentRow) -> JsonObject:
    res_type = str(resource["resourceType"])
    ctx.access.require(Interaction.UPDATE, res_type)
    check_resource(res_type, resource, validate=ctx.validate)
    _, stored = ctx.writer.put(res_type, str(resource["id"]), resource, method="PUT",
                               current=row)
    return stored


def _set_bed(ctx: Context, bed: JsonObject, row: store.CurrentRow, status: BedStatus, *,
             reservation: JsonObject | None = None, note: str | None = None) -> JsonObject:
    return _update(ctx, records.bed_in_state(bed, status, reservation=reservation, note=note),
                   row)


def _extension(resource: JsonObject, url: str) -> JsonObject | None:
    for item in resource.get("extension", []):
        if isinstance(item, dict) and item.get("url") == url:
            return item
    return None


def _sub_value(extension: JsonObject, url: str, key: str) -> Any:
    for item in extension.get("extension", []):
        if item.get("url") == url:
            return item.get(key)
    return None


def _age(patient: JsonObject, on: date) -> int | None:
    birth = patient.get("birthDate")
    if not isinstance(birth, str) or len(birth) < 4:
        return None
    year = int(birth[:4])
    month, day = (int(birth[5:7]), int(birth[8:10])) if len(birth) >= 10 else (1, 1)
    return on.year - year - ((on.month, on.day) < (month, day))


def _local(moment: datetime) -> datetime:
    return moment.astimezone(DISPLAY_ZONE)


def _diagnosis_condition(ctx: Context, diagnosis: Diagnosis, patient_id: str,
                         encounter_id: str, at: datetime, *, verification: str) -> str:
    """The Condition id for a diagnosis: an existing one of this patient, or a new one."""
    if diagnosis.condition_id is not None:
        condition = _required(ctx, "Condition", diagnosis.condition_id, "diagnosis")
        subject = repo.reference_id(condition.get("subject"), "Patient")
        if subject != patient_id:
            raise Unprocessable("YL-6109", f"Condition/{diagnosis.condition_id} is not a "
                                f"condition of Patient/{patient_id}",
                                expression=(diagnosis.where or _param("diagnosis"),))
        return diagnosis.condition_id
    assert diagnosis.coding is not None
    condition_id = new_id()
    _create(ctx, records.diagnosis_condition(condition_id, diagnosis.coding, patient_id,
                                             encounter_id, at, verification=verification))
    return condition_id
