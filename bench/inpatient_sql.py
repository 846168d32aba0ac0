"""The bed board and the census written by hand in SQL: what the database alone costs
(`python -m bench --inpatient`, bench/README.md, "The inpatient benchmark").

Each runs in this process through the database's own driver (bench/search_bench.Driver:
`sqlite3` with the server's PRAGMAs, `psycopg` in autocommit, which prepares repeated
statements), reading `inpatient_bed` and `inpatient_bed_stay` and the stored JSON of the
resources the answer shows (`resource_version.content`), as someone who knows the schema would
write it:

- the board: one statement for the campus's beds, each joined to its open stay (the partial
  unique index on open stays by bed) and that stay's Patient JSON; then one statement for the
  JSON of the wards, the departments, the campus and the reserved or closed beds;
- the census: the closed days (yilian.domains.inpatient.census_days) summed from
  `inpatient_census_day` by group and by day, as the server reads them; for the days after
  them, the stays that overlap those days selected once (a materialised CTE; SQLite finds
  those of a short period by the `ended` index, reads the table for a long one) and
  aggregated in SQL, per group (admissions, transfers, discharges, days of stay of the
  discharged, patient-days) and per day (events, and the in-hospital count as a difference
  array of first and last census days); the beds counted by group and state; the groups'
  names from their JSON. A group's transfers are the patients moved into it from another
  group (the totals count every transfer), as the server counts them. The period's days are
  local days of Asia/Shanghai (UTC+8 all year, no summer time), numbered as integers in SQL
  (SQLite: Julian day numbers of the stored UTC text; PostgreSQL: days since 1970 by
  date_part('epoch')), so that each timestamp is converted once.

The answers are checked against the server's on the same database: the board's beds,
stays and wards; the census's totals, groups and days, figure by figure.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from bench.search_bench import Driver, Timed
from yilian.kit.clock import DISPLAY_ZONE

JsonObject = dict[str, Any]

# --- the bed board --------------------------------------------------------------------------

_BOARD_BEDS = (
    "SELECT b.bed_id, b.name, b.parent_id, b.ward_id, b.department_id, b.status, "
    "s.encounter_id, s.patient_id, s.admitted, s.expected_discharge, s.department_id, "
    "v.content "
    "FROM inpatient_bed b "
    "LEFT JOIN inpatient_bed_stay s ON s.bed_id = b.bed_id AND s.ended IS NULL "
    "LEFT JOIN resource r ON r.res_type = 'Patient' AND r.res_id = s.patient_id "
    "LEFT JOIN resource_version v ON v.resource_pk = r.pk AND v.version = r.version "
    "WHERE b.campus_id = :campus AND b.ward_id IS NOT NULL")
_HELD = ("reserved", "C")  # the beds whose Location the board reads (reservation, reason)


def _contents_sql(groups: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    """One statement for the current JSON of resources of several types, by id."""
    clauses, params = [], {}
    for number, (res_type, ids) in enumerate(sorted(groups.items())):
        if not ids:
            continue
        marks = ", ".join(f":i{number}_{n}" for n in range(len(ids)))
        params.update({f"i{number}_{n}": res_id for n, res_id in enumerate(ids)})
        params[f"t{number}"] = res_type
        clauses.append(f"(r.res_type = :t{number} AND r.res_id IN ({marks}))")
    sql = ("SELECT r.res_type, r.res_id, v.content FROM resource r JOIN resource_version v "
           "ON v.resource_pk = r.pk AND v.version = r.version "
           f"WHERE NOT r.deleted AND ({' OR '.join(clauses)})")
    return sql, params


@dataclass
class BoardFound:
    beds: int
    stays: int
    patients: int  # stays whose Patient JSON was read
    wards: int
    resources: int  # the other JSON read: wards, departments, campus, held beds


def board_sql(db: Driver, campus: str) -> BoardFound:
    rows = db.rows(_BOARD_BEDS, {"campus": campus})
    wards = sorted({row[3] for row in rows})
    departments = sorted({row[4] for row in rows if row[4]})
    held = sorted(row[0] for row in rows if row[5] in _HELD)
    sql, params = _contents_sql({"Location": [*wards, *held],
                                 "HealthcareService": departments,
                                 "Organization": [campus]})
    others = db.rows(sql, params)
    stays = sum(1 for row in rows if row[6] is not None)
    patients = sum(1 for row in rows if row[11] is not None)
    return BoardFound(len(rows), stays, patients, len(wards), len(others))


def board_differences(found: BoardFound, answer: JsonObject) -> list[str]:
    """What the hand-written SQL found that the server's board does not show."""
    shown = [bed for ward in answer.get("wards", []) for bed in ward.get("beds", [])]
    server = {"beds": answer.get("summary", {}).get("beds"),
              "stays": sum(1 for bed in shown if "stay" in bed),
              "patients": sum(1 for bed in shown if "name" in bed.get("stay", {})),
              "wards": len(answer.get("wards", []))}
    mine = {"beds": found.beds, "stays": found.stays, "patients": found.patients,
            "wards": found.wards}
    return [f"{key}: SQL {mine[key]}, server {server[key]}" for key in mine
            if mine[key] != server[key]]


