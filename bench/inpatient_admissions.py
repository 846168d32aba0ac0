"""Admissions for `python -m bench --inpatient`: who is admitted where, the database put back
as it was afterwards, and the ceiling (bench/README.md, "The inpatient benchmark").

- `plan`: the free beds of the group hospital (bed register state `U`, no open stay), each
  given a waiting patient (no open stay) whom its ward admits (the ward Location's
  restriction: department, sex, ages) and whom the hospital's staff may see (registered there,
  Patient.managingOrganization, or in one of its beds within the last CARE_DAYS: what
  yilian.fhir.guard lets a nurse of the hospital read; an admission must not be what opens a
  patient to the caller), a doctor of the ward's department (PractitionerRole)
  and an ICD-10 diagnosis of the department that fits the patient (the demo's list). Most
  beds go to the clerks one by one (each clerk its own beds and patients); a reserve goes to
  the races: one bed and N patients (every clerk its own patient), or one patient and N beds.
- `Snapshot`/`undo`: what an admission changes (the beds' resource rows, versions and index
  rows, the bed register, the movement record, the inpatient numbers; new resources have
  larger pks) is read before the admissions and put back afterwards, so that a kept database
  (BENCH_INPATIENT_KEEP) is the same for every run, and the ceiling writes into the state the
  server found. The audit trail keeps its entries.
- `read_back`/`replay`: the ceiling. The rows the server wrote for each admission (the
  Condition and the Encounter, the bed's new version, every index row of the three, the bed
  register's state, the stay row, the hospital's inpatient number) are read back, the
  database is put back, and they are written again, one write transaction per admission
  (`write_transaction`: BEGIN IMMEDIATE and the writer lock on SQLite), each table with
  SQLAlchemy Core, by as many threads as there were clerks, each clerk's admissions in its
  order: what the rows cost without FHIR work (no parsing, checks, locks of the rules,
  validation, JSON, index extraction or HTTP).
- `check_stays`: afterwards, in the database, no bed with two open stays, no patient with two,
  and one open stay for every admission the server answered 200, none for the others.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, delete, func, insert, select, update

from yilian.domains.inpatient.tables import inpatient_bed, inpatient_bed_stay, inpatient_counter
from yilian.domains.network.codes import WARD_RESTRICTION
from yilian.fhir.store.tables import INDEX_TABLES, resource, resource_version
from yilian.kit.clock import DISPLAY_ZONE, utcnow
from yilian.kit.db import make_engine, read_transaction, write_transaction

HOSPITAL = "h1"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
WARMUP_PER_CLERK = 3  # each clerk's first admissions are not timed (the server's first
# $admit compiles statements and loads validators)
SERIAL = 60  # timed admissions of one clerk alone: latency without queueing
RACE_BEDS = 80  # beds each raced for by every clerk at once
RACE_PATIENTS = 12  # patients each admitted by every clerk at once, into as many beds

Row = dict[str, Any]


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A ward's admission restriction (network.codes.WARD_RESTRICTION)."""

    departments: tuple[str, ...] = ()
    sex: str | None = None
    min_age: int | None = None
    max_age: int | None = None

    def admits(self, patient: Patient, department: str, today: date) -> bool:
        if self.departments and department not in self.departments:
            return False
        if self.sex is not None and patient.gender != self.sex:
            return False
        age = patient.age(today)
        # As the demo data means them: min_age <= age < max_age (the server refuses only
        # age > max_age, so this is on the safe side).
        return (self.min_age is None or age >= self.min_age) and (
            self.max_age is None or age < self.max_age)


@dataclass(frozen=True)
class Patient:
    id: str
    gender: str | None
    birth: date

    def age(self, today: date) -> int:
        return today.year - self.birth.year - (
            (today.month, today.day) < (self.birth.month, self.birth.day))


@dataclass(frozen=True)
class Bed:
    id: str
    ward_id: str
    department_id: str
    campus_id: str
    rule: Rule


@dataclass(frozen=True)
class Task:
    """One $admit: its bed and patient, and the request body."""

    bed_id: str
    patient_id: str
    body: bytes


