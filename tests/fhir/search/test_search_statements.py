"""A search's SQL is built once per shape and serves later searches with their own values
(yilian.fhir.search.binding, .statements): the values must never leak from the search that
built a statement into the next, and a different shape must get its own statement."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest
from fhir_helpers import put_all
from search_client import check, ids, q
from sqlalchemy import bindparam, literal, select
from sqlalchemy.types import NullType
from starlette.testclient import TestClient

from yilian.fhir.search import query
from yilian.fhir.search.binding import Binding
from yilian.fhir.search.expressions import All, AnyOf, Expression
from yilian.fhir.search.query import parse_query
from yilian.fhir.search.sorting import Cursor, decode_cursor
from yilian.fhir.search.statements import Statements
from yilian.fhir.store.tables import idx_date, idx_quantity

LOINC = "http://loinc.org"
MRN = "http://hospital.example.org/mrn"


def _patient(n: int, family: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": family}],
            "identifier": [{"system": MRN, "value": f"M{n}"}]}


def _observation(n: int, patient: int, code: str, day: str, value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"o{n}", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/p{patient}"},
            "effectiveDateTime": f"{day}T08:00:00+08:00",
            "valueQuantity": {"value": value, "unit": "mmol/L",
                              "system": "http://unitsofmeasure.org", "code": "mmol/L"}}


RESOURCES = [
    _patient(1, "Zhang"), _patient(2, "Zhao"), _patient(3, "Wang"),
    _observation(1, 1, "2345-7", "2024-01-01", 5.4),
    _observation(2, 1, "2345-7", "2024-02-01", 7.9),
    _observation(3, 1, "8867-4", "2024-02-01", 72),
    _observation(4, 2, "2345-7", "2024-03-01", 6.1),
    _observation(5, 3, "8867-4", "2024-03-01", 90),
]


@pytest.fixture
def loaded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    # Statements of this test's own: the process's are shared by every test (and database).
    monkeypatch.setattr(query, "STATEMENTS", Statements())
    return put_all(client, RESOURCES)


def _built_by(client: TestClient, url: str) -> int:
    """How many statements answering `url` built (0: it reused a statement)."""
    before = query.STATEMENTS.built
    ids(client, url)
    return query.STATEMENTS.built - before


def test_searches_of_one_shape_share_statements_and_find_their_own_rows(
        loaded: TestClient) -> None:
    cases = [
        (q(f"Observation?subject=Patient/p{n}&code={LOINC}|{code}&date=ge{day}&_sort=date"),
         expected)
        for n, code, day, expected in [
            (1, "2345-7", "2024-01-15", {"o2"}),
            (1, "2345-7", "2023-12-01", {"o1", "o2"}),
            (2, "2345-7", "2023-12-01", {"o4"}),
            (3, "2345-7", "2023-12-01", set()),
            (3, "8867-4", "2024-03-01", {"o5"}),
        ]
    ]
    assert _built_by(loaded, cases[0][0]) > 0  # what this shape needs
    check(loaded, cases[:1])
    for url, expected in cases[1:]:
        assert _built_by(loaded, url) == 0, url
        check(loaded, [(url, expected)])


def test_a_different_shape_gets_its_own_statement(loaded: TestClient) -> None:
    check(loaded, [(q(f"Patient?identifier={MRN}|M1"), {"p1"})])
    assert _built_by(loaded, q(f"Patient?identifier={MRN}|M2")) == 0
    # A code without a system, a prefix, two values: other SQL, each built once.
    for url, expected in [("Patient?identifier=M2", {"p2"}),
                          ("Patient?family=Zh", {"p1", "p2"}),
                          ("Patient?family=Zh,Wa", {"p1", "p2", "p3"}),
                          ("Patient?family:exact=Zhao", {"p2"})]:
        assert _built_by(loaded, url) > 0, url
        assert _built_by(loaded, url) == 0, url
        check(loaded, [(url, expected)])


def test_a_list_of_system_and_code_pairs_matches_each_pair_not_their_cross(
        loaded: TestClient) -> None:
    """`system|code,...` is a list of (system, code) pairs, one index's leading columns: a
    code under another system than the one it was asked with does not match."""
    other = "http://example.org/codes"
    for url, expected in [
        (f"Observation?code={LOINC}|2345-7,{other}|8867-4", {"o1", "o2", "o4"}),
        (f"Observation?code={other}|2345-7,{LOINC}|8867-4", {"o3", "o5"}),
        (f"Observation?code={LOINC}|2345-7,{LOINC}|8867-4,{other}|1",
         {"o1", "o2", "o3", "o4", "o5"}),
        (f"Observation?code={other}|2345-7,{other}|8867-4", set()),
        (f"Observation?code={LOINC}|,{other}|8867-4", {"o1", "o2", "o3", "o4", "o5"}),
        (f"Observation?code=|2345-7,{LOINC}|8867-4", {"o3", "o5"}),  # |code: no system
        (f"Observation?code=2345-7,{other}|8867-4&subject=Patient/p1", {"o1", "o2"}),
    ]:
        check(loaded, [(q(url), expected)])


def test_prefixes_and_ranges_are_bound_per_search(loaded: TestClient) -> None:
    check(loaded, [
        ("Observation?value-quantity=gt6", {"o2", "o3", "o4", "o5"}),
        ("Observation?value-quantity=gt80", {"o5"}),
        ("Observation?value-quantity=5.4", {"o1"}),
        ("Observation?value-quantity=6.1", {"o4"}),
        ("Observation?date=2024-02", {"o2", "o3"}),
        ("Observation?date=2024-03", {"o4", "o5"}),
        ("Observation?date=le2024-01-31", {"o1"}),
        ("Observation?date=le2024-02-29", {"o1", "o2", "o3"}),
    ])


def test_chains_and_reverse_chains_bind_their_inner_values(loaded: TestClient) -> None:
    check(loaded, [
        (q(f"Observation?subject:Patient.identifier={MRN}|M1"), {"o1", "o2", "o3"}),
        (q(f"Observation?subject:Patient.identifier={MRN}|M3"), {"o5"}),
        ("Patient?_has:Observation:subject:code=8867-4", {"p1", "p3"}),
        ("Patient?_has:Observation:subject:code=2345-7", {"p1", "p2"}),
    ])


def test_the_next_page_binds_the_cursor_of_this_search(loaded: TestClient) -> None:
    pages: list[list[str]] = []
    url: str | None = "/fhir/Observation?_sort=-date&_count=2"
    while url is not None:
        bundle = loaded.get(url).json()
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((link["url"].removeprefix("http://testserver")
                    for link in bundle["link"] if link["relation"] == "next"), None)
    # Ties on a date go by pk: the order the resources were written in.
    assert pages == [["o4", "o5"], ["o2", "o3"], ["o1"]]


def _shape(url: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    res_type, _, text = url.partition("?")
    binding = Binding("http://testserver/fhir")
    expression = parse_query(res_type, parse_qsl(text), strict=True).expression()
    return binding.shape(expression, res_type), binding.values


def test_the_shape_keeps_the_structure_and_leaves_out_the_values() -> None:
    same, values = _shape(f"Observation?code={LOINC}|1-8&date=ge2024-01-01")
    other, other_values = _shape(f"Observation?code={LOINC}|9-9&date=ge2023-05")
    assert same == other
    assert values.keys() == other_values.keys() and values != other_values
    # One code is compared, more are looked up in a list: two or three, the same shape.
    two = _shape(f"Observation?code={LOINC}|1-8,{LOINC}|2-5&date=ge2024-01-01")[0]
    assert two != same
    assert two == _shape(f"Observation?code={LOINC}|1-8,{LOINC}|2-5,{LOINC}|3-3"
                         "&date=ge2024-01-01")[0]
    for changed in ("Observation?code=1-8&date=ge2024-01-01",  # no system
                    f"Observation?code={LOINC}|1-8&date=lt2024-01-01",  # another prefix
                    f"Observation?code={LOINC}|1-8&date=ge2024-01-01,2024-02-01",
                    f"Observation?code:not={LOINC}|1-8&date=ge2024-01-01"):
        assert _shape(changed)[0] != same, changed


def test_a_criterion_used_twice_is_bound_once() -> None:
    criterion = parse_query("Patient", [("family", "Zh")], strict=True).expression()
    twice: Expression = All((criterion, AnyOf((criterion,))))
    binding = Binding(None)
    shape = binding.shape(twice, "Patient")
    assert shape[1][1] == ("any", (("all", (("again", 0),)),))
    assert list(binding.values) == ["b0_0", "b0_1"]  # the prefix's range, once


def test_the_least_recently_used_statement_goes_first() -> None:
    kept = Statements(size=2)
    made: list[str] = []

    def build(name: str) -> Any:
        def make() -> Any:
            made.append(name)
            return select(literal(name))
        return make

    for name in ("a", "b", "a", "c", "a", "b"):
        kept.get(name, build(name))
    assert made == ["a", "b", "c", "b"]  # "b" was the least recently used when "c" came
    assert kept.built == 4


def _pages(client: TestClient, url: str | None) -> tuple[list[list[str]], list[str]]:
    """The ids of every page from `url` on, and the next links followed."""
    pages: list[list[str]] = []
    links: list[str] = []
    while url is not None:
        bundle = client.get(url).json()
        pages.append([e["resource"]["id"] for e in bundle.get("entry", [])])
        url = next((link["url"].removeprefix("http://testserver")
                    for link in bundle["link"] if link["relation"] == "next"), None)
        if url is not None:
            links.append(url)
    return pages, links


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The criteria (by number) whose rows searches count to choose where they start."""
    counted: list[int] = []
    counter = query._counter

    def counting(*args: Any) -> Any:
        count = counter(*args)

        def counts_one(number: int, limit: int) -> int:
            counted.append(number)
            return count(number, limit)
        return counts_one

    monkeypatch.setattr(query, "_counter", counting)
    return counted