# --- the census -----------------------------------------------------------------------------

GROUP_COLUMNS = {"hospital": "hospital_id", "campus": "campus_id",
                 "department": "department_id", "ward": "ward_id"}
GROUP_TYPES = {"hospital": "Organization", "campus": "Organization",
               "department": "HealthcareService", "ward": "Location"}

# The overlapping stays once, with their local days; the rows of every figure come from it.
# SQLite: a local day as its Julian day number (an integer: julianday of the UTC text + 8 h,
# + 0.5 as Julian days begin at noon, and a hair more against rounding at midnight), so that
# each timestamp is parsed once and days are integer arithmetic.
JDN_OFFSET = 1721425  # Julian day number of date.fromordinal(0)
_JDN = "CAST(julianday({0}) + 0.8333333343 AS INTEGER)"
# A group's transfers are the patients moved into it from another group: a transfer stay whose
# previous bed (the same encounter's stay that ended, by transfer, when this one began) was
# not in the same group (the totals count every transfer).
_MOVED = (
    "CASE WHEN s.came_by = 'transfer' AND s.began >= :start_at THEN NOT EXISTS ("
    "SELECT 1 FROM inpatient_bed_stay p WHERE p.encounter_id = s.encounter_id "
    "AND p.ended = s.began AND p.left_by = 'transfer' AND p.{column} = s.{column}) "
    "ELSE {no} END AS moved")
_SQLITE_STAYS = (
    "SELECT g, began, ended, came_by, left_by, moved, bd, ed, ad, max(bd, :first) AS f, "
    "min(coalesce(ed - 1, :last), :last) AS t FROM ("
    "SELECT s.{column} AS g, s.began, s.ended, s.came_by, s.left_by, "
    + _MOVED.replace("{no}", "0") + ", "
    + f"{_JDN.format('s.began')} AS bd, {_JDN.format('s.ended')} AS ed, "
    f"{_JDN.format('s.admitted')} AS ad "
    + "FROM inpatient_bed_stay s WHERE {filters}s.began < :end_at "
    "AND ({plus}s.ended IS NULL OR {plus}s.ended >= :start_at))")
_SQLITE_GROUPS = (
    "SELECT 'g', g, sum(began >= :start_at AND came_by = 'admit'), "
    "sum(moved), "
    "sum(left_by = 'discharge' AND ended >= :start_at AND ended < :end_at), "
    "sum(CASE WHEN left_by = 'discharge' AND ended >= :start_at AND ended < :end_at "
    "THEN max(1, ed - ad) ELSE 0 END), "
    "sum(max(0, t - f + 1)) FROM o GROUP BY g")
# SQLite finds the stays of a short period by the `ended` index; for a long one reading the
# table is faster than an index lookup per row (`+ended`: not by the index).
SCAN_AFTER_DAYS = 90

