r"""Search values as the specification writes them: prefixes, numbers, dates, quantities.

    [prefix]number          ge5.4, 1e2, 100.00 (the written precision is the implicit range)
    [prefix]date            gt2020-03, le2020-03-01T10:00:00+08:00 (the range the value spans)
    [prefix]number|system|code   a quantity; `5.4||mg` is a code without a system

`\,` `\$` `\|` `\\` stand for the character itself (R4 search §3.1.1.3.x, "Escaping search
parameters"): a value is cut at the separators that are not escaped (`,` between the values
ORed, `$` between a composite's components, `|` inside a token or a quantity), and only then
unescaped, so that `identifier=x\|y` is the code `x|y`, not the system x and the code y.

A value that does not parse is a 400 naming the parameter, never an empty result: a client
that wrote `date=2020-13` must learn that, not conclude that nothing happened in 2020.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from yilian.errors import BadRequest
from yilian.fhir.search.dates import date_range
from yilian.fhir.search.normalize import fit_column, precision_range, to_decimal


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


_ESCAPE = re.compile(r"\\([,$|\\])")


def split_escaped(text: str, on: str, maxsplit: int = -1) -> list[str]:
    """`text` cut at each `on` not escaped by a backslash (at most `maxsplit` times, if not
    negative); the parts keep their escapes, for `unescape` once they are cut no further."""
    if "\\" not in text:
        return text.split(on, maxsplit)
    parts: list[str] = []
    start = index = 0
    while index < len(text):
        char = text[index]
        if char == "\\":
            index += 2  # the escaped character is never a separator
            continue
        if char == on and (maxsplit < 0 or len(parts) < maxsplit):
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def unescape(text: str) -> str:
    r"""The characters `\,` `\$` `\|` `\\` stand for; any other backslash is itself (a
    Windows path searched as a string keeps its backslashes)."""
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


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


# The numbers a search refuses: those whose exponent in scientific notation (2.5e-3: -3) lies
# beyond ±999999, the range of Python's default decimal arithmetic. Within it, a number beyond
# the index columns (28 integer digits, ten decimal places) is compared with the columns' ends,
# as stored values are clamped to them (search.normalize.fit_column): `gt1e999999` finds
# nothing, `1e-999999` is rounded outwards to [0, 1e-10). Beyond it (1e99999999999) no
# quantity can be meant: a typo or a probe, refused rather than read as the largest number.
_EXPONENT_LIMIT = 999_999


def parse_number(name: str, text: str) -> NumberValue:
    prefix, rest = split_prefix(text)
    if not _NUMBER.fullmatch(rest):
        raise BadRequest("YL-2020", f"Parameter '{name}': '{text}' is not a number",
                         expression=(name,))
    number = to_decimal(rest)
    if number is None:
        raise BadRequest("YL-2020", f"Parameter '{name}': '{text}' is not a number",
                         expression=(name,))
    if not -_EXPONENT_LIMIT <= number.adjusted() <= _EXPONENT_LIMIT:
        raise BadRequest("YL-2020", f"Parameter '{name}': '{text}' is out of range (a number "
                         f"searched has an exponent within ±{_EXPONENT_LIMIT})",
                         expression=(name,))
    low, high = precision_range(number)
    # The range's ends are rounded outwards: beyond the columns' ten decimal places a range
    # must not collapse to nothing (it may then match a little more than it should).
    return NumberValue(prefix, fit_column(number), fit_column(low, ROUND_FLOOR),
                       fit_column(high, ROUND_CEILING))


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
    r"""`text` as written, escapes and all: `5|urn:s\|t|mg` is the system `urn:s|t`."""
    parts = split_escaped(text, "|", 2)
    number = parse_number(name, unescape(parts[0]))
    if len(parts) == 1:
        return QuantityValue(number, None, None, False)
    if len(parts) == 2:
        raise BadRequest(
            "YL-2022",
            f"Parameter '{name}': '{text}' is not number, number|system|code or number||code",
            expression=(name,),
        )
    system, code = unescape(parts[1]), unescape(parts[2])
    return QuantityValue(number, system or None, code or None, True)


def parse_missing(name: str, text: str) -> bool:
    if text not in ("true", "false"):
        raise BadRequest("YL-2023", f"Parameter '{name}': :missing takes true or false",
                         expression=(name,))
    return text == "true"
