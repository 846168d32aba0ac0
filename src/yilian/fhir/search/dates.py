"""FHIR date, dateTime and instant values as the UTC instants they span.

A date search compares ranges: `2020` stands for the whole year, `2020-03-01T10:00:00Z` for one
second. Both ends are inclusive, at microsecond resolution. A value without a time zone (a date,
or a dateTime given to the day) is read in the hospital's zone.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

# The hospital's zone. A fixed offset, not ZoneInfo("Asia/Shanghai"): China has kept UTC+8
# without daylight saving since 1991, and tzdata's local-mean-time offset (+08:05:43) for years
# before 1901 would shift historical birth dates by odd minutes.
LOCAL_TZ = timezone(timedelta(hours=8), "Asia/Shanghai")

# Open ends of a Period (no start, or still ongoing).
DATE_MIN = datetime(1, 1, 1, tzinfo=UTC)
DATE_MAX = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)

# Time zones as R4's dateTime has them: Z, or -14:00 to +14:00 with minutes below 60.
_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?"
    r"(Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00))?)?)?)?"
)

_MICRO = timedelta(microseconds=1)


def _zone(text: str | None) -> timezone:
    if text is None:
        return LOCAL_TZ
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _to_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: the calendar's ends
        return DATE_MIN if moment.year == 1 else DATE_MAX


@lru_cache(maxsize=8192)
def date_range(text: str) -> tuple[datetime, datetime] | None:
    """[low, high] in UTC, both inclusive, for a date/dateTime/instant; None if malformed."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year_s, month_s, day_s, hour_s, minute_s, second_s, fraction, zone_s = match.groups()
    try:
        year = int(year_s)
        if year == 0:
            return None
        if month_s is None:
            tz = LOCAL_TZ
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year, 12, 31, 23, 59, 59, 999999, tzinfo=tz)
        elif day_s is None:
            tz = LOCAL_TZ
            month = int(month_s)
            last = calendar.monthrange(year, month)[1] if 1 <= month <= 12 else 0
            low = datetime(year, month, 1, tzinfo=tz)
            high = datetime(year, month, last, 23, 59, 59, 999999, tzinfo=tz)
        elif hour_s is None:
            tz = LOCAL_TZ
            low = datetime(year, int(month_s), int(day_s), tzinfo=tz)
            high = low.replace(hour=23, minute=59, second=59, microsecond=999999)
        else:
            tz = _zone(zone_s)
            base = datetime(year, int(month_s), int(day_s), int(hour_s), int(minute_s), tzinfo=tz)
            if second_s is None:
                low = base
                high = base.replace(second=59, microsecond=999999)
            elif fraction is None:
                low = base.replace(second=int(second_s))
                high = low.replace(microsecond=999999)
            else:
                digits = len(fraction)
                micro = int(fraction[:6].ljust(6, "0"))
                low = base.replace(second=int(second_s), microsecond=micro)
                # 10:00:00.12 spans .120000-.129999; beyond six digits, one microsecond.
                high = low + (10 ** (6 - digits) - 1) * _MICRO if digits < 6 else low
    except (ValueError, OverflowError):  # month 13, day 31 of April, hour 24, ...
        return None
    return _to_utc(low), _to_utc(high)


def period_range(start: str | None, end: str | None) -> tuple[datetime, datetime] | None:
    """A Period: from the start's low to the end's high; an open end is unbounded."""
    low_range = date_range(start) if start is not None else None
    high_range = date_range(end) if end is not None else None
    if low_range is None and high_range is None:
        return None
    low = low_range[0] if low_range else DATE_MIN
    high = high_range[1] if high_range else DATE_MAX
    return low, high
