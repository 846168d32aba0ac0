"""Date values as UTC ranges of their implicit precision (properties and fixed cases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from yilian.fhir.search.dates import DATE_MAX, DATE_MIN, LOCAL_TZ, date_range, period_range

MICRO = timedelta(microseconds=1)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_the_local_zone_is_the_hospitals() -> None:
    assert LOCAL_TZ.utcoffset(None) == timedelta(hours=8)
    assert LOCAL_TZ.tzname(None) == "Asia/Shanghai"


def test_fixed_cases() -> None:
    assert date_range("2020") == (
        utc(2019, 12, 31, 16, 0, 0),
        utc(2020, 12, 31, 15, 59, 59, 999999),
    )
    assert date_range("2020-02") == (
        utc(2020, 1, 31, 16, 0, 0),
        utc(2020, 2, 29, 15, 59, 59, 999999),
    )
    assert date_range("2021-02-28") == (
        utc(2021, 2, 27, 16, 0, 0),
        utc(2021, 2, 28, 15, 59, 59, 999999),
    )
    assert date_range("2020-06-01T10:30Z") == (
        utc(2020, 6, 1, 10, 30),
        utc(2020, 6, 1, 10, 30, 59, 999999),
    )
    assert date_range("2020-06-01T10:30:15-05:00") == (
        utc(2020, 6, 1, 15, 30, 15),
        utc(2020, 6, 1, 15, 30, 15, 999999),
    )
    assert date_range("2020-06-01T10:30:15-14:00") == date_range("2020-06-02T00:30:15Z")
    assert date_range("2020-06-01T10:30:15.12+08:00") == (
        utc(2020, 6, 1, 2, 30, 15, 120000),
        utc(2020, 6, 1, 2, 30, 15, 129999),
    )
    assert date_range("2020-06-01T10:30:15.1234567Z") == (
        utc(2020, 6, 1, 10, 30, 15, 123456),
        utc(2020, 6, 1, 10, 30, 15, 123456),
    )
    # A dateTime with a time but no zone (not valid FHIR, tolerated) is local time.
    assert date_range("2020-06-01T10:30:15") == (
        utc(2020, 6, 1, 2, 30, 15),
        utc(2020, 6, 1, 2, 30, 15, 999999),
    )  # fmt: skip


def test_the_ends_of_the_calendar_clamp() -> None:
    assert date_range("0001") == (DATE_MIN, utc(1, 12, 31, 15, 59, 59, 999999))
    assert date_range("9999-12-31T23:59:59-05:00") == (
        utc(9999, 12, 31, 23, 59, 59, 999999),
        DATE_MAX,
    )


def test_malformed_values_have_no_range() -> None:
    for text in ("", "20", "2020-13", "2021-02-29", "2020-01-01T24:00:00Z", "0000", "yesterday",
                 "2020-01-01T10:00:00+8", "2020/01/01", "2013-01-14T10:00:00+08:99",
                 "2013-01-14T10:00:00+14:30", "2013-01-14T10:00:00-15:00"):  # fmt: skip
        assert date_range(text) is None, text


def test_periods() -> None:
    assert period_range("2020-01-01", "2020-01-31") == (
        utc(2019, 12, 31, 16, 0, 0),
        utc(2020, 1, 31, 15, 59, 59, 999999),
    )
    assert period_range(None, "2020") == (DATE_MIN, utc(2020, 12, 31, 15, 59, 59, 999999))
    assert period_range("2020", None) == (utc(2019, 12, 31, 16, 0, 0), DATE_MAX)
    assert period_range(None, None) is None


# --- properties --------------------------------------------------------------------------------

_zones = st.sampled_from(["Z", "+08:00", "-05:00", "+14:00", "-12:00", "+05:30", "+00:00"])


@st.composite
def instants(draw: st.DrawFn, zone: st.SearchStrategy[str | None] = _zones) -> dict[str, object]:
    moment = draw(
        st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31, 23, 59, 59))
    )
    return {
        "moment": moment,
        "fraction": draw(st.text(alphabet="0123456789", min_size=1, max_size=9)),
        "zone": draw(zone),
    }


def _render(value: dict[str, object], precision: str) -> str:
    """The value written to a precision: year, month, day, minute, second, or fractionN."""
    moment = value["moment"]
    assert isinstance(moment, datetime)
    zone = value["zone"] or ""
    if precision == "year":
        return f"{moment.year:04d}"
    if precision == "month":
        return f"{moment.year:04d}-{moment.month:02d}"
    if precision == "day":
        return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    day = f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
    if precision == "minute":
        return f"{day}T{moment.hour:02d}:{moment.minute:02d}{zone}"
    seconds = f"{day}T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    if precision == "second":
        return f"{seconds}{zone}"
    digits = int(precision.removeprefix("fraction"))
    fraction = str(value["fraction"])[:digits]
    return f"{seconds}.{fraction}{zone}"


_DATE_PRECISIONS = ["year", "month", "day"]
_TIME_PRECISIONS = ["minute", "second", *(f"fraction{n}" for n in range(1, 10))]


def _contains(outer: tuple[datetime, datetime], inner: tuple[datetime, datetime]) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1]


@given(instants(), st.sampled_from(_DATE_PRECISIONS + _TIME_PRECISIONS))
def test_low_is_never_after_high(value: dict[str, object], precision: str) -> None:
    span = date_range(_render(value, precision))
    assert span is not None
    low, high = span
    assert low <= high
    assert low.tzinfo is UTC and high.tzinfo is UTC


@given(
    instants(zone=st.sampled_from([None, "+08:00"])),
    st.sampled_from(_DATE_PRECISIONS + _TIME_PRECISIONS),
    st.sampled_from(_DATE_PRECISIONS),
)
def test_a_local_value_lies_within_its_truncation_to_a_date(
    value: dict[str, object], precision: str, coarser: str
) -> None:
    """Dates carry no zone and are read as local; a value in the local zone (or without one)
    therefore lies inside the range of its year, month and day."""
    order = _DATE_PRECISIONS + _TIME_PRECISIONS
    if order.index(coarser) > order.index(precision):
        precision, coarser = coarser, precision
    fine = date_range(_render(value, precision))
    wide = date_range(_render(value, coarser))
    assert fine is not None and wide is not None
    assert _contains(wide, fine)


@given(
    instants(),
    st.sampled_from(_TIME_PRECISIONS),
    st.sampled_from(_TIME_PRECISIONS),
)
def test_any_zoned_value_lies_within_its_truncation_in_time(
    value: dict[str, object], one: str, other: str
) -> None:
    order = _TIME_PRECISIONS
    fine_p, wide_p = (one, other) if order.index(one) >= order.index(other) else (other, one)
    fine = date_range(_render(value, fine_p))
    wide = date_range(_render(value, wide_p))
    assert fine is not None and wide is not None
    assert _contains(wide, fine)


@given(st.dates(min_value=datetime(2, 1, 1).date(), max_value=datetime(9998, 12, 30).date()))
def test_consecutive_days_are_adjacent(day: object) -> None:
    text = str(day)
    following = str(datetime.fromisoformat(text).date() + timedelta(days=1))
    this_range, next_range = date_range(text), date_range(following)
    assert this_range is not None and next_range is not None
    assert this_range[1] + MICRO == next_range[0]
    assert next_range[0] - this_range[0] == timedelta(days=1)


@given(instants(), st.sampled_from(_DATE_PRECISIONS + _TIME_PRECISIONS))
def test_the_value_itself_is_inside_its_range(value: dict[str, object], precision: str) -> None:
    """For zoned times: the instant written (truncated to microseconds) is in [low, high]."""
    if precision in _DATE_PRECISIONS:
        return
    text = _render(value, precision)
    span = date_range(text)
    assert span is not None
    parsed = datetime.fromisoformat(_to_python_iso(text))
    assert span[0] <= parsed.astimezone(UTC) <= span[1]


def _to_python_iso(text: str) -> str:
    """fromisoformat wants at most six fraction digits and seconds present."""
    text = text.replace("Z", "+00:00")
    head, sep, rest = text.partition(".")
    if sep:
        count = len(rest) - len(rest.lstrip("0123456789"))
        digits, zone = rest[:count], rest[count:]
        return f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    if text.count(":") == 2 and "T" in text and len(text.split("T")[1]) in (5, 11):
        date, _, time_zone = text.partition("T")
        return f"{date}T{time_zone[:5]}:00{time_zone[5:]}"
    return text
