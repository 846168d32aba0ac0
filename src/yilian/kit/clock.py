"""Time: always timezone-aware; stored in UTC, shown in the hospital's zone."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

DISPLAY_ZONE = ZoneInfo("Asia/Shanghai")


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_instant(moment: datetime) -> str:
    """A FHIR instant in UTC with millisecond precision, e.g. 2026-11-23T12:00:00.123Z."""
    # isoformat, not strftime (ten times as costly): writes and every audit entry call this.
    # Its milliseconds are truncated, as FHIR's instants are read back.
    m = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return m.isoformat(timespec="milliseconds")[:23] + "Z"


@lru_cache(maxsize=4096)  # every read answers with one; most resources were written in bulk
def to_http_date(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_datetime(value: str) -> datetime | None:
    """A FHIR dateTime with a time and a zone (`2026-11-24T18:00:00+08:00`, `...Z`), or None
    for anything less: a moment without a zone is ambiguous."""
    if "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # Years far off are typing errors, and near year 9999 a zone shift overflows.
        if moment.tzinfo is None or not 1900 <= moment.astimezone(UTC).year <= 2200:
            return None
    except (ValueError, OverflowError):
        return None
    return moment