@dataclass
class Plan:
    clerks: int
    serial: list[Task]  # one clerk alone, before the others start
    distinct: list[list[Task]]  # per clerk
    race_beds: list[list[Task]]  # per race: one bed, a patient per clerk
    race_patients: list[list[Task]]  # per race: one patient, a bed per clerk
    bed_ids: list[str]  # every bed any task names
    free_beds: int  # free beds of the hospital found
    waiting: int  # patients without an open stay the hospital's staff may see

    def summary(self) -> str:
        return (f"{self.free_beds:,} free beds of {HOSPITAL}, {self.waiting:,} waiting "
                f"patients its staff may see; {len(self.serial)} admissions by one clerk alone, "
                f"{sum(map(len, self.distinct)):,} by {self.clerks} "
                f"clerks, {len(self.race_beds)} beds raced for by every clerk, "
                f"{len(self.race_patients)} patients admitted by every clerk at once")


def _contents(conn: Connection, res_type: str) -> Iterator[dict[str, Any]]:
    rows = conn.execute(
        select(resource_version.c.content).select_from(resource.join(
            resource_version, and_(resource_version.c.resource_pk == resource.c.pk,
                                   resource_version.c.version == resource.c.version)))
        .where(resource.c.res_type == res_type, resource.c.deleted.is_(False)))
    for (content,) in rows:
        yield orjson.loads(content)


def _reference(value: Any, res_type: str) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    if isinstance(reference, str) and reference.startswith(f"{res_type}/"):
        return reference.removeprefix(f"{res_type}/")
    return None


def _rule(ward: dict[str, Any]) -> Rule:
    for item in ward.get("extension", []):
        if item.get("url") != WARD_RESTRICTION:
            continue
        values: dict[str, list[Any]] = {}
        for sub in item.get("extension", []):
            value = next((v for k, v in sub.items() if k.startswith("value")), None)
            values.setdefault(sub.get("url"), []).append(value)
        departments = tuple(d for d in (_reference(v, "HealthcareService")
                                        for v in values.get("department", [])) if d)
        return Rule(departments, (values.get("sex") or [None])[0],
                    (values.get("minAge") or [None])[0], (values.get("maxAge") or [None])[0])
    return Rule()


def _doctors(conn: Connection) -> dict[str, list[str]]:
    """Doctors by department of the hospital (PractitionerRole)."""
    found: dict[str, list[str]] = {}
    for role in _contents(conn, "PractitionerRole"):
        if _reference(role.get("organization"), "Organization") != HOSPITAL:
            continue
        codes = {c.get("code") for concept in role.get("code", [])
                 for c in concept.get("coding", [])}
        practitioner = _reference(role.get("practitioner"), "Practitioner")
        if "doctor" not in codes or practitioner is None:
            continue
        for service in role.get("healthcareService", []):
            department = _reference(service, "HealthcareService")
            if department:
                found.setdefault(department, []).append(practitioner)
    return found


def _diagnoses() -> dict[str, Any]:
    from yilian.demo.stays import diagnoses

    return diagnoses()[1]


class _Bodies:
    def __init__(self, doctors: dict[str, list[str]], rng: random.Random, today: date) -> None:
        self.doctors = doctors
        self.rng = rng
        self.today = today
        self.choices = _diagnoses()
        self.everyone = [c for listed in self.choices.values() for c in listed]

    def task(self, bed: Bed, patient: Patient) -> Task:
        specialty = bed.department_id.removeprefix(f"{HOSPITAL}-").replace("-", "_")
        on = self.today
        resident = _Resident(patient.id, patient.gender or "unknown", patient.birth)
        fitting = [c for c in self.choices.get(specialty, ()) if c.fits(resident, on)] or \
            [c for c in self.everyone if c.fits(resident, on)] or self.everyone
        diagnosis = self.rng.choice(fitting)
        doctor = self.rng.choice(self.doctors.get(bed.department_id) or ["unknown"])
        body = {"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueReference": {"reference": f"Patient/{patient.id}"}},
            {"name": "department",
             "valueReference": {"reference": f"HealthcareService/{bed.department_id}"}},
            {"name": "bed", "valueReference": {"reference": f"Location/{bed.id}"}},
            {"name": "practitioner", "valueReference": {"reference": f"Practitioner/{doctor}"}},
            {"name": "diagnosis", "valueCoding": {"system": ICD10, "code": diagnosis.code,
                                                   "display": diagnosis.zh}},
            {"name": "admitSource", "valueCode": self.rng.choice(
                ("outpatient", "outpatient", "emergency", "referral"))},
        ]}
        return Task(bed.id, patient.id, orjson.dumps(body))