# PostgreSQL: a local day as its number of days since 1970-01-01 (epoch seconds + 8 h, by
# date_part, a double: cheaper per row than AT TIME ZONE, or than extract's numeric).
EPOCH_OFFSET = -date(1970, 1, 1).toordinal()  # day number = ordinal + EPOCH_OFFSET
_PG_DAY = "CAST(floor((date_part('epoch', {0}) + 28800) / 86400) AS integer)"
_PG_STAYS = (
    "SELECT g, began, ended, came_by, left_by, moved, bd, ed, ad, GREATEST(bd, :first) AS f, "
    "LEAST(COALESCE(ed - 1, :last), :last) AS t FROM ("
    "SELECT s.{column} AS g, s.began, s.ended, s.came_by, s.left_by, "
    # The previous bed by a join, which the planner costs right (a correlated NOT EXISTS is
    # costed so high that PostgreSQL JIT-compiles the statement: ~180 ms each time).
    "(s.came_by = 'transfer' AND s.began >= :start_at AND (p.encounter_id IS NULL "
    "OR p.{column} <> s.{column})) AS moved, "
    f"{_PG_DAY.format('s.began')} AS bd, {_PG_DAY.format('s.ended')} AS ed, "
    f"{_PG_DAY.format('s.admitted')} AS ad "
    "FROM inpatient_bed_stay s LEFT JOIN inpatient_bed_stay p ON s.came_by = 'transfer' "
    "AND p.encounter_id = s.encounter_id AND p.ended = s.began AND p.left_by = 'transfer' "
    "WHERE {filters}s.began < :end_at "
    "AND ({plus}s.ended IS NULL OR {plus}s.ended >= :start_at)) AS d")
_PG_GROUPS = (
    "SELECT 'g', CAST(g AS text), "
    "count(*) FILTER (WHERE began >= :start_at AND came_by = 'admit'), "
    "count(*) FILTER (WHERE moved), "
    "count(*) FILTER (WHERE left_by = 'discharge' AND ended >= :start_at AND ended < :end_at), "
    "COALESCE(sum(GREATEST(1, ed - ad)) FILTER (WHERE left_by = 'discharge' "
    "AND ended >= :start_at AND ended < :end_at), 0), "
    "COALESCE(sum(GREATEST(0, t - f + 1)), 0) FROM o GROUP BY g")


def _census_sql(kind: str, column: str, filters: dict[str, str], now_too: bool,
                scan: bool) -> str:
    where = "".join(f"s.{name} = :{name} AND " for name in filters)
    stays = (_SQLITE_STAYS if kind == "sqlite" else _PG_STAYS).format(
        column=column, filters=where, plus="+" if scan and kind == "sqlite" else "")
    key = "{0}" if kind == "sqlite" else "CAST({0} AS text)"  # a group id or a day number
    pad = ", 0, 0, 0, 0 "
    parts = [
        _SQLITE_GROUPS if kind == "sqlite" else _PG_GROUPS,
        f"SELECT 'a', {key.format('bd')}, count(*){pad}FROM o "
        "WHERE began >= :start_at AND came_by = 'admit' GROUP BY bd",
        f"SELECT 't', {key.format('bd')}, count(*){pad}FROM o "
        "WHERE began >= :start_at AND came_by <> 'admit' GROUP BY bd",
        f"SELECT 'd', {key.format('ed')}, count(*){pad}FROM o WHERE left_by = 'discharge' "
        "AND ended >= :start_at AND ended < :end_at GROUP BY ed",
        f"SELECT 'in', {key.format('f')}, count(*){pad}FROM o WHERE f <= t GROUP BY f",
        f"SELECT 'out', {key.format('t')}, count(*){pad}FROM o WHERE f <= t GROUP BY t",
    ]
    if now_too:
        parts.append(f"SELECT 'now', {key.format('g')}, count(*){pad}FROM o "
                     "WHERE ended IS NULL GROUP BY g")
    return f"WITH o AS MATERIALIZED ({stays}) " + " UNION ALL ".join(parts)


def _beds_sql(column: str, filters: dict[str, str]) -> str:
    where = "".join(f" AND {name} = :{name}" for name in filters)
    return (f"SELECT {column}, status, count(*) FROM inpatient_bed "
            f"WHERE ward_id IS NOT NULL{where} GROUP BY {column}, status")


