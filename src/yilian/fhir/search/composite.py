"""Composite parameters as hashes of their components' values.

A composite search such as

    component-code-value-quantity=http://loinc.org|8480-6$120|http://unitsofmeasure.org|mm[Hg]

must match components taken from the same element (the same Observation.component), so each
row stands for one combination: a hash of one key per component, in the definition's order.

Encoding (the query side computes the same key for each component of its value, then
`composite_hash(param, keys)`):

    token      "system|code" (system "" when absent), and "code" alone for a search without a
               system (`1234-5` matches any system; `|1234-5` only codes without one)
    quantity   "v" and "v|system|code" (system "" when absent) where v = decimal_key(value)
               (canonical decimal: 5.40 → 5.4, 1E+2 → 100); Money is v|urn:iso:std:iso:4217|
               currency; a Range gives its bounds' keys. `$v||code` matches only quantities
               without a system: four keys per value would double the rows of every write
    number     "v"
    date       the value as written and its prefixes to year, month and day
               ("2013-04-02T09:30:10+01:00" → also "2013", "2013-04", "2013-04-02");
               a Period gives its start's and end's
    string     the normalised text (normalize_text)
    reference  "Type/id" for a literal reference, the URL for an absolute or canonical one
    uri        the URI as written

Only equality is expressible this way; comparators and prefixes on components are not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from hashlib import blake2b
from typing import Any

from yilian.fhir.search.normalize import decimal_key, normalize_text, to_decimal
from yilian.fhir.search.paths import KEY, Compiled, walk
from yilian.fhir.search.rows import ISO_4217, parse_reference


def composite_hash(param: str, values: Sequence[str]) -> int:
    """The hash of one combination of component keys (see the module docstring): the first
    8 bytes of blake2b over UTF-8 "composite␟{param}␟{key 1}␟{key 2}..." (␟ = U+001F, which
    FHIR strings cannot contain), read as a big-endian signed 64-bit integer.

    One digest of one joined string rather than yilian.kit.hashing.hash64's part-by-part
    updates: composites make the most rows of a write and their keys rarely repeat."""
    text = _SEPARATOR.join(("composite", param, *values))
    digest = blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_SEPARATOR = "\x1f"


def combination_hashes(param: str, keys: Sequence[Sequence[str]]) -> list[int]:
    """A hash per combination of one key from each component; none if a component is empty."""
    if not all(keys):
        return []
    prefix = f"composite{_SEPARATOR}{param}{_SEPARATOR}"
    return [
        int.from_bytes(
            blake2b((prefix + _SEPARATOR.join(combo)).encode(), digest_size=8).digest(),
            "big",
            signed=True,
        )
        for combo in itertools.product(*keys)
    ]


# --- keys by component type --------------------------------------------------------------------

KeyFunction = Callable[[Any], list[str]]


def _system_code(system: Any, code: Any) -> list[str]:
    if type(code) is not str or not code:
        return []
    return [f"{system if type(system) is str else ''}|{code}", code]


def _codeable_concept_keys(value: Any) -> list[str]:
    codings = value.get("coding") if type(value) is dict else None
    if type(codings) is not list:
        return []
    keys: list[str] = []
    for coding in codings:
        if type(coding) is dict:
            keys += _system_code(coding.get("system"), coding.get("code"))
    return keys


def _coding_keys(value: Any) -> list[str]:
    return _system_code(value.get("system"), value.get("code")) if type(value) is dict else []


def _identifier_keys(value: Any) -> list[str]:
    return _system_code(value.get("system"), value.get("value")) if type(value) is dict else []


def _contact_point_keys(value: Any) -> list[str]:
    return _system_code(None, value.get("value")) if type(value) is dict else []


def _primitive_token_keys(value: Any) -> list[str]:
    if type(value) is bool:
        return _system_code(None, "true" if value else "false")
    return _system_code(None, value)


def _one_quantity_keys(value: Any) -> list[str]:
    if type(value) is not dict:
        return []
    number = to_decimal(value.get("value"))
    if number is None:
        return []
    v = decimal_key(number)
    system, code = value.get("system"), value.get("code")
    currency = value.get("currency")
    if type(currency) is str and currency:  # Money
        system, code = ISO_4217, currency
    if type(code) is str and code:
        return [v, f"{v}|{system if type(system) is str else ''}|{code}"]
    return [v]


def _range_keys(value: Any) -> list[str]:
    if type(value) is not dict:
        return []
    return _one_quantity_keys(value.get("low")) + _one_quantity_keys(value.get("high"))


def _number_keys(value: Any) -> list[str]:
    number = to_decimal(value) if type(value) is not bool else None
    return [] if number is None else [decimal_key(number)]


def _date_prefixes(text: Any) -> list[str]:
    if type(text) is not str or len(text) < 4:
        return []
    keys = [text[:4]]
    if len(text) >= 7:
        keys.append(text[:7])
    if len(text) >= 10:
        keys.append(text[:10])
    if len(text) > 10:
        keys.append(text)
    return keys


def _period_keys(value: Any) -> list[str]:
    if type(value) is not dict:
        return []
    return _date_prefixes(value.get("start")) + _date_prefixes(value.get("end"))


def _string_keys(value: Any) -> list[str]:
    norm = normalize_text(value) if type(value) is str else ""
    return [norm] if norm else []


def _reference_keys(value: Any) -> list[str]:
    ref = value.get("reference") if type(value) is dict else None
    row = parse_reference(ref) if type(ref) is str else None
    if row is None:
        return []
    if row["target_type"] and row["target_id"]:
        return [f"{row['target_type']}/{row['target_id']}"]
    return [row["url"]] if row["url"] else []


def _text_keys(value: Any) -> list[str]:
    return [value] if type(value) is str and value else []


_TEXTUAL = ("string", "markdown", "code", "id", "uri", "url", "canonical", "oid", "uuid")

# (component parameter type → FHIR type → keys of one value); like rows.BUILDERS.
KEYS: dict[str, dict[str, KeyFunction]] = {
    "token": {
        **dict.fromkeys((*_TEXTUAL, "boolean"), _primitive_token_keys),
        "CodeableConcept": _codeable_concept_keys,
        "Coding": _coding_keys,
        "Identifier": _identifier_keys,
        "ContactPoint": _contact_point_keys,
    },
    "quantity": {
        **dict.fromkeys(
            ("Quantity", "Age", "Count", "Distance", "Duration", "SimpleQuantity", "Money"),
            _one_quantity_keys,
        ),
        "Range": _range_keys,
    },
    "number": dict.fromkeys(("decimal", "integer", "positiveInt", "unsignedInt"), _number_keys),
    "date": {
        **dict.fromkeys(("date", "dateTime", "instant"), _date_prefixes),
        "Period": _period_keys,
    },
    "string": dict.fromkeys(_TEXTUAL, _string_keys),
    "reference": {
        "Reference": _reference_keys,
        **dict.fromkeys(("canonical", "uri", "url"), _text_keys),
    },
    "uri": dict.fromkeys(_TEXTUAL, _text_keys),
}


ComponentKeys = Callable[[Any, dict[str, Any]], list[str]]


def component_keys(compiled: Compiled, param_type: str) -> ComponentKeys:
    """The keys of one component for an element, compiled: a component is nearly always one
    property of the element (`code`, `value.as(Quantity)` → valueQuantity), read directly."""
    by_type = KEYS[param_type]
    leaves = [(leaf.steps, by_type[leaf.type]) for leaf in compiled.leaves if leaf.type in by_type]
    if len(leaves) == 1 and len(leaves[0][0]) == 1 and leaves[0][0][0][0] == KEY:
        key, make = leaves[0][0][0][1], leaves[0][1]

        def one_property(element: Any, resource: dict[str, Any]) -> list[str]:
            value = element.get(key) if type(element) is dict else None
            if value is None:
                return []
            if type(value) is list:
                return [k for item in value for k in make(item)]
            return make(value)

        return one_property

    def any_path(element: Any, resource: dict[str, Any]) -> list[str]:
        keys: list[str] = []
        for steps, make in leaves:
            for value in walk(element, resource, steps):
                keys += make(value)
        return keys

    return any_path


# --- the query side ----------------------------------------------------------------------------


def query_key(param_type: str, text: str) -> str | None:
    """The key a search value of one component matches (the encoding above); None when the
    value cannot match anything (a quantity that is not a number)."""
    if param_type == "token":
        return text  # "system|code", "|code" or "code", as stored
    if param_type == "quantity":
        number_text, bar, units = text.partition("|")
        number = to_decimal(number_text)
        if number is None:
            return None
        v = decimal_key(number)
        if not bar:
            return v
        system, _, code = units.partition("|")
        return f"{v}|{system}|{code}" if code else v
    if param_type == "number":
        number = to_decimal(text)
        return None if number is None else decimal_key(number)
    if param_type == "string":
        return normalize_text(text)
    return text  # date as written (or its year, month, day), reference, uri
