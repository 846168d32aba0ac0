"""An in-memory FHIR R4 search matcher, written from the specification (search §3.1.1),
to check the server's SQL search against on generated data.

It knows only what the differential test asks of it:

    Patient      _id, birthdate (date, also :missing), gender (token, also :not),
                 family (string, also :exact and :contains)
    Observation  _id, value-quantity (quantity)

Values of one parameter separated by commas are OR; a repeated parameter is AND (§3.1.1.3).

It borrows two of the server's documented conventions, not its search logic: `date_range`
(a date is the UTC range it spans, both ends inclusive; no time zone means UTC+08:00) and
`normalize_for_search` (casefold, strip Latin accents, collapse spaces). Everything else is
worked out here from the spec, independently of yilian.fhir.search.predicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from yilian.fhir.search.dates import date_range
from yilian.kit.text import normalize_for_search

Resource = dict[str, Any]
Param = tuple[str, str]  # ("birthdate:missing", "true"): the name with its modifier, the value

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
NUMBER_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")


class Unsupported(ValueError):
    """A parameter, modifier or value this matcher was not written for."""


# --- prefixes and numbers ----------------------------------------------------------------------


def split_prefix(value: str, allowed: Sequence[str]) -> tuple[str, str]:
    """`ge1980` → ("ge", "1980"); no prefix means eq (§3.1.1.4)."""
    head = value[:2]
    if head in allowed and len(value) > 2 and (value[2].isdigit() or value[2] in "+-."):
        return head, value[2:]
    return "eq", value


def implicit_range(text: str) -> tuple[Decimal, Decimal]:
    """[low, high) that a number stands for by the precision it is written with (§3.1.1.4.1:
    "100" is [99.5, 100.5), "100.00" is [99.995, 100.005), "1e2" is [50, 150)): half a unit
    of the last significant digit either side. Decimal keeps the written exponent."""
    number = Decimal(text)
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):
        raise Unsupported(f"not a finite number: {text!r}")
    half = Decimal(5).scaleb(exponent - 1)
    return number - half, number + half


def number_matches(prefix: str, text: str, target: Decimal) -> bool:
    """eq/ne against the implicit range of the search number; the ordering prefixes against
    the number exactly (the server's documented reading of §3.1.1.4.1)."""
    number = Decimal(text)
    low, high = implicit_range(text)
    within = low <= target < high
    comparisons: dict[str, bool] = {
        "eq": within,
        "ne": not within,
        "gt": target > number,
        "lt": target < number,
        "ge": target >= number,
        "le": target <= number,
    }
    if prefix not in comparisons:
        raise Unsupported(f"number prefix {prefix!r}")
    return comparisons[prefix]


# --- dates -------------------------------------------------------------------------------------


def _parse_date(text: str) -> tuple[datetime, datetime]:
    found = date_range(text)
    if found is None:
        raise Unsupported(f"not a date: {text!r}")
    return found


def date_matches(value: str, target: str) -> bool:
    """A target date against a search value: both are ranges [low, high], inclusive."""
    prefix, text = split_prefix(value, DATE_PREFIXES)
    s_low, s_high = _parse_date(text)
    t_low, t_high = _parse_date(target)
    contained = t_low >= s_low and t_high <= s_high  # the search range holds the target's
    comparisons: dict[str, bool] = {
        "eq": contained,
        "ne": not contained,
        "gt": t_high > s_high,  # some of the target lies after the search range
        "lt": t_low < s_low,  # some of it lies before
        "ge": t_high > s_high or contained,
        "le": t_low < s_low or contained,
        "sa": t_low > s_high,  # all of it after
        "eb": t_high < s_low,  # all of it before
    }
    return comparisons[prefix]


def _birthdate(resource: Resource, modifier: str | None, values: list[str]) -> bool:
    born: str | None = resource.get("birthDate")
    if modifier == "missing":
        return _missing(values, born is None)
    _no_modifier("birthdate", modifier)
    # A resource without a value matches no prefix, ne included: there is nothing to differ.
    return born is not None and any(date_matches(v, born) for v in values)


# --- token -------------------------------------------------------------------------------------


def _gender(resource: Resource, modifier: str | None, values: list[str]) -> bool:
    gender: str | None = resource.get("gender")
    if any("|" in v for v in values):
        raise Unsupported("gender: only plain codes")
    has_one = gender is not None and gender in values
    if modifier == "not":
        # §3.1.1.5.4 (:not): the resources that do not have a matching value, those with no
        # value at all included. A comma list inside :not is left out: the spec is unclear.
        if len(values) != 1:
            raise Unsupported("gender:not with several values")
        return not has_one
    if modifier == "missing":
        return _missing(values, gender is None)
    _no_modifier("gender", modifier)
    return has_one


# --- string ------------------------------------------------------------------------------------


def string_matches(modifier: str | None, value: str, target: str) -> bool:
    """§3.1.1.5.6: by default the target starts with the value, case- and accent-blind;
    :exact is the whole value as written; :contains anywhere, case- and accent-blind."""
    if modifier == "exact":
        return target == value
    if modifier == "contains":
        return normalize_for_search(value) in normalize_for_search(target)
    _no_modifier("family", modifier)
    return normalize_for_search(target).startswith(normalize_for_search(value))


def _families(resource: Resource) -> list[str]:
    return [name["family"] for name in resource.get("name", []) if "family" in name]


def _family(resource: Resource, modifier: str | None, values: list[str]) -> bool:
    families = _families(resource)
    if modifier == "missing":
        return _missing(values, not families)
    return any(string_matches(modifier, v, f) for v in values for f in families)


# --- quantity ----------------------------------------------------------------------------------


def units_match(system: str | None, code: str | None, quantity: Resource) -> bool:
    """§3.1.1.5.5: `N|system|code` wants that system and code; `N||code` a code in any
    system, or (as the server documents) a quantity with no coded unit whose human-readable
    unit reads the same."""
    if system is not None:
        return quantity.get("system") == system and (code is None
                                                     or quantity.get("code") == code)
    if code is not None:
        if "code" in quantity:
            return bool(quantity["code"] == code)
        return quantity.get("unit") == code
    return True


def quantity_matches(value: str, quantity: Resource) -> bool:
    parts = value.split("|")
    if len(parts) not in (1, 3):
        raise Unsupported(f"quantity {value!r}")
    prefix, number = split_prefix(parts[0], NUMBER_PREFIXES)
    system, code = (parts[1] or None, parts[2] or None) if len(parts) == 3 else (None, None)
    target = quantity.get("value")
    if target is None:  # no value, no comparison: ne included
        return False
    return number_matches(prefix, number, Decimal(target)) and units_match(system, code,
                                                                           quantity)


def _value_quantity(resource: Resource, modifier: str | None, values: list[str]) -> bool:
    quantity: Resource | None = resource.get("valueQuantity")
    if modifier == "missing":
        return _missing(values, quantity is None)
    _no_modifier("value-quantity", modifier)
    return quantity is not None and any(quantity_matches(v, quantity) for v in values)


# --- the search --------------------------------------------------------------------------------


def _missing(values: list[str], absent: bool) -> bool:
    """§3.1.1.5.1: :missing=true finds resources without a value, false those with one."""
    if values not in (["true"], ["false"]):
        raise Unsupported(f":missing={values}")
    return absent == (values == ["true"])


def _no_modifier(name: str, modifier: str | None) -> None:
    if modifier is not None:
        raise Unsupported(f"{name}:{modifier}")


def _id(resource: Resource, modifier: str | None, values: list[str]) -> bool:
    _no_modifier("_id", modifier)
    return resource.get("id") in values


Test = Callable[[Resource, str | None, list[str]], bool]

PARAMETERS: dict[str, dict[str, Test]] = {
    "Patient": {"_id": _id, "birthdate": _birthdate, "gender": _gender, "family": _family},
    "Observation": {"_id": _id, "value-quantity": _value_quantity},
}


def matches(resource: Resource, params: Iterable[Param]) -> bool:
    """Whether one resource meets every parameter (AND), each by any of its values (OR)."""
    tests = PARAMETERS[resource["resourceType"]]
    for full_name, value in params:
        name, _, modifier = full_name.partition(":")
        if name not in tests:
            raise Unsupported(f"{resource['resourceType']}?{name}")
        # No value here carries an escaped comma ('\,'): a plain split is the OR list.
        if not tests[name](resource, modifier or None, value.split(",")):
            return False
    return True


def search(resources: Iterable[Resource], res_type: str, params: Iterable[Param]) -> set[str]:
    """The ids of the resources of `res_type` that match: what GET [type]?params returns."""
    wanted = list(params)
    return {r["id"] for r in resources
            if r["resourceType"] == res_type and matches(r, wanted)}
