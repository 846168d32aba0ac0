"""The census of closed days: each day's figures per hospital, campus, department and ward,
counted once from the movement record and kept in `inpatient_census_day`.

A year's census of a 6,000-bed group counts some 300,000 stays; read from the closed days it
adds up a few tens of thousands of small rows instead. `census.py` takes the closed days from
here and counts only the days after them (today's among them) from the movement record.

A day closes once it is `GRACE_DAYS` behind today (Asia/Shanghai). The ADT operations record
what happens at the moment they run, so none can change a closed day, however late it commits
around midnight. What does write the past (an Encounter closed by a plain FHIR write with an
end long gone, a seeded history) calls `reopen_from` in its own transaction: the closed days
from that day on are forgotten and counted again by the next census. `close_days` and
`reopen_from` both lock the one state row first, so a reopening waits for a closing in progress
and the other way round: neither misses the other's rows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Integer,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)

from yilian.domains.inpatient.tables import (
    inpatient_bed_stay,
    inpatient_census_day,
    inpatient_census_state,
)
from yilian.kit.clock import DISPLAY_ZONE
from yilian.kit.db import read_transaction, write_transaction

GRACE_DAYS = 2  # a day closes when it is this many days behind today
LEVELS = ("hospital", "campus", "department", "ward")  # the census's groupings, widest first
_COUNTS = ("in_hospital", "admissions", "discharges", "los_days", "moves",
           "from_other_ward", "from_other_department", "from_other_campus",
           "from_other_hospital")
_FROM_OTHER = {level: _COUNTS.index(f"from_other_{level}") for level in LEVELS}
_STATE = inpatient_census_state.c.id == 1
_BATCH = 2_000

# --- days and moments as integers ---------------------------------------------------------

DAY_SECONDS = 86_400
# Asia/Shanghai keeps UTC+8 all year (no daylight saving since 1991): a local day is a whole
# number of seconds after the epoch, shifted by eight hours.
SHIFT_SECONDS = 8 * 3_600
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def day_number(day: date) -> int:
    return day.toordinal() - _EPOCH_ORDINAL


def day_of(seconds: int) -> int:
    """The local day number of an epoch second."""
    return (seconds + SHIFT_SECONDS) // DAY_SECONDS


def epoch_of(day: date) -> int:
    """The epoch second of the day's local midnight."""
    return day_number(day) * DAY_SECONDS - SHIFT_SECONDS


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), DISPLAY_ZONE)


def epoch_seconds(conn: Connection, column: Any) -> Any:
    """A moment column as epoch seconds, computed by the database: a year of stays is counted
    in milliseconds, not in a million datetime conversions."""
    if conn.dialect.name == "sqlite":  # stored as UTC text: 2026-11-24 02:00:00.123456
        return cast(func.strftime("%s", column), Integer)
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def last_closable(now: datetime) -> date:
    return now.astimezone(DISPLAY_ZONE).date() - timedelta(days=GRACE_DAYS)


# --- reading ------------------------------------------------------------------------------


def closed_through(conn: Connection) -> date | None:
    """The last day whose figures are closed (None: none is)."""
    found = conn.execute(select(inpatient_census_state.c.through).where(_STATE)).scalar()
    return found if isinstance(found, date) else None


def stays_between(conn: Connection, first: date, end: date, filters: dict[str, str],
                  *columns: Any, settled_apart: bool = False) -> list[Any]:
    """The stays in a bed at some moment from `first`'s midnight to `end`'s (excluded):
    `columns`, then began, ended and admitted as epoch seconds, came_by, left_by and the
    encounter. Two indexed lookups (stays still open; stays ended since `first`) rather than
    one OR. `settled_apart`: without the open stays that began before `first` (see
    `settled_stays`)."""
    stay = inpatient_bed_stay.c
    selected = (*columns, *(epoch_seconds(conn, c) for c in (stay.began, stay.ended,
                                                              stay.admitted)),
                stay.came_by, stay.left_by, stay.encounter_id)
    window = [stay.began < midnight(end), *(stay[name] == value
                                            for name, value in filters.items())]
    still_open = [stay.ended.is_(None), *window]
    if settled_apart:
        still_open.append(stay.began >= midnight(first))
    return [*conn.execute(select(*selected).where(*still_open)).all(),
            *conn.execute(select(*selected).where(stay.ended >= midnight(first),
                                                  *window)).all()]


def settled_stays(conn: Connection, first: date, filters: dict[str, str], column: Any
                  ) -> list[Any]:
    """Per `column`, the open stays that began before `first`: no event of theirs falls on
    `first` or after, and they are in a bed at every midnight since, so they are counted in
    the database (most of a hospital's inpatients, on any day)."""
    stay = inpatient_bed_stay.c
    return list(conn.execute(
        select(column, func.count())
        .where(stay.ended.is_(None), stay.began < midnight(first),
               *(stay[name] == value for name, value in filters.items()))
        .group_by(column)).all())


