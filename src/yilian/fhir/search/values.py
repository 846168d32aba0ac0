"""Search values as the specification writes them: prefixes, numbers, dates, quantities.

    [prefix]number          ge5.4, 1e2, 100.00 (the written precision is the implicit range)
    [prefix]date            gt2020-03, le2020-03-01T10:00:00+08:00 (the range the value spans)
    [prefix]number|system|code   a quantity; `5.4||mg` is a code without a system

A value that does not parse is a 400 naming the parameter, never an empty result: a client
that wrote `date=2020-13` must learn that, not conclude that nothing happened in 2020.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum

from yilian.errors import BadRequest
from yilian.fhir.search.dates import date_range
from yilian.fhir.search.normalize import NUMBER_MAX, NUMBER_MIN, precision_range, to_decimal


class Prefix(StrEnum):
    EQ = "eq"
    NE = "ne"
    GT = "gt"
    LT = "lt"
    GE = "ge"
    LE = "le"
    SA = "sa"
    EB = "eb"
    AP = "ap"


_PREFIXES = frozenset(p.value for p in Prefix)
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def split_prefix(value: str) -> tuple[Prefix, str]:
    """`ge2020` → (GE, "2020"); no prefix is eq. Only a lower-case two-letter prefix followed
    by a digit (or a sign or dot) counts, so that a token or string is never cut."""
    head = value[:2]
    if head in _PREFIXES and len(value) > 2 and (value[2].isdigit() or value[2] in "+-."):
        return Prefix(head), value[2:]
    return Prefix.EQ, value


@dataclass(frozen=True, slots=True)
class NumberValue:
    prefix: Prefix
    number: Decimal
    low: Decimal  # the implicit range of the written precision, high exclusive
    high: Decimal


@dataclass(frozen=True, slots=True)
class DateValue:
    prefix: Prefix
    low: datetime  # UTC, both ends inclusive (see search.dates)
    high: datetime


@dataclass(frozen=True, slots=True)
class QuantityValue:
    number: NumberValue
    system: str | None  # None: any system
    code: str | None  # None: any unit
    system_given: bool  # `5||mg`: the code must come without a system


def parse_number(name: str, text: str) -> NumberValue:
    prefix, rest = split_prefix(text)
    if not _NUMBER.fullmatch(rest):
        raise BadRequest("YL-2020", f"Parameter '{name}': '{text}' is not a number",
                         expression=(name,))
    number = to_decimal(rest)
    if number is None:
        raise BadRequest("YL-2020", f"Parameter '{name}': '{text}' is not a number",
                         expression=(name,))
    low, high = precision_range(number)
    # The range's ends are rounded outwards: beyond the columns' ten decimal places a range
    # must not collapse to nothing (it may then match a little more than it should).
    return NumberValue(prefix, _fit(number), _fit(low, ROUND_FLOOR), _fit(high, ROUND_CEILING))


_SCALE = Decimal("1e-10")  # the index columns' scale: Numeric(38, 10)
_WIDE = Context(prec=60)


def _fit(number: Decimal, rounding: str = ROUND_HALF_EVEN) -> Decimal:
    """Within what the index columns hold, as the extractor stores values: a search for 1e999
    compares with the largest number stored, not an error from the database."""
    if number < NUMBER_MIN:
        return NUMBER_MIN
    if number > NUMBER_MAX:
        return NUMBER_MAX
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -10:
        return number.quantize(_SCALE, rounding=rounding, context=_WIDE)
    return number


def parse_date(name: str, text: str) -> DateValue:
    prefix, rest = split_prefix(text)
    # A space where a client sent an unescaped '+' of a time zone offset.
    found = date_range(rest.replace(" ", "+"))
    if found is None:
        raise BadRequest(
            "YL-2021",
            f"Parameter '{name}': '{text}' is not a date, dateTime or instant "
            "(YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm])",
            expression=(name,),
        )
    return DateValue(prefix, *found)


def parse_quantity(name: str, text: str) -> QuantityValue:
    number_text, bar, rest = text.partition("|")
    number = parse_number(name, number_text)
    if not bar:
        return QuantityValue(number, None, None, False)
    system, bar2, code = rest.partition("|")
    if not bar2:
        raise BadRequest(
            "YL-2022",
            f"Parameter '{name}': '{text}' is not number, number|system|code or number||code",
            expression=(name,),
        )
    return QuantityValue(number, system or None, code or None, True)


def parse_missing(name: str, text: str) -> bool:
    if text not in ("true", "false"):
        raise BadRequest("YL-2023", f"Parameter '{name}': :missing takes true or false",
                         expression=(name,))
    return text == "true"