@dataclass(frozen=True)
class CensusQuery:
    """What `GET /api/inpatient/census` is asked: its first and last day and grouping."""

    first: date
    last: date
    by: str
    filters: dict[str, str] = field(default_factory=dict)  # column → value

    def path(self, default_period: bool) -> str:
        parts = [f"{name.removesuffix('_id')}={value}" for name, value in self.filters.items()]
        parts.append(f"by={self.by}")
        if not default_period:
            parts.append(f"from={self.first.isoformat()}")
        return "/api/inpatient/census?" + "&".join(parts)


@dataclass
class _Figures:
    beds: int = 0
    closed: int = 0
    now: int = 0
    admissions: int = 0
    transfers: int = 0
    discharges: int = 0
    los: int = 0
    patient_days: int = 0

    def add(self, other: _Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def summary(self, counted: int) -> JsonObject:
        open_beds = self.beds - self.closed
        return {
            "beds": self.beds, "closedBeds": self.closed, "inHospitalNow": self.now,
            "admissions": self.admissions, "discharges": self.discharges,
            "transfers": self.transfers, "patientDays": self.patient_days,
            "occupancyRate": round(self.patient_days / (open_beds * counted), 4)
            if open_beds > 0 and counted else None,
            "averageLengthOfStay": round(self.los / self.discharges, 2)
            if self.discharges else None,
        }


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=DISPLAY_ZONE).astimezone(UTC)


_CLOSED_STATE = "SELECT through FROM inpatient_census_state WHERE id = 1"
_CLOSED_GROUPS = (
    "SELECT {column}, sum(in_hospital), sum(admissions), sum(discharges), sum(los_days), "
    "sum(from_other_{by}) FROM inpatient_census_day WHERE day >= :closed_first "
    "AND day <= :closed_last{filters} GROUP BY {column}")
_CLOSED_DAYS = (
    "SELECT day, sum(in_hospital), sum(admissions), sum(discharges), sum(moves) "
    "FROM inpatient_census_day WHERE day >= :closed_first AND day <= :closed_last{filters} "
    "GROUP BY day")


