"""Index rows for one value, by search parameter type and the value's FHIR type.

Each builder appends rows of one idx_* table: named tuples whose fields are that table's
columns in order, less those the store adds (resource_pk, res_type) and the id, so that a
row goes to the driver as it is (store.bulk), not through a dict per row. Values carrying
only extensions never reach a builder: the walker drops JSON nulls and never reads
`_element` properties.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from yilian.fhir.definitions import resource_types
from yilian.fhir.search.dates import date_range, period_range
from yilian.fhir.search.normalize import (
    NUMBER_MAX,
    NUMBER_MIN,
    QUANTITY_CODE_WIDTH,
    REF_PART_WIDTH,
    STRING_WIDTH,
    TOKEN_WIDTH,
    TYPE_CODE_WIDTH,
    URL_WIDTH,
    fit_column,
    hash64,
    normalize_text,
    precision_range,
    to_decimal,
)

# `grp`, last in every table: the element of a composite parameter a component's row comes
# from (search/composite.py); None for the rows of other parameters.


class StringRow(NamedTuple):
    param: str
    value_norm: str
    value_exact: str
    grp: int | None = None


class TokenRow(NamedTuple):
    param: str
    system: str | None
    code: str | None
    text: str | None
    type_system: str | None
    type_code: str | None
    hash_code: int
    hash_sys: int
    grp: int | None = None


class ReferenceRow(NamedTuple):
    param: str
    target_type: str | None
    target_id: str | None
    target_version: str | None
    url: str | None
    grp: int | None = None


class DateRow(NamedTuple):
    param: str
    low: datetime
    high: datetime
    grp: int | None = None


class NumberRow(NamedTuple):
    param: str
    value: Decimal
    low: Decimal
    high: Decimal
    grp: int | None = None


class QuantityRow(NamedTuple):
    param: str
    system: str | None
    code: str | None
    unit: str | None
    value: Decimal
    low: Decimal
    high: Decimal
    grp: int | None = None


class UriRow(NamedTuple):
    param: str
    uri: str
    grp: int | None = None


# The row type of each table (yilian.fhir.store.tables.INDEX_TABLES' keys).
ROW_TYPES: dict[str, type[tuple[Any, ...]]] = {
    "string": StringRow, "token": TokenRow, "reference": ReferenceRow, "date": DateRow,
    "number": NumberRow, "quantity": QuantityRow, "uri": UriRow,
}

Row = StringRow | TokenRow | ReferenceRow | DateRow | NumberRow | QuantityRow | UriRow
# (rows, parameter code, resource type, value) → appends to rows
Builder = Callable[[list[Any], str, str, Any], None]


def _cut(value: str | None, width: int) -> str | None:
    return value[:width] if value is not None and len(value) > width else value


def _str(value: Any) -> str | None:
    """A usable primitive string (not empty, not an extension-only null)."""
    return value if type(value) is str and value else None


# --- string ------------------------------------------------------------------------------------


def _string_row(rows: list[Any], param: str, value: str) -> None:
    norm = normalize_text(value)
    if norm:
        rows.append(StringRow(param, norm, value[:STRING_WIDTH]))


def string_primitive(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    if type(value) is str:
        _string_row(rows, param, value)


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "country", "postalCode", "text")


def _parts(rows: list[Any], param: str, value: Any, keys: tuple[str, ...]) -> None:
    """Each string part separately: the spec's "any of the string parts" of a name/address."""
    if type(value) is not dict:
        return
    for key in keys:
        part = value.get(key)
        if type(part) is str:
            _string_row(rows, param, part)
        elif type(part) is list:
            for item in part:
                if type(item) is str:
                    _string_row(rows, param, item)


