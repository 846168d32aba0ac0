"""Checks of the R4 primitive data types against their JSON representation.

Each check takes the parsed JSON value (strings, ``int``, ``bool``, ``decimal.Decimal``...) and
returns ``None`` when it is valid, else an (issue code, detail) pair. The regular expressions are
those of the R4 StructureDefinitions (``http://hl7.org/fhir/StructureDefinition/regex``), matched
with ASCII semantics as in the Java regexes of the specification (so an ideographic space is
text, not whitespace). base64Binary is checked by an equivalent linear-time rule instead of its
regex, which backtracks catastrophically on long, wrapped, invalid content.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

Finding = tuple[str, str]
Check = Callable[[Any], Finding | None]

STRUCTURE = "structure"
VALUE = "value"

INT32_MIN = -(2**31)
INT32_MAX = 2**31 - 1
MAX_STRING_LENGTH = 1024 * 1024  # string.value maxLength in R4

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_MONTH = r"(0[1-9]|1[0-2])"
_DAY = r"(0[1-9]|[1-2][0-9]|3[0-1])"
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"

PATTERNS: dict[str, str] = {
    "string": r"[ \r\n\t\S]+",
    "markdown": r"[ \r\n\t\S]+",
    "code": r"[^\s]+(\s[^\s]+)*",
    "id": r"[A-Za-z0-9\-\.]{1,64}",
    "uri": r"\S*",
    "url": r"\S*",
    "canonical": r"\S*",
    "oid": r"urn:oid:[0-2](\.(0|[1-9][0-9]*))+",
    "uuid": r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
    "date": rf"{_YEAR}(-{_MONTH}(-{_DAY})?)?",
    "dateTime": rf"{_YEAR}(-{_MONTH}(-{_DAY}(T{_TIME}{_ZONE})?)?)?",
    "instant": rf"{_YEAR}-{_MONTH}-{_DAY}T{_TIME}{_ZONE}",
    "time": _TIME,
}

_DATED = frozenset({"date", "dateTime", "instant"})
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # 29 February: leap years
_MONTH_DAYS = frozenset(
    f"{month:02d}-{day:02d}"
    for month, days in enumerate(_DAYS_IN_MONTH, start=1)
    for day in range(1, days + 1)
)
_BASE64_CHUNK = re.compile(r"(?:[0-9a-zA-Z+/=]{4})+", re.ASCII).fullmatch


def show(value: Any) -> str:
    """The value as an engineer would recognise it in the JSON, shortened."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return '"' + text.replace("\n", "\\n") + '"'
    return describe(value)


def article(type_name: str) -> str:
    """The type name with its indefinite article: "an integer", "a string"."""
    return f"{'an' if type_name[0] in 'aeiouAEIOU' else 'a'} {type_name}"


def describe(value: Any) -> str:
    """The JSON kind of a parsed value, with the value itself for scalars."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int | float | Decimal):
        return f"number {value}"
    if isinstance(value, str):
        return f"string {show(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _not_string(value: Any, type_name: str) -> Finding:
    return STRUCTURE, f"{article(type_name)} must be a JSON string, got {describe(value)}"


def _real_date(value: str) -> bool:
    """Whether the calendar date part (if it has a day) exists, e.g. not 2023-02-30."""
    if len(value) < 10:
        return True
    month_day = value[5:10]
    if month_day == "02-29":
        year = int(value[0:4])
        return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    return month_day in _MONTH_DAYS


def _compile(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """The spec's regex, matched whole, with ASCII classes and without capturing groups."""
    return re.compile(re.sub(r"\((?!\?)", "(?:", pattern), re.ASCII).fullmatch


def _explainer(type_name: str, pattern: str) -> Check:
    """The exact rule for a string-based primitive, with the reason it fails."""
    match = _compile(pattern)
    dated = type_name in _DATED

    def explain(value: Any) -> Finding | None:
        if type(value) is not str:
            return _not_string(value, type_name)
        if not value:
            return VALUE, f"an empty string is not a valid {type_name}; omit the element instead"
        if match(value) is None:
            return VALUE, f"{show(value)} is not a valid {type_name}"
        if dated and not _real_date(value):
            return VALUE, f"{show(value)} is not a real calendar date"
        if len(value) > MAX_STRING_LENGTH:
            return VALUE, f"{article(type_name)} must not exceed 1 MB ({len(value)} characters)"
        return None

    return explain


# Each check below first tries a cheap condition that implies validity, and only when that
# fails falls back to the exact rule, which decides (and explains).


def _text_check(type_name: str) -> Check:
    """string, markdown: [ \\r\\n\\t\\S]+ only excludes form feed and vertical tab."""
    explain = _explainer(type_name, PATTERNS[type_name])

    def check(value: Any) -> Finding | None:
        if (
            type(value) is str
            and value
            and "\x0b" not in value
            and "\x0c" not in value
            and len(value) <= MAX_STRING_LENGTH
        ):
            return None
        return explain(value)

    return check


def _token_check(type_name: str) -> Check:
    """code, uri, url, canonical: a printable string without spaces has no whitespace at all."""
    explain = _explainer(type_name, PATTERNS[type_name])

    def check(value: Any) -> Finding | None:
        if (
            type(value) is str
            and value
            and value.isprintable()
            and " " not in value
            and len(value) <= MAX_STRING_LENGTH
        ):
            return None
        return explain(value)

    return check