def census_sql(db: Driver, query: CensusQuery, now: datetime) -> JsonObject:
    """The census's figures as the server answers them (without `asOf`): the closed days
    summed from `inpatient_census_day`, the days after them counted from the stays."""
    today = now.astimezone(DISPLAY_ZONE).date()
    last = min(query.last, today)
    counted = max(0, (last - query.first).days + 1)
    column = GROUP_COLUMNS[query.by]
    sqlite = db.kind == "sqlite"

    offset = JDN_OFFSET if sqlite else EPOCH_OFFSET

    def day(value: date) -> int:  # a day as the SQL numbers it
        return value.toordinal() + offset

    def iso(key: Any) -> str:
        return date.fromordinal(int(key) - offset).isoformat()

    groups: dict[Any, _Figures] = {}
    for key, status, count in db.rows(_beds_sql(column, query.filters), query.filters):
        figures = groups.setdefault(key, _Figures())
        figures.beds += count
        if status == "C":
            figures.closed += count
    days = [query.first + timedelta(days=n) for n in range(counted)]
    events: dict[str, dict[str, int]] = {"a": {}, "t": {}, "d": {}, "in": {}, "out": {},
                                         "census": {}}
    state = db.rows(_CLOSED_STATE, {})
    through = _as_date(state[0][0]) if state and state[0][0] is not None else None
    live_first = query.first
    if through is not None and through >= query.first and counted:
        closed_last = min(through, last)
        live_first = closed_last + timedelta(days=1)
        where = "".join(f" AND {name} = :{name}" for name in query.filters)
        params: dict[str, Any] = {
            **query.filters, "closed_first": query.first if not sqlite else
            query.first.isoformat(), "closed_last": closed_last if not sqlite else
            closed_last.isoformat()}
        for key, patient_days, admissions, discharges, los, moved in db.rows(
                _CLOSED_GROUPS.format(column=column, by=query.by, filters=where), params):
            figures = groups.setdefault(key, _Figures())
            figures.patient_days += int(patient_days)
            figures.admissions += int(admissions)
            figures.discharges += int(discharges)
            figures.los += int(los)
            figures.transfers += int(moved)
        for when, in_hospital, admissions, discharges, moves in db.rows(
                _CLOSED_DAYS.format(filters=where), params):
            stamp = _as_date(when).isoformat()
            for kind, count in (("census", in_hospital), ("a", admissions),
                                ("d", discharges), ("t", moves)):
                events[kind][stamp] = int(count)
    if live_first <= query.last:
        params = {
            **query.filters, "first": day(live_first), "last": day(last),
            "start_at": db.instant(_midnight(live_first)),
            "end_at": db.instant(_midnight(query.last + timedelta(days=1))),
        }
        for kind, key, n1, n2, n3, n4, n5 in db.rows(
                _census_sql(db.kind, column, query.filters, query.last >= today,
                            (query.last - live_first).days > SCAN_AFTER_DAYS), params):
            if kind == "g":  # SQLite's sum of only NULLs (no left_by in the days) is NULL
                figures = groups.setdefault(key, _Figures())
                figures.admissions += int(n1 or 0)
                figures.transfers += int(n2 or 0)
                figures.discharges += int(n3 or 0)
                figures.los += int(n4 or 0)
                figures.patient_days += int(n5 or 0)
            elif kind == "now":
                groups.setdefault(key, _Figures()).now += int(n1)
            else:
                events[kind][iso(key)] = int(n1)
    totals = _Figures()
    for figures in groups.values():
        totals.add(figures)
    totals.transfers = sum(events["t"].values())  # every transfer, not only between groups
    names = _names(db, GROUP_TYPES[query.by], [key for key in groups if key is not None])
    level, series = 0, []
    for moment in days:
        stamp = moment.isoformat()
        level += events["in"].get(stamp, 0)
        series.append({"date": stamp,
                       "inHospital": level + events["census"].get(stamp, 0),
                       "admissions": events["a"].get(stamp, 0),
                       "discharges": events["d"].get(stamp, 0),
                       "transfers": events["t"].get(stamp, 0)})
        level -= events["out"].get(stamp, 0)
    return {
        "from": query.first.isoformat(), "to": query.last.isoformat(), "by": query.by,
        "totals": totals.summary(counted),
        "groups": sorted(({"id": key, "name": names.get(key, key), **f.summary(counted)}
                          for key, f in groups.items() if key is not None),
                         key=lambda g: str(g["name"])),
        "days": series,
    }


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _names(db: Driver, res_type: str, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    sql, params = _contents_sql({res_type: ids})
    return {res_id: str(orjson.loads(content).get("name", res_id))
            for _, res_id, content in db.rows(sql, params)}


def census_differences(mine: JsonObject, answer: JsonObject) -> list[str]:
    """Figures where the hand-written SQL and the server disagree (at most a few named)."""
    found: list[str] = []
    if mine["totals"] != answer.get("totals"):
        found.append(f"totals: SQL {mine['totals']}, server {answer.get('totals')}")
    server_groups = {g["id"]: g for g in answer.get("groups", [])}
    mine_groups = {g["id"]: g for g in mine["groups"]}
    differ = sorted(key for key in server_groups.keys() | mine_groups.keys()
                    if server_groups.get(key) != mine_groups.get(key))
    if differ:
        found.append(f"{len(differ)} of {len(server_groups)} groups, e.g. {differ[0]}: SQL "
                     f"{mine_groups.get(differ[0])}, server {server_groups.get(differ[0])}")
    server_days = answer.get("days", [])
    days = [n for n, (a, b) in enumerate(zip(mine["days"], server_days, strict=False))
            if a != b]
    if days or len(mine["days"]) != len(server_days):
        example = (f", e.g. SQL {mine['days'][days[0]]}, server {server_days[days[0]]}"
                   if days else "")
        found.append(f"days: {len(days)} of {len(server_days)} differ "
                     f"({len(mine['days'])} counted by SQL){example}")
    return found


# --- timing ---------------------------------------------------------------------------------


def time_in_process(run: Callable[[], object], warmup: float, duration: float) -> Timed:
    """`run` again and again, one at a time: warm-up, then every call's latency for
    `duration` seconds (at least 3 calls)."""
    latencies: list[float] = []
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration
    while True:
        began = time.monotonic()
        if began >= stop_at and len(latencies) >= 3:
            break
        run()
        ended = time.monotonic()
        if ended >= measure_from:
            latencies.append(ended - began)
    return Timed(sorted(latencies))
