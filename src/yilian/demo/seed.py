"""Seed the demo network into a database: `yilian demo` (and `make run` on first start).

The network, its residents and a year of stays are written as FHIR resources through the
store's unit of work (validated and indexed like any write), the stays' movements into the
inpatient movement record, and the beds' states as they stand at `now`: occupied, being
cleaned, a few closed, a few reserved. Seeding is done once: a database that has the
network already is left alone. The medical centre's Organization is written last, in the
transaction that ends the seeding, so its presence says the seeding finished; a seeding that
was stopped (Ctrl-C in `make run`'s first minutes) leaves the hospitals without it, and is
told apart rather than taken for a finished one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from sqlalchemy import Connection, Engine, insert

from yilian.demo.network import Network, build_network
from yilian.demo.people import Person, people
from yilian.demo.population import coverage_resource, patient_resource
from yilian.demo.stays import Resident, Simulation, Stay, diagnoses, simulate
from yilian.domains.inpatient import census_days, records
from yilian.domains.inpatient.codes import BED_RESERVATION, BedStatus
from yilian.domains.inpatient.repository import BedStay, Place
from yilian.domains.inpatient.setup import write_hooks
from yilian.domains.inpatient.tables import inpatient_bed_stay, inpatient_counter
from yilian.fhir.interactions import check_resource
from yilian.fhir.search.extract import extract_index_rows
from yilian.fhir.store import sql as store
from yilian.kit.clock import DISPLAY_ZONE, to_instant, utcnow
from yilian.kit.db import write_transaction

JsonObject = dict[str, Any]
CENTRE_ID = "centre"  # written last: present once the seeding has finished
FIRST_HOSPITAL_ID = "h1"  # written first: present once a seeding has begun
CHUNK = 2_000  # resources per transaction
VALIDATED_PER_TYPE = 300  # every resource of a type is built alike: validate a sample
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True, slots=True)
class Seeded:
    resources: int
    patients: int
    beds: int
    stays: int
    open_stays: int


class SeedState(Enum):
    NONE = "none"
    UNFINISHED = "unfinished"  # a seeding began and was stopped before its end
    SEEDED = "seeded"


def seed_state(engine: Engine) -> SeedState:
    with engine.connect() as conn:
        centre = store.read_current(conn, "Organization", CENTRE_ID)
        if centre is not None and not centre.deleted:
            return SeedState.SEEDED
        begun = store.read_current(conn, "Organization", FIRST_HOSPITAL_ID)
    return SeedState.NONE if begun is None else SeedState.UNFINISHED


def is_seeded(engine: Engine) -> bool:
    return seed_state(engine) is SeedState.SEEDED


def seed(engine: Engine, *, patients: int = 20_000, days: int = 365, scale: float = 1.0,
         now: datetime | None = None, seed_value: int = 2026, validate_all: bool = False,
         progress: Progress | None = None) -> Seeded:
    now = now or utcnow()
    report = progress or (lambda stage, done, total: None)
    network = build_network(scale=scale, seed=seed_value)
    writer = _Writer(engine, validate_all, report)
    [centre] = [r for r in network.resources if r["id"] == CENTRE_ID]
    writer.write("network", [r for r in network.resources if r is not centre])

    residents, patient_resources = _population(network, patients, seed_value, now)
    writer.write("patients", patient_resources)

    simulation = simulate(network.beds, residents, network.doctors, now=now, days=days,
                          seed=seed_value)
    stays = _StayWriter(network, simulation, {r["id"]: r for r in patient_resources
                                              if r["resourceType"] == "Patient"})
    writer.write("stays", stays.resources(), total=2 * len(simulation.stays),
                 after_chunk=stays.flush_rows)
    beds = _bed_states(network, simulation, residents, now, random.Random(seed_value))
    writer.write("beds", beds, replace=True)

    def finish(conn: Connection) -> None:
        counters = [{"hospital_id": h, "year": y, "last": n}
                    for (h, y), n in stays.counters.items()]
        if counters:
            conn.execute(insert(inpatient_counter), counters)
        # The history just written: the census's closed days are counted again from it (a
        # year's in a second or two), here rather than on the first census someone asks for.
        # Closed as of the simulation's `now`, not the clock's: a seed of a past moment
        # leaves the days after it to the census, which closes them as they fall due.
        if simulation.stays:
            first = min(s.admitted for s in simulation.stays)
            census_days.reopen_from(conn, first.astimezone(DISPLAY_ZONE).date(), now)
        census_days.close_days(conn, now)

    writer.write("census", [centre], after_chunk=finish)  # the seeding's last transaction
    open_stays = sum(1 for s in simulation.stays if s.discharged is None)
    return Seeded(writer.count, len(residents), len(network.beds), len(simulation.stays),
                  open_stays)


class _Writer:
    """Resources in chunks, each chunk one transaction: validated (a sample per type, or
    all), indexed, inserted."""

    def __init__(self, engine: Engine, validate_all: bool, report: Progress) -> None:
        self.engine = engine
        self.validate_all = validate_all
        self.report = report
        self.validated: dict[str, int] = {}
        self.count = 0
        self.hooks = write_hooks()  # the bed register follows the beds as they are written

    def write(self, stage: str, resources: Iterable[JsonObject], *, total: int | None = None,
              replace: bool = False, after_chunk: Callable[[Any], None] | None = None) -> None:
        items = resources if isinstance(resources, list) else None
        expected = total if total is not None else len(items) if items is not None else 0
        done = 0
        self.report(stage, 0, expected)
        for chunk in _chunks(resources, CHUNK):
            with write_transaction(self.engine) as conn:
                uow = store.UnitOfWork(conn, utcnow(), extract_index_rows, self.hooks)
                # Rows to replace are locked before any write is staged: each lock flushes.
                currents = [uow.lock_current(r["resourceType"], r["id"]) if replace else None
                            for r in chunk]
                for resource, current in zip(chunk, currents, strict=True):
                    self._check(resource)
                    uow.put(resource["resourceType"], resource["id"], resource,
                            method="PUT", current=current)
                uow.flush()
                if after_chunk is not None:
                    after_chunk(conn)
            done += len(chunk)
            self.count += len(chunk)
            self.report(stage, done, max(expected, done))

    def _check(self, resource: JsonObject) -> None:
        res_type = resource["resourceType"]
        seen = self.validated.get(res_type, 0)
        if self.validate_all or seen < VALIDATED_PER_TYPE:
            check_resource(res_type, resource)
            self.validated[res_type] = seen + 1


def _chunks(items: Iterable[JsonObject], size: int) -> Iterator[list[JsonObject]]:
    chunk: list[JsonObject] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _population(network: Network, count: int, seed_value: int, now: datetime
                ) -> tuple[list[Resident], list[JsonObject]]:
    """Residents registered at the network's hospitals and community centres."""
    rng = random.Random(seed_value + 2)
    homes = network.hospitals + network.community_centres
    numbers: dict[str, int] = {}
    residents: list[Resident] = []
    resources: list[JsonObject] = []
    person: Person
    for index, person in enumerate(people(count, seed=seed_value + 3,
                                          today=now.astimezone(DISPLAY_ZONE).date()), start=1):
        patient_id = f"pt-{index:06d}"
        home = rng.choice(homes)
        numbers[home] = numbers.get(home, 0) + 1
        resources.append(patient_resource(person, patient_id, home_organization=home,
                                          mrn=f"{numbers[home]:08d}"))
        coverage = coverage_resource(person, patient_id)
        if coverage is not None:
            resources.append(coverage)
        residents.append(Resident(patient_id, person.gender, person.birth_date))
    return residents, resources


