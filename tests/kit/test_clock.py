"""kit.clock's instants and the SQLite DATETIME text of store.bulk (and the audit trail's
pair of both): formatted the fast way (isoformat), so checked here against the obvious
field-by-field formatting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from yilian.fhir.audit import _stamps
from yilian.fhir.store.bulk import _sqlite_datetime, _sqlite_datetime_text
from yilian.kit.clock import to_instant

_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=8)),
                          timezone(timedelta(hours=-9, minutes=-30)),
                          timezone(timedelta(hours=14))])
_MOMENTS = st.builds(
    lambda naive, zone: naive.replace(tzinfo=zone),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 30)), _ZONES)


def _fields(moment: datetime) -> str:
    u = moment.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"


@given(_MOMENTS)
def test_an_instant_is_the_utc_moment_to_the_millisecond(moment: datetime) -> None:
    millis = moment.microsecond // 1000
    assert to_instant(moment) == f"{_fields(moment)}.{millis:03d}Z"


@given(_MOMENTS)
def test_sqlite_text_is_the_utc_moment_to_the_microsecond(moment: datetime) -> None:
    expected = _fields(moment).replace("T", " ") + f".{moment.microsecond:06d}"
    assert _sqlite_datetime_text.__wrapped__(moment) == expected


def test_whole_seconds_keep_their_fraction() -> None:
    moment = datetime(2026, 11, 24, 8, 0, 0, tzinfo=timezone(timedelta(hours=8)))
    assert to_instant(moment) == "2026-11-24T00:00:00.000Z"
    assert _sqlite_datetime_text.__wrapped__(moment) == "2026-11-24 00:00:00.000000"


@given(_MOMENTS)
def test_an_audit_entry_formats_its_moment_once_for_both(moment: datetime) -> None:
    assert _stamps(moment) == (to_instant(moment), _sqlite_datetime_text.__wrapped__(moment))


def test_sqlite_text_already_made_goes_through_as_it_is() -> None:
    assert _sqlite_datetime("2026-11-24 00:00:00.000000") == "2026-11-24 00:00:00.000000"
    assert _sqlite_datetime(None) is None
