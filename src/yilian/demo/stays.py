"""A year of inpatient stays, simulated ward by ward so that no bed is ever double-booked and
no patient is in two beds at once.

Each department's beds on a campus form a pool. Patients arrive at the rate that would keep
the pool ~90% full (fewer get a bed when it is full), stay for their diagnosis' usual length
(log-normal around it), sometimes move to another bed of the pool, and leave; a bed is
cleaned for a few hours before the next patient. Stays still running at `now` stay open:
the bed board shows them.
"""

from __future__ import annotations

import heapq
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

from yilian.demo.network import Bed, specialties
from yilian.domains.inpatient.codes import AdmitSource, Disposition

TARGET_OCCUPANCY = 0.92  # what arrivals aim at; stays refused when full bring it to ~85%
TRANSFER_SHARE = 0.06  # stays that change bed once
CLEANING_HOURS = (1.0, 5.0)
_SOURCES = ((AdmitSource.OUTPATIENT, 0.62), (AdmitSource.EMERGENCY, 0.30),
            (AdmitSource.REFERRAL, 0.08))
_DISPOSITIONS = ((Disposition.HOME, 0.90), (Disposition.TRANSFER_COMMUNITY, 0.04),
                 (Disposition.TRANSFER_HOSPITAL, 0.02), (Disposition.AGAINST_ADVICE, 0.03),
                 (Disposition.DIED, 0.006), (Disposition.OTHER, 0.004))


@dataclass(frozen=True, slots=True)
class Resident:
    """What the simulation needs of a patient."""

    id: str
    gender: str
    birth: date


@dataclass(frozen=True, slots=True)
class DiagnosisChoice:
    code: str
    zh: str
    en: str
    los_days: float
    sex: str | None = None
    min_age: int | None = None  # min_age <= age < max_age
    max_age: int | None = None

    def fits(self, person: Resident, on: date) -> bool:
        if self.sex and person.gender != self.sex:
            return False
        age = _age(person.birth, on)
        return (self.min_age is None or age >= self.min_age) and \
            (self.max_age is None or age < self.max_age)


@cache
def diagnoses() -> tuple[str, dict[str, tuple[DiagnosisChoice, ...]]]:
    """(ICD-10 system, the demo's diagnoses by specialty)."""
    data = json.loads(resources.files("yilian.domains.inpatient").joinpath(
        "data/diagnoses.json").read_text(encoding="utf-8"))
    return data["system"], {
        key: tuple(DiagnosisChoice(d["code"], d["zh"], d["en"], float(d["los_days"]),
                                   d.get("sex"), d.get("min_age"), d.get("max_age"))
                   for d in items)
        for key, items in data["specialties"].items()}


@dataclass(slots=True)
class Segment:
    bed: Bed
    began: datetime
    ended: datetime | None = None
    came_by: str = "admit"
    left_by: str | None = None


@dataclass(slots=True)
class Stay:
    number: int  # order of admission, network-wide
    patient: Resident
    department_id: str
    doctor_id: str
    diagnosis: DiagnosisChoice
    source: AdmitSource
    admitted: datetime
    planned_end: datetime
    expected_discharge: date
    segments: list[Segment] = field(default_factory=list)
    discharged: datetime | None = None
    disposition: Disposition | None = None

    @property
    def hospital_id(self) -> str:
        return self.segments[0].bed.hospital_id


@dataclass
class Simulation:
    stays: list[Stay]
    # When each bed was last left (for housekeeping at `now`).
    last_left: dict[str, datetime]


def simulate(beds: Sequence[Bed], residents: Sequence[Resident],
             doctors: dict[str, list[str]], *, now: datetime, days: int,
             seed: int = 7) -> Simulation:
    """All pools in one timeline: whether a patient is free depends on every other pool."""
    rng = random.Random(seed)
    start = now - timedelta(days=days)
    by_key: dict[tuple[str, str], list[Bed]] = {}
    for bed in beds:
        by_key.setdefault((bed.campus_id, bed.department_id), []).append(bed)
    timeline = _Timeline(_PatientChooser(residents, rng), rng, start)
    pools = [_Pool(key[1], members, doctors.get(key[1]) or ["unknown"], timeline)
             for key, members in sorted(by_key.items())]
    for pool in pools:
        pool.warm_start()
    timeline.run(now)
    stays = timeline.stays
    stays.sort(key=lambda s: (s.admitted, s.patient.id))
    for number, stay in enumerate(stays, start=1):
        stay.number = number
    return Simulation(stays, timeline.last_left)


class _PatientChooser:
    """Patients free at a moment, who fit a ward's sex and ages."""

    def __init__(self, residents: Sequence[Resident], rng: random.Random) -> None:
        self.residents = list(residents)
        self.rng = rng
        self.busy_until: dict[str, datetime] = {}

    def choose(self, at: datetime, specialty: str) -> Resident | None:
        rules = specialties()[specialty]
        for _ in range(40):
            person = self.residents[self.rng.randrange(len(self.residents))]
            busy = self.busy_until.get(person.id)
            if busy is not None and busy > at:
                continue
            if rules.sex and person.gender != rules.sex:
                continue
            age = _age(person.birth, at.date())
            if (rules.max_age is not None and age > rules.max_age) or \
                    (rules.min_age is not None and age < rules.min_age):
                continue
            return person
        return None

    def hold(self, person: Resident, until: datetime) -> None:
        self.busy_until[person.id] = until


