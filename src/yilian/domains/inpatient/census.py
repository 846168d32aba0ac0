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
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, Connection, Integer, cast, func, select

from yilian.domains.inpatient.codes import BedStatus
from yilian.domains.inpatient.repository import read_many
from yilian.domains.inpatient.tables import inpatient_bed, inpatient_bed_stay
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
    # Events by day (index: days after the first), kept for the totals only.
    by_day: dict[str, list[int]] | None = None


def census(conn: Connection, query: CensusQuery, now: datetime) -> JsonObject:
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

    stay = inpatient_bed_stay.c
    stay_filters = [stay[name] == value for name, value in query.filters().items()]
    # Moments as epoch seconds from the database, days as integers: a year of a group's
    # stays is counted in milliseconds, not in a million datetime conversions.
    began, ended, admitted = (_epoch(conn, c) for c in (stay.began, stay.ended, stay.admitted))
    span = _Span(_day_number(query.start), _day_number(last),
                 _epoch_of(query.start), _epoch_of(query.end + timedelta(days=1)))
    window = [stay.began < _midnight(query.end + timedelta(days=1)), *stay_filters]
    columns = (stay[query.by.column], began, ended, stay.came_by, stay.left_by, admitted,
               stay.encounter_id)
    # Two indexed lookups (stays still open; stays ended since the start) rather than one OR.
    rows = [*conn.execute(select(*columns).where(stay.ended.is_(None), *window)).all(),
            *conn.execute(select(*columns).where(stay.ended >= _midnight(query.start),
                                                 *window)).all()]
    # Where each moved patient came from: the group of the bed they left at that moment.
    left = {(row[6], row[2]): row[0] for row in rows if row[4] == "transfer"}
    for key, start_s, end_s, came_by, left_by, admitted_s, encounter in rows:
        moved_in = came_by == "transfer" and left.get((encounter, start_s)) != key
        span.count(groups[key], int(start_s), None if end_s is None else int(end_s), came_by,
                   left_by, int(admitted_s), moved_in)
        span.count(totals, int(start_s), None if end_s is None else int(end_s), came_by,
                   left_by, int(admitted_s), came_by == "transfer")
    if query.end >= today:
        for key, count in conn.execute(
                select(stay[query.by.column], func.count())
                .where(stay.ended.is_(None), *stay_filters).group_by(stay[query.by.column])):
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


_DAY = 86_400
# Asia/Shanghai keeps UTC+8 all year (no daylight saving since 1991): a local day is a whole
# number of seconds after the epoch, shifted by eight hours.
_SHIFT = 8 * 3_600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class _Span:
    """The period counted: its first and last counted day numbers, and its bounds in epoch
    seconds (events happen from the first day's midnight up to the day after the last)."""

    first: int
    last: int
    start: int
    end: int

    def count(self, figures: _Figures, began: int, ended: int | None, came_by: str,
              left_by: str | None, admitted: int, moved_in: bool) -> None:
        first = self.first
        if self.start <= began < self.end and (came_by == "admit" or moved_in):
            kind = "admissions" if came_by == "admit" else "transfers"
            if came_by == "admit":
                figures.admissions += 1
            else:
                figures.transfers += 1
            if figures.by_day is not None:
                figures.by_day[kind][(began + _SHIFT) // _DAY - first] += 1
        if ended is not None and self.start <= ended < self.end and left_by == "discharge":
            figures.discharges += 1
            figures.los_days += max(1, (ended + _SHIFT) // _DAY - (admitted + _SHIFT) // _DAY)
            if figures.by_day is not None:
                figures.by_day["discharges"][(ended + _SHIFT) // _DAY - first] += 1
        # In a bed at the midnight ending each day, from the day it came to the day before
        # it left.
        from_day = max((began + _SHIFT) // _DAY, first)
        to_day = min((ended + _SHIFT) // _DAY - 1, self.last) if ended is not None \
            else self.last
        if from_day <= to_day:
            figures.daily[from_day - first] += 1
            figures.daily[to_day - first + 1] -= 1


def _day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def _epoch_of(day: date) -> int:
    """The epoch second of the day's local midnight."""
    return _day_number(day) * _DAY - _SHIFT


def _epoch(conn: Connection, column: Any) -> Any:
    if conn.dialect.name == "sqlite":  # stored as UTC text: 2026-11-24 02:00:00.123456
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def _summary(figures: _Figures, counted: int) -> JsonObject:
    census_days = _running(figures.daily)[:counted]
    patient_days = sum(census_days)
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


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), DISPLAY_ZONE)

