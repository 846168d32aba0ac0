"""Census and statistics of the inpatient wards, counted from the movement record.

Definitions, as Chinese hospital statistics use them:
- in hospital on a day (当日在院): patients in a bed at the day's midnight census (24:00,
  Asia/Shanghai); for today, those in a bed now;
- patient-days (实际占用总床日数): the sum of the days' census;
- occupancy (病床使用率): patient-days ÷ (open beds × days);
- admissions (入院) and discharges (出院) by the day they happen; transfers (转入): a patient
  coming into a bed of the group from a bed of another group (a move within a ward is no
  transfer into it; by hospital, only moves from another hospital would be); the totals
  count every move between beds (转床);
- average length of stay (出院者平均住院日): over the period's discharges, discharge date
  − admission date in days, a same-day stay counting one.
Each event belongs to the group (hospital, campus, department, ward) of the bed it happens in;
by department, stays count for the patient's department and beds for their ward's (a ward
shared by two departments lends its beds to the first): occupancy by department is then an
approximation, exact by ward.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from itertools import accumulate
from typing import Any

from sqlalchemy import Connection, func, select

from yilian.domains.inpatient.census_days import (
    closed_through,
    day_number,
    day_of,
    epoch_of,
    settled_stays,
    stays_between,
)
from yilian.domains.inpatient.codes import BedStatus
from yilian.domains.inpatient.repository import read_many
from yilian.domains.inpatient.tables import inpatient_bed, inpatient_bed_stay, inpatient_census_day
from yilian.kit.clock import DISPLAY_ZONE

JsonObject = dict[str, Any]
MAX_DAYS = 400


class GroupBy(StrEnum):
    HOSPITAL = "hospital"
    CAMPUS = "campus"
    DEPARTMENT = "department"
    WARD = "ward"

    @property
    def column(self) -> str:
        return f"{self.value}_id"

    @property
    def resource_type(self) -> str:
        return {"hospital": "Organization", "campus": "Organization",
                "department": "HealthcareService", "ward": "Location"}[self.value]


@dataclass(frozen=True, slots=True)
class CensusQuery:
    start: date
    end: date  # inclusive
    by: GroupBy = GroupBy.CAMPUS
    hospital: str | None = None
    campus: str | None = None
    department: str | None = None
    ward: str | None = None

    def filters(self) -> dict[str, str]:
        return {f"{name}_id": value for name, value in (
            ("hospital", self.hospital), ("campus", self.campus),
            ("department", self.department), ("ward", self.ward)) if value}


@dataclass
class _Figures:
    beds: int = 0
    closed: int = 0
    in_hospital_now: int = 0
    admissions: int = 0
    discharges: int = 0
    transfers: int = 0
    los_days: int = 0
    daily: list[int] = field(default_factory=list)  # the difference array of the census
    patient_days: int = 0  # of the closed days (census_days), besides `daily`
    # Events by day (index: days after the first), kept for the totals only.
    by_day: dict[str, list[int]] | None = None


def census(conn: Connection, query: CensusQuery, now: datetime) -> JsonObject:
    """The figures; the days closed already (census_days) are read from their table, the
    others counted from the movement record."""
    today = now.astimezone(DISPLAY_ZONE).date()
    last = min(query.end, today)
    days = [query.start + timedelta(days=n) for n in range((query.end - query.start).days + 1)]
    counted = max(0, (last - query.start).days + 1)  # the days whose census exists
    groups: dict[str, _Figures] = defaultdict(lambda: _Figures(daily=[0] * (len(days) + 1)))
    totals = _Figures(daily=[0] * (len(days) + 1),
                      by_day={k: [0] * len(days) for k in ("admissions", "discharges",
                                                          "transfers")})

    bed = inpatient_bed.c
    filters = [bed[name] == value for name, value in query.filters().items()]
    for key, status, count in conn.execute(
            select(bed[query.by.column], bed.status, func.count())
            .where(bed.ward_id.is_not(None), *filters)
            .group_by(bed[query.by.column], bed.status)):
        for figures in (groups[key], totals):
            figures.beds += count
            if status == BedStatus.CLOSED.value:
                figures.closed += count

    through = closed_through(conn)
    live_from = query.start
    if through is not None and through >= query.start and counted:
        closed_last = min(through, last)
        _add_closed_days(conn, query, closed_last, groups, totals)
        live_from = closed_last + timedelta(days=1)
    if live_from <= query.end:
        _count_live(conn, query, live_from, last, groups, totals)

    if query.end >= today:
        stay = inpatient_bed_stay.c
        for key, count in conn.execute(
                select(stay[query.by.column], func.count())
                .where(stay.ended.is_(None), *(stay[name] == value for name, value
                                               in query.filters().items()))
                .group_by(stay[query.by.column])):
            groups[key].in_hospital_now += count
            totals.in_hospital_now += count

    names = _names(conn, query.by, [k for k in groups if k is not None])
    return {
        "from": query.start.isoformat(), "to": query.end.isoformat(), "by": query.by.value,
        "filters": query.filters(), "asOf": now.astimezone(DISPLAY_ZONE).isoformat(),
        "totals": _summary(totals, counted),
        "groups": sorted(({"id": key, "name": names.get(key, key), **_summary(f, counted)}
                          for key, f in groups.items() if key is not None),
                         key=lambda g: str(g["name"])),
        "days": _days(totals, days, counted),
    }


def _add_closed_days(conn: Connection, query: CensusQuery, closed_last: date,
                     groups: dict[str, _Figures], totals: _Figures) -> None:
    """The days from the query's first to `closed_last`, from their closed figures: sums by
    group, then by day for the totals."""
    day = inpatient_census_day.c
    where = (day.day >= query.start, day.day <= closed_last,
             *(day[name] == value for name, value in query.filters().items()))
    moved_in = day[f"from_other_{query.by.value}"]
    for key, patient_days, admissions, discharges, los_days, transfers in conn.execute(
            select(day[query.by.column], func.sum(day.in_hospital), func.sum(day.admissions),
                   func.sum(day.discharges), func.sum(day.los_days), func.sum(moved_in))
            .where(*where).group_by(day[query.by.column])):
        figures = groups[key]
        figures.patient_days += int(patient_days)
        figures.admissions += int(admissions)
        figures.discharges += int(discharges)
        figures.los_days += int(los_days)
        figures.transfers += int(transfers)
    events = totals.by_day or {}
    for when, in_hospital, admissions, discharges, los_days, moves in conn.execute(
            select(day.day, func.sum(day.in_hospital), func.sum(day.admissions),
                   func.sum(day.discharges), func.sum(day.los_days), func.sum(day.moves))
            .where(*where).group_by(day.day)):
        n = (when - query.start).days
        totals.daily[n] += int(in_hospital)
        totals.daily[n + 1] -= int(in_hospital)
        totals.admissions += int(admissions)
        totals.discharges += int(discharges)
        totals.los_days += int(los_days)
        totals.transfers += int(moves)
        for kind, count in (("admissions", admissions), ("discharges", discharges),
                            ("transfers", moves)):
            events[kind][n] += int(count)


def _count_live(conn: Connection, query: CensusQuery, live_from: date, last: date,
                groups: dict[str, _Figures], totals: _Figures) -> None:
    """The days from `live_from` on, counted from the movement record."""
    stay = inpatient_bed_stay.c
    span = _Span(day_number(query.start), day_number(live_from), day_number(last),
                 epoch_of(live_from), epoch_of(query.end + timedelta(days=1)))
    if span.first <= span.last:
        for key, count in settled_stays(conn, live_from, query.filters(),
                                        stay[query.by.column]):
            for figures in (groups[key], totals):
                figures.daily[span.first - span.base] += count
                figures.daily[span.last - span.base + 1] -= count
    rows = stays_between(conn, live_from, query.end + timedelta(days=1), query.filters(),
                         stay[query.by.column], settled_apart=True)
    # Where each moved patient came from: the group of the bed they left at that moment.
    left = {(row[6], row[2]): row[0] for row in rows if row[5] == "transfer"}
    for key, start_s, end_s, admitted_s, came_by, left_by, encounter in rows:
        moved_in = came_by == "transfer" and left.get((encounter, start_s)) != key
        ended = None if end_s is None else int(end_s)
        span.count(groups[key], int(start_s), ended, came_by, left_by, int(admitted_s),
                   moved_in)
        span.count(totals, int(start_s), ended, came_by, left_by, int(admitted_s),
                   came_by == "transfer")


@dataclass(frozen=True, slots=True)
class _Span:
    """The days counted live: the query's first day number (where the figures' day arrays
    begin), the first and last day numbers counted, and the bounds in epoch seconds (events
    happen from the first counted day's midnight up to the day after the query's last)."""

    base: int
    first: int
    last: int
    start: int
    end: int

    def count(self, figures: _Figures, began: int, ended: int | None, came_by: str,
              left_by: str | None, admitted: int, moved_in: bool) -> None:
        base = self.base
        if self.start <= began < self.end and (came_by == "admit" or moved_in):
            kind = "admissions" if came_by == "admit" else "transfers"
            if came_by == "admit":
                figures.admissions += 1
            else:
                figures.transfers += 1
            if figures.by_day is not None:
                figures.by_day[kind][day_of(began) - base] += 1
        if ended is not None and self.start <= ended < self.end and left_by == "discharge":
            figures.discharges += 1
            figures.los_days += max(1, day_of(ended) - day_of(admitted))
            if figures.by_day is not None:
                figures.by_day["discharges"][day_of(ended) - base] += 1
        # In a bed at the midnight ending each day, from the day it came to the day before
        # it left.
        from_day = max(day_of(began), self.first)
        to_day = min(day_of(ended) - 1, self.last) if ended is not None else self.last
        if from_day <= to_day:
            figures.daily[from_day - base] += 1
            figures.daily[to_day - base + 1] -= 1


def _summary(figures: _Figures, counted: int) -> JsonObject:
    patient_days = sum(accumulate(figures.daily[:counted])) + figures.patient_days
    open_beds = figures.beds - figures.closed
    return {
        "beds": figures.beds, "closedBeds": figures.closed,
        "inHospitalNow": figures.in_hospital_now,
        "admissions": figures.admissions, "discharges": figures.discharges,
        "transfers": figures.transfers, "patientDays": patient_days,
        "occupancyRate": round(patient_days / (open_beds * counted), 4)
        if open_beds > 0 and counted else None,
        "averageLengthOfStay": round(figures.los_days / figures.discharges, 2)
        if figures.discharges else None,
    }


def _days(totals: _Figures, days: list[date], counted: int) -> list[JsonObject]:
    """The selection day by day, up to today: the census and the day's events."""
    events = totals.by_day or {}
    census_days = _running(totals.daily)
    return [{"date": day.isoformat(), "inHospital": census_days[n],
             **{kind: counts[n] for kind, counts in events.items()}}
            for n, day in enumerate(days[:counted])]


def _running(diff: list[int]) -> list[int]:
    values, level = [], 0
    for step in diff[:-1]:
        level += step
        values.append(level)
    return values


def _names(conn: Connection, by: GroupBy, ids: list[str]) -> dict[str, str]:
    return {res_id: str(found.get("name", res_id))
            for res_id, found in read_many(conn, by.resource_type, ids).items()}