class _Timeline:
    """The events of every pool, in time order: (moment, order, kind, pool, stay)."""

    def __init__(self, chooser: _PatientChooser, rng: random.Random, start: datetime) -> None:
        self.chooser = chooser
        self.rng = rng
        self.start = start
        self.events: list[tuple[datetime, int, str, _Pool, Stay | None]] = []
        self.order = 0
        self.stays: list[Stay] = []
        self.last_left: dict[str, datetime] = {}  # when each bed was last left

    def push(self, at: datetime, kind: str, pool: _Pool, stay: Stay | None) -> None:
        self.order += 1
        heapq.heappush(self.events, (at, self.order, kind, pool, stay))

    def run(self, now: datetime) -> None:
        while self.events:
            at, _, kind, pool, stay = heapq.heappop(self.events)
            if at >= now:
                break
            if kind == "arrive":
                pool.arrive(at)
            elif kind == "move" and stay is not None:
                pool.move(stay, at)
            elif stay is not None:
                pool.leave(stay, at)


class _Pool:
    """One department's beds on one campus."""

    def __init__(self, department_id: str, beds: list[Bed], doctors: list[str],
                 timeline: _Timeline) -> None:
        self.department_id = department_id
        self.beds = beds
        self.doctors = doctors
        self.timeline = timeline
        self.rng = timeline.rng
        self.choices = diagnoses()[1][beds[0].specialty]
        self.mean_los = sum(c.los_days for c in self.choices) / len(self.choices)
        self.rate_per_day = TARGET_OCCUPANCY * len(beds) / self.mean_los
        self.free_at: dict[str, datetime] = {bed.id: timeline.start for bed in beds}
        self.occupied: set[str] = set()

    def warm_start(self) -> None:
        """As full on the first day as on any other: stays admitted before the start."""
        start = self.timeline.start
        for bed in self.beds:
            if self.rng.random() < TARGET_OCCUPANCY * 0.93:
                admitted = start - timedelta(days=self.rng.uniform(0, self.mean_los))
                self._take(bed, admitted, at_least=start)
        self._next_arrival(start)

    def arrive(self, at: datetime) -> None:
        self._next_arrival(at)
        bed = self._free_bed(at)
        if bed is not None:  # else the pool is full: the patient waits elsewhere
            self._take(bed, at)

    def move(self, stay: Stay, at: datetime) -> None:
        current = stay.segments[-1]
        target = self._free_bed(at, excluding=current.bed.id)
        if target is None:
            return
        self._leave_bed(current, at, "transfer")
        self.occupied.add(target.id)
        stay.segments.append(Segment(target, at, came_by="transfer"))

    def leave(self, stay: Stay, at: datetime) -> None:
        stay.discharged = at
        stay.disposition = _pick(_DISPOSITIONS, self.rng)
        self._leave_bed(stay.segments[-1], at, "discharge")

    def _next_arrival(self, after: datetime) -> None:
        self.timeline.push(after + timedelta(days=self.rng.expovariate(self.rate_per_day)),
                           "arrive", self, None)

    def _take(self, bed: Bed, at: datetime, *, at_least: datetime | None = None) -> None:
        stay = _admit(self.rng, self.timeline.chooser, bed, self.department_id, self.doctors,
                      self.choices, at, at_least=at_least)
        if stay is None:
            return
        self.occupied.add(bed.id)
        self.timeline.stays.append(stay)
        end = stay.planned_end
        if at_least is None and self.rng.random() < TRANSFER_SHARE:
            self.timeline.push(at + (end - at) * self.rng.uniform(0.2, 0.7), "move", self, stay)
        self.timeline.push(end, "leave", self, stay)

    def _leave_bed(self, segment: Segment, at: datetime, how: str) -> None:
        segment.ended = at
        segment.left_by = how
        self.occupied.discard(segment.bed.id)
        self.free_at[segment.bed.id] = at + timedelta(hours=self.rng.uniform(*CLEANING_HOURS))
        self.timeline.last_left[segment.bed.id] = at

    def _free_bed(self, at: datetime, excluding: str | None = None) -> Bed | None:
        free = [b for b in self.beds if b.id not in self.occupied
                and self.free_at[b.id] <= at and b.id != excluding]
        return self.rng.choice(free) if free else None


def _admit(rng: random.Random, chooser: _PatientChooser, bed: Bed, department_id: str,
           doctors: list[str], choices: Sequence[DiagnosisChoice], at: datetime, *,
           at_least: datetime | None = None) -> Stay | None:
    """A stay in `bed` from `at`: a free patient who fits the ward, a diagnosis that fits
    the patient, and a length drawn for it (ending after `at_least`, when given)."""
    patient = chooser.choose(at, bed.specialty)
    if patient is None:
        return None
    fitting = [c for c in choices if c.fits(patient, at.date())]
    if not fitting:
        return None
    diagnosis = rng.choice(fitting)
    end = at + timedelta(days=_length(diagnosis, rng))
    if at_least is not None and end <= at_least:
        end = at_least + timedelta(hours=rng.uniform(1, 48))
    chooser.hold(patient, end + timedelta(days=1))
    expected = (end + timedelta(days=rng.choice((-1, 0, 0, 1)))).date()
    stay = Stay(0, patient, department_id, rng.choice(doctors), diagnosis,
                _pick(_SOURCES, rng), at, end, expected)
    stay.segments.append(Segment(bed, at))
    return stay






def _length(diagnosis: DiagnosisChoice, rng: random.Random) -> float:
    """Days in hospital: log-normal around the diagnosis' usual length, at least half a day."""
    sigma = 0.45
    return max(0.5, rng.lognormvariate(math.log(diagnosis.los_days) - sigma * sigma / 2, sigma))


def _pick(weighted: Sequence[tuple[Any, float]], rng: random.Random) -> Any:
    return rng.choices([v for v, _ in weighted], [w for _, w in weighted])[0]


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