def string_human_name(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    _parts(rows, param, value, _NAME_PARTS)


def string_address(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    _parts(rows, param, value, _ADDRESS_PARTS)


# --- token -------------------------------------------------------------------------------------


# Memoised, as `parse_reference` is: a row is an immutable tuple of its inputs alone; statuses,
# codes, tags and the references to a patient or an encounter repeat across nearly every
# write (the Synthea bundles in process, two runs each: indexing overhead on SQLite
# 102-103% → 94-95%, on PostgreSQL 81% → 68-76%).
@lru_cache(maxsize=1 << 16)
def token_row(
    res_type: str,
    param: str,
    system: str | None,
    code: str | None,
    text: str | None,
    type_system: str | None = None,
    type_code: str | None = None,
) -> TokenRow:
    """A token row with its lookup hashes (on the full, uncut system and code)."""
    return TokenRow(
        param,
        system if system is None or len(system) <= TOKEN_WIDTH else system[:TOKEN_WIDTH],
        code if code is None or len(code) <= TOKEN_WIDTH else code[:TOKEN_WIDTH],
        text,
        _cut(type_system, TOKEN_WIDTH),
        _cut(type_code, TYPE_CODE_WIDTH),
        hash64(res_type, param, code),
        hash64(res_type, param, system),
    )


def _text(value: Any) -> str | None:
    """Normalised text for :text searches (the query side normalises the same way)."""
    if type(value) is not str:
        return None
    return normalize_text(value) or None


def token_primitive(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """code, string, id, uri, ...: the value is the code; there is no system."""
    if type(value) is bool:
        rows.append(token_row(res_type, param, None, "true" if value else "false", None))
    elif type(value) is str and value:
        rows.append(token_row(res_type, param, None, value, None))


def token_boolean(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    if type(value) is bool:
        rows.append(token_row(res_type, param, None, "true" if value else "false", None))


def coding_pairs(value: Any) -> list[tuple[str | None, str | None, str | None]]:
    """(system, code, display) of a Coding."""
    if type(value) is not dict:
        return []
    system, code, display = _str(value.get("system")), _str(value.get("code")), value.get("display")
    if system is None and code is None and _str(display) is None:
        return []
    return [(system, code, display if type(display) is str else None)]


def token_coding(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    for system, code, display in coding_pairs(value):
        rows.append(token_row(res_type, param, system, code, _text(display)))


def token_codeable_concept(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """One row per coding, its display as :text (or the concept's text when it has none); the
    concept's own text gets a row of its own when no coding row carries it."""
    if type(value) is not dict:
        return
    concept_text = _text(value.get("text"))
    carried = False
    codings = value.get("coding")
    if type(codings) is list:
        for coding in codings:
            if type(coding) is not dict:
                continue
            system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
            system = system if type(system) is str and system else None
            code = code if type(code) is str and code else None
            text = _text(display) or concept_text
            if system is None and code is None and text is None:
                continue
            carried = carried or text == concept_text
            rows.append(token_row(res_type, param, system, code, text))
    if concept_text and not carried:
        rows.append(token_row(res_type, param, None, None, concept_text))


def token_identifier(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """system|value, with the identifier's type codings for :of-type (one row per type)."""
    if type(value) is not dict:
        return
    system, code = _str(value.get("system")), _str(value.get("value"))
    if system is None and code is None:
        return
    id_type = value.get("type")
    text = _text(id_type.get("text")) if type(id_type) is dict else None
    types: list[tuple[str | None, str | None]] = []
    if type(id_type) is dict and type(id_type.get("coding")) is list:
        for coding in id_type["coding"]:
            for type_system, type_code, _ in coding_pairs(coding):
                types.append((type_system, type_code))
    for type_system, type_code in types or [(None, None)]:
        rows.append(token_row(res_type, param, system, code, text, type_system, type_code))


def token_contact_point(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """A ContactPoint matches on its value (phone=..., email=...)."""
    if type(value) is dict:
        code = _str(value.get("value"))
        if code is not None:
            rows.append(token_row(res_type, param, None, code, None))


# --- reference ---------------------------------------------------------------------------------

_ABSOLUTE_TAIL = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/([^/]+))?$")


@lru_cache(maxsize=1 << 16)
def parse_reference(ref: str, param: str = "") -> ReferenceRow | None:
    """Split a literal reference; None for local `#contained` references."""
    if not ref or ref[0] == "#":
        return None
    target_type = target_id = version = url = None
    if "://" in ref or ref.startswith("urn:"):
        url = ref
        match = _ABSOLUTE_TAIL.search(ref)
        if match and match.group(1) in resource_types():
            target_type, target_id, version = match.groups()
    else:
        parts = ref.split("/")
        known = parts[0] in resource_types()
        if known and len(parts) == 2 and parts[1]:
            target_type, target_id = parts
        elif known and len(parts) == 4 and parts[2] == "_history" and parts[1] and parts[3]:
            target_type, target_id, version = parts[0], parts[1], parts[3]
        else:
            url = ref  # a conditional or otherwise unresolvable reference: kept as written
    return ReferenceRow(param, target_type, _cut(target_id, REF_PART_WIDTH),
                        _cut(version, REF_PART_WIDTH), _cut(url, URL_WIDTH))


def reference_reference(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """A Reference by its literal reference; identifier-only (logical) ones are not rows."""
    if type(value) is dict:
        ref = value.get("reference")
        if type(ref) is str:
            row = parse_reference(ref, param)
            if row is not None:
                rows.append(row)


def reference_identifier(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """A Reference's logical identifier, as a token of `{param}:identifier` (search.html:
    "the :identifier modifier ... searching by the identifier rather than the literal
    reference"; Reference.identifier, not the target's identifiers)."""
    if type(value) is dict:
        identifier = value.get("identifier")
        if type(identifier) is dict:
            token_identifier(rows, param, res_type, identifier)


def reference_canonical(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """canonical/uri elements of reference parameters: the URL as written (|version too)."""
    if type(value) is str and value:
        rows.append(ReferenceRow(param, None, None, None, _cut(value, URL_WIDTH)))


def reference_resource(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """Bundle.entry[0].resource (composition, message): the resource inside, by type and id."""
    if type(value) is dict and _str(value.get("resourceType")) and _str(value.get("id")):
        rows.append(ReferenceRow(param, value["resourceType"],
                                 _cut(value["id"], REF_PART_WIDTH), None, None))


# --- date --------------------------------------------------------------------------------------


def date_primitive(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    if type(value) is str:
        span = date_range(value)
        if span is not None:
            rows.append(DateRow(param, span[0], span[1]))


def _period(value: Any) -> tuple[datetime, datetime] | None:
    if type(value) is not dict:
        return None
    start, end = value.get("start"), value.get("end")
    return period_range(
        start if type(start) is str else None, end if type(end) is str else None
    )


def date_period(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    span = _period(value)
    if span is not None:
        rows.append(DateRow(param, span[0], span[1]))


def date_timing(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """A Timing: each event, and the repeat's bounding Period."""
    if type(value) is not dict:
        return
    events = value.get("event")
    if type(events) is list:
        for event in events:
            date_primitive(rows, param, res_type, event)
    repeat = value.get("repeat")
    if type(repeat) is dict:
        date_period(rows, param, res_type, repeat.get("boundsPeriod"))


# --- number and quantity -----------------------------------------------------------------------


def _number_row(param: str, value: Decimal, low: Decimal, high: Decimal) -> NumberRow:
    return NumberRow(param, *_fit(value, low, high))


def _fit(value: Decimal, low: Decimal, high: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Within what the Numeric(38, 10) columns hold, so an absurd value (1e99999999999,
    1e-20000) cannot fail a write; the range's ends rounded outwards, as a search's are."""
    return (fit_column(value), fit_column(low, ROUND_FLOOR),
            fit_column(high, ROUND_CEILING))


def number_primitive(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    number = to_decimal(value) if type(value) is not bool else None
    if number is not None:
        low, high = precision_range(number)
        rows.append(_number_row(param, number, low, high))


def _range_bounds(value: Any) -> tuple[dict[str, Any], Decimal, Decimal, Decimal] | None:
    """(the bound carrying the unit, value, low, high) of a Range; open ends unbounded."""
    if type(value) is not dict:
        return None
    low_q, high_q = value.get("low"), value.get("high")
    low = to_decimal(low_q.get("value")) if type(low_q) is dict else None
    high = to_decimal(high_q.get("value")) if type(high_q) is dict else None
    if low is not None and type(low_q) is dict:
        return low_q, low, low, high if high is not None else NUMBER_MAX
    if high is not None and type(high_q) is dict:
        return high_q, high, NUMBER_MIN, high
    return None


def number_range(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    bounds = _range_bounds(value)
    if bounds is not None:
        _, number, low, high = bounds
        rows.append(_number_row(param, number, low, high))


def _quantity_row(
    param: str,
    system: str | None,
    code: str | None,
    unit: str | None,
    value: Decimal,
    low: Decimal,
    high: Decimal,
) -> QuantityRow:
    return QuantityRow(param, _cut(system, TOKEN_WIDTH), _cut(code, QUANTITY_CODE_WIDTH),
                       _cut(unit, QUANTITY_CODE_WIDTH), *_fit(value, low, high))


def _units(source: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    return _str(source.get("system")), _str(source.get("code")), _str(source.get("unit"))


def quantity_quantity(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """Quantity and its profiles; a comparator (`<5 mg`) opens the range on that side."""
    if type(value) is not dict:
        return
    number = to_decimal(value.get("value"))
    if number is None:
        return
    low, high = precision_range(number)
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = NUMBER_MIN
    elif comparator in (">", ">="):
        high = NUMBER_MAX
    rows.append(_quantity_row(param, *_units(value), number, low, high))


ISO_4217 = "urn:iso:std:iso:4217"


def quantity_money(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """Money: the currency is the code of the ISO 4217 system."""
    if type(value) is not dict:
        return
    number = to_decimal(value.get("value"))
    if number is None:
        return
    low, high = precision_range(number)
    currency = _str(value.get("currency"))
    system = ISO_4217 if currency else None
    rows.append(_quantity_row(param, system, currency, None, number, low, high))


def quantity_range(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    """A Range as one row spanning [low, high]; `value` is its low end (or high if open)."""
    bounds = _range_bounds(value)
    if bounds is not None:
        source, number, low, high = bounds
        rows.append(_quantity_row(param, *_units(source), number, low, high))


# --- uri ---------------------------------------------------------------------------------------


def uri_primitive(rows: list[Any], param: str, res_type: str, value: Any) -> None:
    if type(value) is str and value:
        rows.append(UriRow(param, value[:URL_WIDTH]))


# --- dispatch ----------------------------------------------------------------------------------

_TEXTUAL = ("string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid")

# (search parameter type → FHIR type → builder); a FHIR type missing here is not indexable by
# that parameter type (e.g. Observation.value as SampledData for a quantity) and is skipped.
BUILDERS: dict[str, dict[str, Builder]] = {
    "string": {
        **dict.fromkeys(_TEXTUAL, string_primitive),
        "HumanName": string_human_name,
        "Address": string_address,
    },
    "token": {
        **dict.fromkeys(_TEXTUAL, token_primitive),
        "boolean": token_boolean,
        "Coding": token_coding,
        "CodeableConcept": token_codeable_concept,
        "Identifier": token_identifier,
        "ContactPoint": token_contact_point,
    },
    "reference": {
        "Reference": reference_reference,
        "canonical": reference_canonical,
        "uri": reference_canonical,
        "url": reference_canonical,
        "Resource": reference_resource,
    },
    "date": {
        "date": date_primitive,
        "dateTime": date_primitive,
        "instant": date_primitive,
        "Period": date_period,
        "Timing": date_timing,
    },
    "number": {
        **dict.fromkeys(("decimal", "integer", "positiveInt", "unsignedInt"), number_primitive),
        "Range": number_range,
    },
    "quantity": {
        **dict.fromkeys(
            ("Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity"),
            quantity_quantity,
        ),
        "Money": quantity_money,
        "Range": quantity_range,
    },
    "uri": dict.fromkeys(_TEXTUAL, uri_primitive),
}