@dataclass(frozen=True)
class _Resident:  # what DiagnosisChoice.fits reads
    id: str
    gender: str
    birth: date


def plan(url: str, clerks: int, seed: int = 11) -> Plan:
    """The admissions of the benchmark, from the database as it is."""
    from yilian.fhir.guard import CARE_DAYS

    rng = random.Random(seed)
    now = utcnow()
    today = now.astimezone(DISPLAY_ZONE).date()
    since = now - timedelta(days=CARE_DAYS - 1)  # a day's margin
    engine = make_engine(url, pool_size=1)
    try:
        with read_transaction(engine) as conn:
            open_stays = inpatient_bed_stay.c.ended.is_(None)
            occupied = set(conn.scalars(select(inpatient_bed_stay.c.bed_id).where(open_stays)))
            in_hospital = set(conn.scalars(
                select(inpatient_bed_stay.c.patient_id).where(open_stays)))
            seen_here = set(conn.scalars(select(inpatient_bed_stay.c.patient_id).where(
                inpatient_bed_stay.c.hospital_id == HOSPITAL,
                open_stays | (inpatient_bed_stay.c.ended >= since)).distinct()))
            bed = inpatient_bed.c
            rows = conn.execute(select(bed.bed_id, bed.ward_id, bed.department_id,
                                       bed.campus_id).where(
                bed.hospital_id == HOSPITAL, bed.status == "U", bed.ward_id.is_not(None))
                .order_by(bed.bed_id)).all()
            rows = [row for row in rows if row.bed_id not in occupied]
            wards = {row.ward_id for row in rows}
            rules = {ward["id"]: _rule(ward) for ward in _contents(conn, "Location")
                     if ward["id"] in wards}
            patients = []
            for record in _contents(conn, "Patient"):
                birth = record.get("birthDate")
                if record["id"] in in_hospital or not isinstance(birth, str) or len(birth) < 10:
                    continue
                registered = _reference(record.get("managingOrganization"), "Organization")
                if registered != HOSPITAL and record["id"] not in seen_here:
                    continue
                patients.append(Patient(record["id"], record.get("gender"),
                                        date.fromisoformat(birth[:10])))
            doctors = _doctors(conn)
    finally:
        engine.dispose()
    beds = [Bed(row.bed_id, row.ward_id, row.department_id or "", row.campus_id,
                rules.get(row.ward_id, Rule())) for row in rows]
    rng.shuffle(beds)
    rng.shuffle(patients)
    bodies = _Bodies(doctors, rng, today)
    chooser = _Chooser(patients, today)

    reserve_patients = min(RACE_PATIENTS, len(beds) // (6 * clerks))
    reserve_beds = min(RACE_BEDS, len(beds) // 6)
    race_patients: list[list[Task]] = []
    taken: set[str] = set()
    # One patient, a bed per clerk: beds of one department in wards without sex or age limits.
    by_department: dict[str, list[Bed]] = {}
    for candidate in beds:
        rule = candidate.rule
        if rule.sex is None and rule.min_age is None and rule.max_age is None:
            by_department.setdefault(candidate.department_id, []).append(candidate)
    for _ in range(reserve_patients):
        group = next((free[:clerks] for free in (
            [b for b in listed if b.id not in taken] for listed in by_department.values())
            if len(free) >= clerks), None)
        patient = chooser.take(group[0]) if group else None
        if group is None or patient is None:
            break
        taken.update(b.id for b in group)
        race_patients.append([bodies.task(b, patient) for b in group])
    race_beds: list[list[Task]] = []
    for candidate in beds:
        if len(race_beds) >= reserve_beds:
            break
        if candidate.id in taken:
            continue
        group_patients = [chooser.take(candidate) for _ in range(clerks)]
        if any(p is None for p in group_patients):
            continue
        taken.add(candidate.id)
        race_beds.append([bodies.task(candidate, p) for p in group_patients if p is not None])
    serial: list[Task] = []
    distinct: list[list[Task]] = [[] for _ in range(clerks)]
    turn = 0
    for candidate in beds:
        if candidate.id in taken:
            continue
        patient = chooser.take(candidate)
        if patient is None:
            continue
        taken.add(candidate.id)
        if len(serial) < SERIAL + WARMUP_PER_CLERK:
            serial.append(bodies.task(candidate, patient))
            continue
        distinct[turn % clerks].append(bodies.task(candidate, patient))
        turn += 1
    return Plan(clerks, serial, distinct, race_beds, race_patients, sorted(taken), len(beds),
                len(patients))


class _Chooser:
    """Waiting patients, each given once, the first a bed's ward admits."""

    def __init__(self, patients: Sequence[Patient], today: date) -> None:
        self.patients = list(patients)
        self.today = today
        self.used: set[str] = set()
        self.cursors: dict[tuple[Rule, str], int] = {}

    def take(self, bed: Bed) -> Patient | None:
        key = (bed.rule, bed.department_id)
        position = self.cursors.get(key, 0)
        while position < len(self.patients):
            patient = self.patients[position]
            position += 1
            if patient.id not in self.used and bed.rule.admits(patient, bed.department_id,
                                                               self.today):
                self.used.add(patient.id)
                self.cursors[key] = position
                return patient
        self.cursors[key] = position
        return None


# --- putting the database back --------------------------------------------------------------


@dataclass
class Snapshot:
    """What the admissions may change, as it was before them."""

    max_resource_pk: int
    max_stay_pk: int
    beds: list[Row]  # resource rows (pk, version, last_updated, deleted) of the planned beds
    bed_index: dict[str, list[Row]]  # their index rows, by table, with their ids
    register: list[Row]  # their inpatient_bed rows
    counters: list[Row]  # every inpatient_counter row

    @property
    def bed_pks(self) -> list[int]:
        return [row["pk"] for row in self.beds]

    def tables_of(self, pk: int) -> list[str]:
        return [name for name, rows in self.bed_index.items()
                if any(row["resource_pk"] == pk for row in rows)]


def _batches(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def snapshot(url: str, bed_ids: Sequence[str]) -> Snapshot:
    engine = make_engine(url, pool_size=1)
    try:
        with read_transaction(engine) as conn:
            max_pk = conn.execute(select(func.max(resource.c.pk))).scalar() or 0
            max_stay = conn.execute(select(func.max(inpatient_bed_stay.c.pk))).scalar() or 0
            beds: list[Row] = []
            register: list[Row] = []
            for batch in _batches(list(bed_ids)):
                beds += [dict(r) for r in conn.execute(
                    select(resource.c.pk, resource.c.version, resource.c.last_updated,
                           resource.c.deleted)
                    .where(resource.c.res_type == "Location", resource.c.res_id.in_(batch))
                ).mappings()]
                register += [dict(r) for r in conn.execute(
                    select(inpatient_bed).where(inpatient_bed.c.bed_id.in_(batch))).mappings()]
            pks = [row["pk"] for row in beds]
            index: dict[str, list[Row]] = {}
            for name, table in INDEX_TABLES.items():
                for batch in _batches(pks):
                    index.setdefault(name, []).extend(dict(r) for r in conn.execute(
                        select(table).where(table.c.resource_pk.in_(batch))).mappings())
            counters = [dict(r) for r in conn.execute(select(inpatient_counter)).mappings()]
    finally:
        engine.dispose()
    return Snapshot(max_pk, max_stay, beds, index, register, counters)


def undo(url: str, before: Snapshot) -> int:
    """Put back what admissions changed since `before`; returns the stays removed."""
    engine = make_engine(url, pool_size=1)
    try:
        with write_transaction(engine) as conn:
            new_pks = list(conn.scalars(select(resource.c.pk).where(
                resource.c.pk > before.max_resource_pk)))
            for batch in _batches(new_pks):
                for table in INDEX_TABLES.values():
                    conn.execute(delete(table).where(table.c.resource_pk.in_(batch)))
                conn.execute(delete(resource_version).where(
                    resource_version.c.resource_pk.in_(batch)))
            conn.execute(delete(resource).where(resource.c.pk > before.max_resource_pk))
            for row in before.beds:
                conn.execute(delete(resource_version).where(
                    resource_version.c.resource_pk == row["pk"],
                    resource_version.c.version > row["version"]))
            if before.beds:
                conn.execute(update(resource).where(resource.c.pk == bindparam("b_pk")).values(
                    version=bindparam("b_version"), last_updated=bindparam("b_last_updated"),
                    deleted=bindparam("b_deleted")),
                    [{f"b_{k}": v for k, v in row.items()} for row in before.beds])
            for batch in _batches(before.bed_pks):
                for table in INDEX_TABLES.values():
                    conn.execute(delete(table).where(table.c.resource_pk.in_(batch)))
            for name, rows in before.bed_index.items():
                if rows:
                    conn.execute(insert(INDEX_TABLES[name]), rows)
            for batch in _batches([row["bed_id"] for row in before.register]):
                conn.execute(delete(inpatient_bed).where(inpatient_bed.c.bed_id.in_(batch)))
            if before.register:
                conn.execute(insert(inpatient_bed), before.register)
            removed = conn.execute(delete(inpatient_bed_stay).where(
                inpatient_bed_stay.c.pk > before.max_stay_pk)).rowcount
            conn.execute(delete(inpatient_counter))
            if before.counters:
                conn.execute(insert(inpatient_counter), before.counters)
    finally:
        engine.dispose()
    return int(removed or 0)


# --- the checks -----------------------------------------------------------------------------


@dataclass
class StayCheck:
    beds_twice: int  # beds with more than one open stay
    patients_twice: int  # patients with more than one open stay
    new_open: int  # open stays begun by the admissions
    problems: list[str] = field(default_factory=list)


def check_stays(url: str, before: Snapshot, admitted: Sequence[tuple[str, str]],
                refused: Sequence[tuple[str, str]]) -> StayCheck:
    """The movement record after the admissions: `admitted` (bed, patient) pairs answered
    200 must each have one open stay, `refused` ones none (unless the same pair won too)."""
    engine = make_engine(url, pool_size=1)
    try:
        with read_transaction(engine) as conn:
            stay = inpatient_bed_stay.c
            beds_twice = len(conn.execute(select(stay.bed_id).where(stay.ended.is_(None))
                                          .group_by(stay.bed_id)
                                          .having(func.count() > 1)).all())
            patients_twice = len(conn.execute(select(stay.patient_id)
                                              .where(stay.ended.is_(None))
                                              .group_by(stay.patient_id)
                                              .having(func.count() > 1)).all())
            new = [(row.bed_id, row.patient_id) for row in conn.execute(
                select(stay.bed_id, stay.patient_id).where(stay.pk > before.max_stay_pk,
                                                           stay.ended.is_(None)))]
            registered = dict(conn.execute(select(inpatient_bed.c.bed_id, inpatient_bed.c.status)
                                           .where(inpatient_bed.c.hospital_id == HOSPITAL)).all())
    finally:
        engine.dispose()
    problems: list[str] = []
    found = Counter(new)
    wanted = Counter(admitted)
    missing = wanted - found
    extra = found - wanted
    if missing:
        problems.append(f"{sum(missing.values())} admissions answered 200 have no open stay, "
                        f"e.g. {next(iter(missing))}")
    if extra:
        problems.append(f"{sum(extra.values())} open stays that no 200 answered, "
                        f"e.g. {next(iter(extra))}")
    lost = [pair for pair in refused if pair in found and pair not in wanted]
    if lost:
        problems.append(f"{len(lost)} refused admissions have an open stay, e.g. {lost[0]}")
    not_occupied = [bed for bed, _ in new if registered.get(bed) != "O"]
    if not_occupied:
        problems.append(f"{len(not_occupied)} beds with a new stay are not occupied in the bed "
                        f"register, e.g. {not_occupied[0]}")
    return StayCheck(beds_twice, patients_twice, len(new), problems)


# --- the ceiling ----------------------------------------------------------------------------


@dataclass
class AdmissionRows:
    """The rows one admission wrote (read back from the server's database)."""

    resources: list[Row]  # new: the Condition and the Encounter, with their pks
    bed: Row  # pk, version, last_updated: the bed's resource row after
    versions: list[Row]  # the three new versions
    index: dict[str, list[Row]]  # the three resources' index rows, by table, without ids
    bed_tables: list[str]  # the index tables the bed's old rows were in (deleted)
    bed_id: str
    bed_status: str
    stay: Row  # without pk
    counter: tuple[str, int, int]  # hospital, year, last

    def count(self) -> int:
        return (len(self.resources) + 1 + len(self.versions) + 2
                + sum(len(rows) for rows in self.index.values()))


def read_back(url: str, before: Snapshot, clerks: Sequence[Sequence[tuple[str, str]]]
              ) -> list[list[AdmissionRows]]:
    """Per clerk, in its order, the rows of its admissions (bed, patient) that were made."""
    engine = make_engine(url, pool_size=1)
    try:
        with read_transaction(engine) as conn:
            stays = {(row["bed_id"], row["patient_id"]): row for row in (
                dict(r) for r in conn.execute(select(inpatient_bed_stay).where(
                    inpatient_bed_stay.c.pk > before.max_stay_pk)).mappings())}
            new = {(row["res_type"], row["res_id"]): row for row in (
                dict(r) for r in conn.execute(select(resource).where(
                    resource.c.pk > before.max_resource_pk)).mappings())}
            by_pk: dict[int, list[Row]] = {}
            for row in conn.execute(select(resource_version).where(
                    resource_version.c.resource_pk > before.max_resource_pk)).mappings():
                by_pk.setdefault(row["resource_pk"], []).append(dict(row))
            beds = {row["pk"]: row for row in before.beds}
            bed_pk = {}
            for batch in _batches(before.bed_pks):
                for row in conn.execute(select(resource.c.pk, resource.c.res_id,
                                               resource.c.version, resource.c.last_updated)
                                        .where(resource.c.pk.in_(batch))).mappings():
                    bed_pk[row["res_id"]] = dict(row)
            index: dict[int, dict[str, list[Row]]] = {}
            wanted_pks = [row["pk"] for row in new.values()] + list(beds)
            for name, table in INDEX_TABLES.items():
                for batch in _batches(wanted_pks):
                    for row in conn.execute(select(table).where(
                            table.c.resource_pk.in_(batch))).mappings():
                        index.setdefault(row["resource_pk"], {}).setdefault(name, []).append(
                            dict(row))
            bed_versions: dict[int, list[Row]] = {}
            for old in before.beds:
                bed_versions[old["pk"]] = [dict(r) for r in conn.execute(
                    select(resource_version).where(
                        resource_version.c.resource_pk == old["pk"],
                        resource_version.c.version > old["version"])).mappings()]
            register = dict(conn.execute(select(inpatient_bed.c.bed_id,
                                                inpatient_bed.c.status)).all())
    finally:
        engine.dispose()
    found: list[list[AdmissionRows]] = []
    for pairs in clerks:
        mine: list[AdmissionRows] = []
        for pair in pairs:
            stay = stays.get(pair)
            if stay is None:
                continue
            encounter = new[("Encounter", stay["encounter_id"])]
            versions = by_pk[encounter["pk"]]
            content = orjson.loads(versions[-1]["content"])
            conditions = [new[("Condition", ref.removeprefix("Condition/"))]
                          for ref in (d["condition"]["reference"]
                                      for d in content.get("diagnosis", []))]
            number = content["identifier"][0]["value"]  # ZY + year + six digits
            bed = bed_pk[stay["bed_id"]]
            created = [*conditions, encounter]
            rows_index: dict[str, list[Row]] = {}
            for pk in [r["pk"] for r in created] + [bed["pk"]]:
                for name, rows in index.get(pk, {}).items():
                    rows_index.setdefault(name, []).extend(rows)
            del stay["pk"]
            mine.append(AdmissionRows(
                resources=created, bed=bed,
                versions=[v for r in created for v in by_pk[r["pk"]]]
                + bed_versions[bed["pk"]],
                index=rows_index, bed_tables=before.tables_of(bed["pk"]),
                bed_id=stay["bed_id"], bed_status=register[stay["bed_id"]], stay=stay,
                counter=(stay["hospital_id"], int(number[2:6]), int(number[6:]))))
        found.append(mine)
    return found


def _write(conn: Connection, rows: AdmissionRows) -> None:
    conn.execute(insert(resource), rows.resources)
    conn.execute(update(resource).where(resource.c.pk == rows.bed["pk"]).values(
        version=rows.bed["version"], last_updated=rows.bed["last_updated"]))
    for name in rows.bed_tables:
        table = INDEX_TABLES[name]
        conn.execute(delete(table).where(table.c.resource_pk == rows.bed["pk"]))
    conn.execute(insert(resource_version), rows.versions)
    for name, index_rows in rows.index.items():
        conn.execute(insert(INDEX_TABLES[name]), index_rows)
    conn.execute(update(inpatient_bed).where(inpatient_bed.c.bed_id == rows.bed_id)
                 .values(status=rows.bed_status))
    conn.execute(insert(inpatient_bed_stay), [rows.stay])
    hospital, year, last = rows.counter
    key = (inpatient_counter.c.hospital_id == hospital) & (inpatient_counter.c.year == year)
    if not conn.execute(update(inpatient_counter).where(key).values(last=last)).rowcount:
        conn.execute(insert(inpatient_counter), [{"hospital_id": hospital, "year": year,
                                                  "last": last}])


@dataclass
class Replayed:
    admissions: int  # timed
    seconds: float  # wall time of the timed part
    latencies: list[float]  # per transaction, sorted
    rows: int  # rows written per timed admission, on average

    @property
    def rate(self) -> float:
        return self.admissions / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(fraction * (len(self.latencies) - 1)))
        return self.latencies[index] * 1000.0


def replay(url: str, clerks: list[list[AdmissionRows]],
           warmup: int = WARMUP_PER_CLERK) -> Replayed:
    """The rows written again, a thread per clerk, one write transaction per admission; each
    thread's first `warmup` admissions are not timed (as the clerks' were not)."""
    engine = make_engine(url, pool_size=len(clerks))
    latencies: list[float] = []
    ends: list[float] = []
    errors: list[BaseException] = []
    started: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(clerks), action=lambda: started.append(time.perf_counter()))

    def clerk(admissions: list[AdmissionRows]) -> None:
        mine: list[float] = []
        try:
            for n, rows in enumerate(admissions):
                if n == warmup:
                    barrier.wait()
                began = time.perf_counter()
                with write_transaction(engine) as conn:
                    _write(conn, rows)
                if n >= warmup:
                    mine.append(time.perf_counter() - began)
            if len(admissions) <= warmup:
                barrier.wait()
        except BaseException as error:  # reported below
            errors.append(error)
            barrier.abort()
        with lock:
            latencies.extend(mine)
            ends.append(time.perf_counter())

    try:
        with engine.connect():  # open a pooled connection outside the timing
            pass
        threads = [threading.Thread(target=clerk, args=(admissions,), name=f"bench-clerk-{n}")
                   for n, admissions in enumerate(clerks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        engine.dispose()
    if errors:
        raise RuntimeError(f"the ceiling's rows could not be written: {errors[0]!r}") \
            from errors[0]
    timed = [rows for admissions in clerks for rows in admissions[warmup:]]
    seconds = max(ends) - started[0] if started else 0.0
    average = round(sum(r.count() for r in timed) / len(timed)) if timed else 0
    return Replayed(len(timed), seconds, sorted(latencies), average)