def _pattern_check(type_name: str) -> Check:
    explain = _explainer(type_name, PATTERNS[type_name])
    match = _compile(PATTERNS[type_name])

    def check(value: Any) -> Finding | None:
        if type(value) is str and match(value) is not None:
            return None
        return explain(value)

    return check


def _dated_check(type_name: str) -> Check:
    """date, dateTime, instant: the year rule as a look-ahead (any 4 digits but 0000)."""
    explain = _explainer(type_name, PATTERNS[type_name])
    match = _compile(PATTERNS[type_name].replace(_YEAR, "(?!0000)[0-9]{4}", 1))

    def check(value: Any) -> Finding | None:
        if type(value) is str and match(value) is not None and _real_date(value):
            return None
        return explain(value)

    return check


def _boolean(value: Any) -> Finding | None:
    if type(value) is bool:
        return None
    return STRUCTURE, f"a boolean must be JSON true or false, got {describe(value)}"


def _integer_check(type_name: str, low: int) -> Check:
    def check(value: Any) -> Finding | None:
        if type(value) is not int:
            return (
                STRUCTURE,
                f"{article(type_name)} must be a JSON integer number, got {describe(value)}",
            )
        if value < low or value > INT32_MAX:
            bounds = f"{low}..{INT32_MAX}"
            return VALUE, f"{value} is outside the range of {article(type_name)} ({bounds})"
        return None

    return check


def _decimal(value: Any) -> Finding | None:
    kind = type(value)
    if kind is int:
        return None
    if kind is Decimal or kind is float:
        if value.is_finite() if kind is Decimal else math.isfinite(value):
            return None
        return VALUE, f"{value} is not a finite decimal"
    return STRUCTURE, f"a decimal must be a JSON number, got {describe(value)}"


def _base64(value: Any) -> Finding | None:
    if type(value) is not str:
        return _not_string(value, "base64Binary")
    chunks = value.split()
    if not chunks:
        return VALUE, "an empty string is not a valid base64Binary; omit the element instead"
    for chunk in chunks:
        if _BASE64_CHUNK(chunk) is None:
            return VALUE, f"{show(chunk)} is not valid base64 (groups of 4 of A-Z a-z 0-9 + / =)"
    return None


_XHTML = "{http://www.w3.org/1999/xhtml}"
# txt-1 (narrative.html): "only contain basic HTML formatting elements and attributes", the
# elements the HL7 validator allows; no script, form, frame, object, head, body, link, base.
_NARRATIVE_ELEMENTS = frozenset({
    "a", "abbr", "acronym", "address", "area", "b", "bdo", "big", "blockquote", "br",
    "caption", "cite", "code", "col", "colgroup", "dd", "dfn", "div", "dl", "dt", "em", "h1",
    "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "map", "ol", "p", "pre", "q",
    "samp", "small", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "tt", "ul", "var"})


def _xhtml(value: Any) -> Finding | None:
    """Narrative.div (narrative.html): an XHTML div of basic formatting only (txt-1). Event-
    handler attributes and javascript: links are refused too: a narrative is shown to people
    by other systems, and must carry no script."""
    if type(value) is not str:
        return _not_string(value, "xhtml")
    if not value.strip():
        return VALUE, "the narrative xhtml must not be empty"
    if "<!" in value.replace("<!--", ""):  # a DOCTYPE or ENTITY: none in a narrative
        return VALUE, "the narrative xhtml must not declare a DOCTYPE or entities"
    try:
        root = ElementTree.fromstring(value)
    except ElementTree.ParseError as error:
        return VALUE, f"the narrative is not well-formed XHTML ({error})"
    if root.tag != f"{_XHTML}div":
        return VALUE, "the narrative must be a <div> in the XHTML namespace " \
            "(xmlns=\"http://www.w3.org/1999/xhtml\")"
    for element in root.iter():
        name = element.tag.removeprefix(_XHTML)
        if name not in _NARRATIVE_ELEMENTS:
            return VALUE, f"the narrative may hold basic formatting only, not <{name}> (txt-1)"
        for attribute, text in element.attrib.items():
            if attribute.lower().startswith("on") or (
                    attribute in ("href", "src")
                    and text.strip().lower().startswith(("javascript:", "vbscript:"))):
                return VALUE, f"the narrative must carry no script (<{name} {attribute}>, txt-1)"
    # txt-2 (some non-whitespace content) is not checked: the official examples' own
    # narratives are often a comment alone ("<!-- Snipped for Brevity -->").
    return None


def _build() -> dict[str, Check]:
    checks: dict[str, Check] = {}
    for name in ("string", "markdown"):
        checks[name] = _text_check(name)
    for name in ("code", "uri", "url", "canonical"):
        checks[name] = _token_check(name)
    for name in ("id", "oid", "uuid", "time"):
        checks[name] = _pattern_check(name)
    for name in _DATED:
        checks[name] = _dated_check(name)
    checks["boolean"] = _boolean
    checks["integer"] = _integer_check("integer", INT32_MIN)
    checks["unsignedInt"] = _integer_check("unsignedInt", 0)
    checks["positiveInt"] = _integer_check("positiveInt", 1)
    checks["decimal"] = _decimal
    checks["base64Binary"] = _base64
    checks["xhtml"] = _xhtml
    return checks


CHECKS: dict[str, Check] = _build()