def test_a_days_rows_are_counted_before_a_codes(loaded: TestClient, counts: list[int]) -> None:
    check(loaded, [("Observation?code=2345-7&date=2024-02-01", {"o2"})])
    assert counts == [1]  # the day's two rows: few enough not to count the code's
    counts.clear()
    check(loaded, [("Observation?code=2345-7&date=2024-02", {"o2"})])
    assert counts == [0]  # a month: the code first (three rows: enough)


def test_later_pages_start_from_the_first_pages_source_without_counting_again(
        loaded: TestClient, counts: list[int]) -> None:
    first = f"/fhir/Observation?code={q('2345-7,8867-4')}&date=ge2024-01-01&_count=2"
    ids(loaded, first.removeprefix("/fhir/"))
    assert counts == [0]  # the first page counted the codes' rows: few, no need to go on
    pages, links = _pages(loaded, first)
    assert pages == [["o1", "o2"], ["o3", "o4"], ["o5"]]
    assert counts == [0, 0]  # once more for the first page, never for the next ones
    forged = decode_cursor(parse_qs(urlsplit(links[0]).query)["_cursor"][0], 0)
    # Any criterion that can be a source (or none: the resource table) finds the same page.
    for source in ((1,), (-1,)):
        counts.clear()
        cursor = Cursor(forged.values, forged.pk, source).encode()
        assert ids(loaded, first.removeprefix("/fhir/") + f"&_cursor={cursor}") == {"o3", "o4"}
        assert counts == [], source
    # One that cannot be, or a choice per type for one type: counted again, same page.
    for source in ((5,), (-2,), (0, 1)):
        counts.clear()
        cursor = Cursor(forged.values, forged.pk, source).encode()
        assert ids(loaded, first.removeprefix("/fhir/") + f"&_cursor={cursor}") == {"o3", "o4"}
        assert counts == [0], source


