"""Differential search tests: the server's SQL search, through GET /fhir/Type?params, must
return the same ids as the in-memory matcher (matcher.py, written from the R4 spec) on
generated Patients and Observations, on SQLite and PostgreSQL.

The `client` fixture is one database per test function, shared by all of Hypothesis's
examples: each example gives its resources ids of its own and restricts every search with
`_id=` listing exactly them, so that earlier examples' data never shows up.
"""

from __future__ import annotations

import calendar
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from fhir_helpers import FHIR_JSON
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matcher import (
    DATE_PREFIXES,
    NUMBER_PREFIXES,
    Param,
    Resource,
    date_matches,
    implicit_range,
    number_matches,
    quantity_matches,
    search,
    string_matches,
)
from starlette.testclient import TestClient

UCUM = "http://unitsofmeasure.org"
LOCAL_UNITS = "http://example.org/units"

DIFFERENTIAL = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
QUERIES_PER_EXAMPLE = (4, 12)  # several searches per load: loading is the costly part

GENDERS = ("male", "female", "other", "unknown")
# Case, Latin accents and CJK: the default and :contains searches ignore the first two.
FAMILIES = ("Zhang", "Zhāng", "ZHANG", "Wang", "王", "欧阳", "Li", "Lì", "Lin", "Müller")
# Units a record may carry: coded UCUM, a unit text alone, a coded unit whose text differs
# from its code, a local code system, and no unit at all.
UNITS: tuple[dict[str, str], ...] = (
    {"unit": "mg", "system": UCUM, "code": "mg"},
    {"unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
    {"unit": "mg"},
    {"unit": "milligram", "system": UCUM, "code": "mg"},
    {"unit": "mg", "system": LOCAL_UNITS, "code": "MG"},
    {},
)
UNIT_QUERIES = ("", f"|{UCUM}|mg", f"|{UCUM}|mm[Hg]", "||mg", "||mm[Hg]", "||MG",
                f"|{LOCAL_UNITS}|MG", f"|{LOCAL_UNITS}|mg")
# Exponent forms: the written precision (significant digits) is the implicit range.
EXPONENT_NUMBERS = ("1e2", "1.0e2", "1.20e2", "5e0", "54e-1", "1e1")


# --- JSON with exact decimals ------------------------------------------------------------------


def to_json(value: Any) -> str:
    """JSON text with each Decimal written as the number it is, digits as generated: the
    server reads precision from the text, and json.dumps has no way to write a Decimal."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


# --- generated data ----------------------------------------------------------------------------


@st.composite
def birth_dates(draw: st.DrawFn) -> str:
    """YYYY, YYYY-MM or YYYY-MM-DD, valid days only; a narrow span of years so that
    values and searches overlap often."""
    year = draw(st.integers(1978, 1982))
    precision = draw(st.sampled_from(("year", "month", "day")))
    if precision == "year":
        return f"{year:04d}"
    month = draw(st.integers(1, 12))
    if precision == "month":
        return f"{year:04d}-{month:02d}"
    day = draw(st.integers(1, calendar.monthrange(year, month)[1]))
    return f"{year:04d}-{month:02d}-{day:02d}"


@st.composite
def decimals(draw: st.DrawFn) -> Decimal:
    """0 to 2 decimal places in 0-10 or 95-125, trailing zeros kept (5.40 stays 5.40)."""
    places = draw(st.integers(0, 2))
    scale = 10**places
    low, high = draw(st.sampled_from(((0, 10), (95, 125))))
    units = draw(st.integers(low * scale, high * scale))
    return Decimal(units).scaleb(-places)


@st.composite
def patients(draw: st.DrawFn) -> Resource:
    patient: Resource = {"resourceType": "Patient"}
    if draw(st.booleans()):
        patient["birthDate"] = draw(birth_dates())
    if draw(st.booleans()):
        patient["gender"] = draw(st.sampled_from(GENDERS))
    families = draw(st.lists(st.none() | st.sampled_from(FAMILIES), max_size=2))
    if families:  # a name without a family part is a name all the same
        patient["name"] = [{"family": f} if f else {"given": ["Wei"]} for f in families]
    return patient


@st.composite
def observations(draw: st.DrawFn) -> Resource:
    observation: Resource = {"resourceType": "Observation", "status": "final",
                             "code": {"text": "dose"}}
    if draw(st.integers(0, 9)) > 0:
        quantity: Resource = dict(draw(st.sampled_from(UNITS)))
        if draw(st.integers(0, 9)) > 0 or not quantity:  # rarely a unit with no value
            quantity["value"] = draw(decimals())
        observation["valueQuantity"] = quantity
    return observation


def with_ids(resources: list[Resource]) -> list[Resource]:
    """Ids unique to this example (see the module docstring)."""
    prefix = uuid.uuid4().hex[:12]
    return [{**r, "id": f"{prefix}-{i}"} for i, r in enumerate(resources)]


# --- generated searches ------------------------------------------------------------------------


def _ors(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One value or two, comma-separated: an OR."""
    return st.lists(values, min_size=1, max_size=2).map(",".join)


def _date_times() -> st.SearchStrategy[str]:
    """A day with a time and an explicit zone: a one-second range, off the local midnight."""
    day = birth_dates().filter(lambda d: len(d) == 10)
    return st.builds(lambda d, h, m, z: f"{d}T{h:02d}:{m:02d}:00{z}", day,
                     st.integers(0, 23), st.sampled_from((0, 30)),
                     st.sampled_from(("Z", "+08:00", "-05:00")))


def date_values(seen: list[str]) -> st.SearchStrategy[str]:
    texts = birth_dates() | _date_times()
    if seen:
        texts = st.sampled_from(seen) | texts
    return st.builds(lambda p, t: p + t, st.sampled_from(("", *DATE_PREFIXES)), texts)


@st.composite
def family_values(draw: st.DrawFn, modifier: str | None, seen: list[str]) -> str:
    """A slice of a family name (often one in the data), in some case: a prefix for the
    default search, any substring for :contains, mostly the whole name for :exact."""
    name = draw(st.sampled_from(seen or FAMILIES) | st.sampled_from(FAMILIES))
    start = draw(st.integers(0, len(name) - 1)) if modifier == "contains" else 0
    whole = modifier == "exact" and draw(st.booleans())
    end = len(name) if whole else draw(st.integers(start + 1, len(name)))
    # As written (strip: the names have no spaces at their ends), lower case, upper case.
    cases: tuple[Callable[[str], str], ...] = (str.strip, str.lower, str.upper)
    return draw(st.sampled_from(cases))(name[start:end])


def patient_params(seen_dates: list[str], seen_families: list[str]
                   ) -> st.SearchStrategy[Param]:
    family = st.sampled_from((None, "exact", "contains")).flatmap(
        lambda m: st.tuples(st.just(f"family:{m}" if m else "family"),
                            _ors(family_values(m, seen_families))))
    return st.one_of(
        st.tuples(st.just("birthdate"), _ors(date_values(seen_dates))),
        st.tuples(st.just("birthdate:missing"), st.sampled_from(("true", "false"))),
        st.tuples(st.just("gender"), _ors(st.sampled_from(GENDERS))),
        # :not with a single code: a comma list under :not is not clear in the spec.
        st.tuples(st.just("gender:not"), st.sampled_from(GENDERS)),
        family,
    )


def number_texts(seen: list[Decimal]) -> st.SearchStrategy[str]:
    """Numbers near the data: stored values rewritten to 0-3 places (5.4 → 5, 5.40, 5.400),
    fresh ones, and exponent forms."""
    texts = decimals().map(str) | st.sampled_from(EXPONENT_NUMBERS)
    if seen:
        rewritten = st.builds(lambda d, p: str(d.quantize(Decimal(1).scaleb(-p))),
                              st.sampled_from(seen), st.integers(0, 3))
        texts = rewritten | texts
    return texts


def quantity_params(seen: list[Decimal]) -> st.SearchStrategy[Param]:
    units = st.just("") | st.sampled_from(UNIT_QUERIES)  # no unit half the time: more hits
    value = st.builds(lambda p, n, u: p + n + u, st.sampled_from(("", *NUMBER_PREFIXES)),
                      number_texts(seen), units)
    return st.tuples(st.just("value-quantity"), _ors(value))


def queries(params: st.SearchStrategy[Param]) -> st.SearchStrategy[list[Param]]:
    """1-3 parameters, ANDed; the same parameter may come twice."""
    return st.lists(params, min_size=1, max_size=3)


# --- the server --------------------------------------------------------------------------------


def load(client: TestClient, resources: list[Resource]) -> None:
    if not resources:
        return
    entries = [{"resource": r, "request": {"method": "PUT",
                                           "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    response = client.post("/fhir", content=to_json(bundle).encode(), headers=FHIR_JSON)
    assert response.status_code == 200, response.text


def query_string(params: list[Param]) -> str:
    # Commas stay literal: they separate the values of an OR.
    return "&".join(f"{quote(name, safe=':')}={quote(value, safe=',')}"
                    for name, value in params)


def server_ids(client: TestClient, res_type: str, params: list[Param]) -> set[str]:
    url = f"/fhir/{res_type}?{query_string(params)}&_count=1000"
    # Strict handling: a parameter the server ignored would make the comparison meaningless.
    response = client.get(url, headers={"Prefer": "handling=strict"})
    assert response.status_code == 200, f"{url}: {response.status_code} {response.text}"
    bundle = response.json()
    assert not any(link["relation"] == "next" for link in bundle.get("link", [])), url
    entries = bundle.get("entry", [])
    assert all(e["search"]["mode"] == "match" for e in entries), url
    return {e["resource"]["id"] for e in entries}


def compare(client: TestClient, res_type: str, resources: list[Resource],
            searches: list[list[Param]]) -> None:
    """Each search, restricted to this example's resources, on the server and the matcher."""
    # A sentinel id keeps `_id` non-empty when the example has no resources.
    only_these = ("_id", ",".join([r["id"] for r in resources] + ["no-such-resource"]))
    wrong = []
    for params in searches:
        restricted = [*params, only_these]
        expected = search(resources, res_type, restricted)
        found = server_ids(client, res_type, restricted)
        if found != expected:
            wrong.append(f"{res_type}?{query_string(params)}: matcher {sorted(expected)}, "
                         f"server {sorted(found)}")
    assert not wrong, "\n".join([*wrong, "data:", *map(to_json, resources)])


# --- the differential tests --------------------------------------------------------------------


@DIFFERENTIAL
@given(data=st.data())
def test_patient_search_agrees_with_the_matcher(client: TestClient, data: st.DataObject) -> None:
    resources = with_ids(data.draw(st.lists(patients(), max_size=12), label="patients"))
    load(client, resources)
    seen_dates = sorted({r["birthDate"] for r in resources if "birthDate" in r})
    seen_families = sorted({n["family"] for r in resources for n in r.get("name", [])
                            if "family" in n})
    params = patient_params(seen_dates, seen_families)
    searches = data.draw(st.lists(queries(params), min_size=QUERIES_PER_EXAMPLE[0],
                                  max_size=QUERIES_PER_EXAMPLE[1]), label="searches")
    compare(client, "Patient", resources, searches)


@DIFFERENTIAL
@given(data=st.data())
def test_quantity_search_agrees_with_the_matcher(client: TestClient,
                                                 data: st.DataObject) -> None:
    resources = with_ids(data.draw(st.lists(observations(), max_size=12), label="observations"))
    load(client, resources)
    seen = sorted({r["valueQuantity"]["value"] for r in resources
                   if "value" in r.get("valueQuantity", {})})
    searches = data.draw(st.lists(queries(quantity_params(seen)),
                                  min_size=QUERIES_PER_EXAMPLE[0],
                                  max_size=QUERIES_PER_EXAMPLE[1]), label="searches")
    compare(client, "Observation", resources, searches)


# --- the matcher on the spec's own examples ----------------------------------------------------


@pytest.mark.parametrize(("text", "low", "high"), [
    ("100", "99.5", "100.5"),  # §3.1.1.4.1: 3 significant figures
    ("100.00", "99.995", "100.005"),
    ("1e2", "50", "150"),  # one significant figure (R5's corrected example)
    ("5.4", "5.35", "5.45"),
    ("5.40", "5.395", "5.405"),
    ("54e-1", "5.35", "5.45"),
    ("0", "-0.5", "0.5"),
])
def test_implicit_range_of_a_written_number(text: str, low: str, high: str) -> None:
    assert implicit_range(text) == (Decimal(low), Decimal(high))


@pytest.mark.parametrize(("prefix", "text", "target", "expected"), [
    ("eq", "100", "99.5", True),  # the low end is in, the high end out
    ("eq", "100", "100.5", False),
    ("eq", "100.00", "100.004", True),
    ("eq", "100.00", "100.005", False),
    ("ne", "100", "100.4", False),  # ne is "not in [99.5, 100.5)"
    ("ne", "100", "100.5", True),
    ("lt", "100", "99.9", True),  # the ordering prefixes compare with exactly 100
    ("lt", "100", "100", False),
    ("le", "100", "100", True),
    ("gt", "100", "100.1", True),
    ("ge", "100", "99.9", False),
])
def test_number_prefixes_on_spec_examples(prefix: str, text: str, target: str,
                                          expected: bool) -> None:
    assert number_matches(prefix, text, Decimal(target)) is expected


@pytest.mark.parametrize(("value", "target", "expected"), [
    # §3.1.1.4.2: eq2013-01-14 takes in a time on that day, not one on the day before or
    # after (times here carry the hospital's +08:00, as a date without a zone does).
    ("eq2013-01-14", "2013-01-14T10:00:00+08:00", True),
    ("eq2013-01-14", "2013-01-13T23:59:00+08:00", False),
    ("eq2013-01-14", "2013-01-15T00:00:00+08:00", False),
    ("2013-01-14", "2013-01", False),  # a month is not within a day
    ("2013", "2013-01", True),
    ("ne2013", "2012", True),
    ("gt2013-01-14", "2013-01", True),  # January runs on past the 14th
    ("sa2013-01-14", "2013-01", False),  # ... but does not start after it
    ("sa2013-01-14", "2013-01-15", True),
    ("lt2013-01-14", "2013-01", True),
    ("eb2013-01-14", "2013-01", False),
    ("eb2013-01-14", "2013-01-13", True),
    ("ge2013-01-14", "2013-01-14", True),
    ("le2013-01-14", "2013-01-15", False),
    ("2013-01-14", "2013-01-13T16:00:00Z", True),  # midnight in +08:00
])
def test_date_prefixes_on_spec_examples(value: str, target: str, expected: bool) -> None:
    assert date_matches(value, target) is expected


@pytest.mark.parametrize(("modifier", "value", "target", "expected"), [
    (None, "eve", "Eve", True),  # §3.1.1.5.6: starts with, case-blind
    (None, "eve", "Evelyn", True),
    (None, "eve", "Severine", False),
    ("contains", "eve", "Severine", True),
    ("exact", "Eve", "Eve", True),
    ("exact", "Eve", "eve", False),
    ("exact", "Eve", "Evelyn", False),
    (None, "zhang", "Zhāng", True),  # accents are ignored too
    ("exact", "Zhang", "Zhāng", False),
    (None, "王", "王小明", True),
])
def test_string_matching_on_spec_examples(modifier: str | None, value: str, target: str,
                                          expected: bool) -> None:
    assert string_matches(modifier, value, target) is expected


@pytest.mark.parametrize(("value", "quantity", "expected"), [
    # §3.1.1.5.5: 5.4|http://unitsofmeasure.org|mg wants that system and code.
    (f"5.4|{UCUM}|mg", {"value": Decimal("5.4"), "system": UCUM, "code": "mg"}, True),
    (f"5.4|{UCUM}|mg", {"value": Decimal("5.4"), "unit": "mg"}, False),
    # 5.4||mg: the code in any system, or the unit text of an uncoded quantity.
    ("5.4||mg", {"value": Decimal("5.4"), "system": LOCAL_UNITS, "code": "mg"}, True),
    ("5.4||mg", {"value": Decimal("5.4"), "unit": "mg"}, True),
    ("5.4||mg", {"value": Decimal("5.4"), "unit": "mg", "system": LOCAL_UNITS,
                 "code": "MG"}, False),
    (f"le5.4|{UCUM}|mg", {"value": Decimal("5.4"), "system": UCUM, "code": "mg"}, True),
    ("5.4", {"value": Decimal("5.449"), "unit": "kg"}, True),  # no unit given: any unit
    ("ne5.4", {"unit": "mg"}, False),  # no value, nothing to differ
])
def test_quantity_matching_on_spec_examples(value: str, quantity: Resource,
                                            expected: bool) -> None:
    assert quantity_matches(value, quantity) is expected


def test_search_combines_or_within_and_across_parameters() -> None:
    resources: list[Resource] = [
        {"resourceType": "Patient", "id": "a", "gender": "male", "birthDate": "1980"},
        {"resourceType": "Patient", "id": "b", "gender": "female", "birthDate": "1981"},
        {"resourceType": "Patient", "id": "c"},
    ]
    assert search(resources, "Patient", [("gender", "male,female")]) == {"a", "b"}
    assert search(resources, "Patient", [("gender", "male,female"),
                                          ("birthdate", "1981")]) == {"b"}
    assert search(resources, "Patient", [("gender:not", "male")]) == {"b", "c"}
    assert search(resources, "Patient", [("birthdate", "ne1980")]) == {"b"}
    assert search(resources, "Patient", [("birthdate:missing", "true")]) == {"c"}
    assert search(resources, "Patient", [("birthdate", "ge1980"),
                                          ("birthdate", "le1980")]) == {"a"}


def test_decimals_reach_the_server_as_written() -> None:
    body = to_json({"valueQuantity": {"value": Decimal("5.40"), "unit": "µg"}})
    assert body == '{"valueQuantity":{"value":5.40,"unit":"µg"}}'