class _StayWriter:
    """Each stay as its Condition and Encounter (built as $admit, $transfer and $discharge
    build them), and its movements for the inpatient movement record."""

    def __init__(self, network: Network, simulation: Simulation,
                 patients: dict[str, JsonObject]) -> None:
        self.by_id = {(r["resourceType"], r["id"]): r for r in network.resources}
        self.simulation = simulation
        self.patients = patients
        self.counters: dict[tuple[str, int], int] = {}
        self.pending: list[dict[str, Any]] = []
        self.system = diagnoses()[0]

    def resources(self) -> Iterator[JsonObject]:
        for stay in self.simulation.stays:
            yield from self._stay(stay)

    def flush_rows(self, conn: Any) -> None:
        if self.pending:
            conn.execute(insert(inpatient_bed_stay), self.pending)
            self.pending = []

    def _place(self, stay: Stay, index: int) -> Place:
        bed = stay.segments[index].bed
        return Place(self.by_id[("Location", bed.id)], self.by_id[("Location", bed.ward_id)],
                     bed.campus_id, bed.hospital_id)

    def _stay(self, stay: Stay) -> Iterator[JsonObject]:
        encounter_id = f"enc-{stay.number:07d}"
        condition_id = f"dx-{stay.number:07d}"
        code = {"system": self.system, "code": stay.diagnosis.code,
                "display": stay.diagnosis.zh}
        discharged = stay.discharged
        yield records.diagnosis_condition(
            condition_id, code, stay.patient.id, encounter_id, discharged or stay.admitted,
            verification="confirmed" if discharged else "provisional")
        year = stay.admitted.astimezone(DISPLAY_ZONE).year
        key = (stay.hospital_id, year)
        self.counters[key] = self.counters.get(key, 0) + 1
        encounter = records.admission_encounter(
            encounter_id, number=f"ZY{year}{self.counters[key]:06d}", place=self._place(stay, 0),
            patient=self.patients[stay.patient.id], practitioner_id=stay.doctor_id,
            department=self.by_id[("HealthcareService", stay.department_id)],
            conditions=[condition_id], at=stay.admitted, admit_source=stay.source,
            expected_discharge=stay.expected_discharge)
        for index, segment in enumerate(stay.segments[1:], start=1):
            encounter = records.transferred(encounter, self._place(stay, index), segment.began,
                                            reason="床位调整", department=None)
        if discharged is not None and stay.disposition is not None:
            encounter = records.discharged(encounter, discharged, stay.disposition,
                                           [condition_id])
        for segment in stay.segments:
            bed = segment.bed
            self.pending.append(BedStay(
                encounter_id, stay.patient.id, bed.hospital_id, bed.campus_id,
                stay.department_id, bed.ward_id, bed.id, admitted=stay.admitted,
                began=segment.began, came_by=segment.came_by,
                expected_discharge=stay.expected_discharge, ended=segment.ended,
                left_by=segment.left_by).row())
        # Movement rows go in after each chunk; nothing reads them before seeding ends.
        yield encounter