# --- closing and reopening ----------------------------------------------------------------


def bring_up_to_date(engine: Engine, now: datetime) -> None:
    """Close the days that are due, if any (the first census of a day does it)."""
    with read_transaction(engine) as conn:
        through = closed_through(conn)
    if through is None or through < last_closable(now):
        with write_transaction(engine) as conn:
            close_days(conn, now)


def close_days(conn: Connection, now: datetime) -> int:
    """Count and store the days due since the last closed one (in the caller's write
    transaction); the number of rows written."""
    target = last_closable(now)
    through = _lock_state(conn)
    if through is not None and through >= target:
        return 0
    first = through + timedelta(days=1) if through is not None else _first_stay_day(conn)
    written = 0
    if first is not None and first <= target:
        for batch in _batches(_count_days(conn, first, target)):
            conn.execute(insert(inpatient_census_day), batch)
            written += len(batch)
    conn.execute(update(inpatient_census_state).where(_STATE).values(through=target))
    return written


def reopen_from(conn: Connection, day: date, now: datetime) -> None:
    """The movement record changed on `day` (a stay began or ended then): forget the closed
    days from it on. Nothing to do for the days still open (what the ADT operations write)."""
    if day > last_closable(now):
        return
    through = _lock_state(conn)
    if through is None or through < day:
        return
    conn.execute(delete(inpatient_census_day).where(inpatient_census_day.c.day >= day))
    conn.execute(update(inpatient_census_state).where(_STATE)
                 .values(through=day - timedelta(days=1)))


def _lock_state(conn: Connection) -> date | None:
    """The state row, locked until commit (on SQLite the write transaction holds the
    database's only write lock already)."""
    found = conn.execute(select(inpatient_census_state.c.through).where(_STATE)
                         .with_for_update()).first()
    if found is None:  # a database made before the row: made here, once
        conn.execute(insert(inpatient_census_state), [{"id": 1, "through": None}])
        return None
    return found[0] if isinstance(found[0], date) else None


def _first_stay_day(conn: Connection) -> date | None:
    first = conn.execute(select(func.min(inpatient_bed_stay.c.began))).scalar()
    return first.astimezone(DISPLAY_ZONE).date() if isinstance(first, datetime) else None


def _count_days(conn: Connection, first: date, last: date) -> Iterator[dict[str, Any]]:
    """The rows of the days `first` to `last`, counted as census.py counts (see there)."""
    stay = inpatient_bed_stay.c
    base, end_day = day_number(first), day_number(last)
    start_s, end_s = epoch_of(first), epoch_of(last + timedelta(days=1))
    rows = stays_between(conn, first, last + timedelta(days=1), {}, stay.hospital_id,
                         stay.campus_id, stay.department_id, stay.ward_id)
    # Where each moved patient came from: the place of the bed they left at that moment.
    left = {(row[9], row[5]): row[:4] for row in rows if row[8] == "transfer"}
    cells: dict[tuple[int, tuple[str, ...]], list[int]] = defaultdict(lambda: [0] * 9)
    census: dict[tuple[str, ...], list[int]] = defaultdict(
        lambda: [0] * (end_day - base + 2))
    for hospital, campus, department, ward, began_s, ended_s, admitted_s, came_by, left_by, \
            encounter in rows:
        key: tuple[str, ...] = (hospital, campus, department, ward)
        began, admitted = int(began_s), int(admitted_s)
        ended = None if ended_s is None else int(ended_s)
        if start_s <= began < end_s and came_by == "admit":
            cells[(day_of(began), key)][1] += 1
        elif start_s <= began < end_s and came_by == "transfer":
            counts = cells[(day_of(began), key)]
            counts[4] += 1
            came_from = left.get((encounter, began))
            for n, level in enumerate(LEVELS):
                if came_from is None or came_from[n] != key[n]:
                    counts[_FROM_OTHER[level]] += 1
        if ended is not None and start_s <= ended < end_s and left_by == "discharge":
            counts = cells[(day_of(ended), key)]
            counts[2] += 1
            counts[3] += max(1, day_of(ended) - day_of(admitted))
        # In a bed at the midnight ending each day, from the day it came to the day before
        # it left.
        from_day = max(day_of(began), base)
        to_day = min(day_of(ended) - 1, end_day) if ended is not None else end_day
        if from_day <= to_day:
            census[key][from_day - base] += 1
            census[key][to_day - base + 1] -= 1
    for key, diff in census.items():
        in_bed = 0
        for n, step in enumerate(diff[:-1]):
            in_bed += step
            if in_bed:
                cells[(base + n, key)][0] = in_bed
    for (number, key), counts in sorted(cells.items()):
        if any(counts):
            yield {"day": date.fromordinal(number + _EPOCH_ORDINAL), "hospital_id": key[0],
                   "campus_id": key[1], "department_id": key[2], "ward_id": key[3],
                   **dict(zip(_COUNTS, counts, strict=True))}


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