def test_sqlites_driver_runs_a_statement_as_sqlalchemy_does(loaded: TestClient) -> None:
    """Instants, decimals and lists bound, instants and decimals read back: the same rows
    from the driver (SQLite; PostgreSQL's go through SQLAlchemy) as from SQLAlchemy."""
    engine = loaded.app.state.engine  # type: ignore[attr-defined]
    dates, quantities = idx_date.alias("d"), idx_quantity.alias("q")
    statement = (
        select(dates.c.resource_pk, dates.c.low, quantities.c.value)
        .join(quantities, quantities.c.resource_pk == dates.c.resource_pk)
        .where(dates.c.low >= bindparam("since", type_=NullType()),
               quantities.c.value > bindparam("above", type_=NullType()),
               dates.c.resource_pk.in_(bindparam("pks", expanding=True)))
        .order_by(dates.c.low))
    kept = Statements()
    lengths = []
    with engine.connect() as conn:
        pks = list(conn.scalars(select(idx_date.c.resource_pk).order_by(idx_date.c.resource_pk)))
        for values in ({"since": datetime(2024, 1, 15, tzinfo=UTC), "above": Decimal("6"),
                        "pks": pks},
                       {"since": datetime(2023, 1, 1, tzinfo=UTC), "above": Decimal("0"),
                        "pks": pks[:2]},
                       {"since": datetime(2023, 1, 1, tzinfo=UTC), "above": Decimal("0"),
                        "pks": []}):
            expected = [tuple(row) for row in conn.execute(statement, values)]
            found = [tuple(row) for row in kept.rows(conn, "key", lambda: statement, values)]
            assert found == expected
            lengths.append(len(found))
        assert lengths == [4, 2, 0]
        assert isinstance(kept.rows(conn, "key", lambda: statement, {
            "since": datetime(2023, 1, 1, tzinfo=UTC), "above": Decimal("0"), "pks": pks,
        })[0][1], datetime)