def _bed_states(network: Network, simulation: Simulation, residents: list[Resident],
                now: datetime, rng: random.Random) -> list[JsonObject]:
    """Every bed whose state is not free: occupied, being cleaned (left within the last few
    hours), and among the free ones a few closed and a few reserved."""
    occupied = {s.segments[-1].bed.id for s in simulation.stays if s.discharged is None}
    in_hospital = {s.patient.id for s in simulation.stays if s.discharged is None}
    waiting = [r.id for r in residents if r.id not in in_hospital]
    locations = {r["id"]: r for r in network.resources if r["resourceType"] == "Location"}
    changed: list[JsonObject] = []
    for bed in network.beds:
        next_location = None
        left = simulation.last_left.get(bed.id)
        location = locations[bed.id]
        if bed.id in occupied:
            next_location = records.bed_in_state(location, BedStatus.OCCUPIED)
        elif left is not None and now - left < timedelta(hours=3):
            next_location = records.bed_in_state(location, BedStatus.HOUSEKEEPING)
        elif rng.random() < 0.015:
            next_location = records.bed_in_state(location, BedStatus.CLOSED,
                                                 note=rng.choice(("设备维修", "人员调配",
                                                                  "消毒中")))
        elif rng.random() < 0.01 and waiting:
            until = now + timedelta(hours=rng.randint(6, 72))
            reservation = {"url": BED_RESERVATION, "extension": [
                {"url": "expires", "valueDateTime": to_instant(until)},
                {"url": "patient", "valueReference": {
                    "reference": f"Patient/{rng.choice(waiting)}"}},
                {"url": "reason", "valueString": rng.choice(("社区转诊", "择期手术"))}]}
            next_location = records.bed_in_state(location, BedStatus.RESERVED,
                                                 reservation=reservation)
        if next_location is not None:
            changed.append(next_location)
    return changed

