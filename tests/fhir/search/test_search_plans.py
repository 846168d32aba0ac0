"""How searches are answered, not only what they answer: which criterion a search starts
from, and that SQLite reads the indexes meant for it (yilian.fhir.search.plan). At a million
resources a wrong choice costs seconds instead of milliseconds, with the same results, so the
result tests alone would not notice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from fhir_helpers import FHIR_JSON, authorized, put_all
from sqlalchemy import Connection, Engine, select
from starlette.testclient import TestClient

from yilian.api.app import create_app
from yilian.config import Settings
from yilian.fhir.search import plan as plan_module
from yilian.fhir.search import query as query_module
from yilian.fhir.search.binding import Binding
from yilian.fhir.search.expressions import All, Ids
from yilian.fhir.search.plan import Names, Plan, matching_pks
from yilian.fhir.search.query import parse_query, search_plan
from yilian.fhir.store.tables import resource
from yilian.kit.sqlhints import after_prefix

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
FIRST_DAY = date(2024, 1, 1)
HEART_RATE, GLUCOSE = "8867-4", "2345-7"


def _observation(n: int, code: str, day: date, patient: str) -> dict[str, Any]:
    return {"resource": {
        "resourceType": "Observation", "id": f"o{n}", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": f"{day.isoformat()}T08:00:00+08:00"},
        "request": {"method": "PUT", "url": f"Observation/o{n}"}}


@pytest.fixture
def sqlite_client(tmp_path: Path, sqlite_template: Path) -> Iterator[TestClient]:
    """SQLite only: PostgreSQL chooses its own plans from its statistics."""
    path = tmp_path / "plans.db"
    path.write_bytes(sqlite_template.read_bytes())
    app = create_app(Settings(database_url=f"sqlite:///{path}",
                              base_url="http://testserver/fhir"))
    with TestClient(app, base_url="http://testserver") as client:
        authorized(client)
        # 60 days of heart rates for p1 (one a day), three glucose results on day 10 for p2.
        entries = [{"resource": {"resourceType": "Patient", "id": p},
                    "request": {"method": "PUT", "url": f"Patient/{p}"}} for p in ("p1", "p2")]
        entries += [_observation(n, HEART_RATE, FIRST_DAY + timedelta(days=n), "p1")
                    for n in range(60)]
        entries += [_observation(100 + n, GLUCOSE, FIRST_DAY + timedelta(days=10), "p2")
                    for n in range(3)]
        response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                              "entry": entries}, headers=FHIR_JSON)
        assert response.status_code == 200, response.text
        yield client
    app.state.engine.dispose()


def _plan(conn: Connection, query: str) -> Plan:
    res_type, _, text = query.partition("?")
    parsed = parse_query(res_type, parse_qsl(text), strict=True)
    return search_plan(conn, res_type, parsed.expression(), None)


def _source_table(found: Plan) -> str:
    rows: Any = found.source.rows
    return str(rows.element.name)  # an alias of the table


def _explain(conn: Connection, query: Any) -> str:
    compiled = query.compile(conn, compile_kwargs={"render_postcompile": True})
    values = [compiled.params[k] for k in compiled.positiontup or ()]
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", tuple(
        float(v) if isinstance(v, Decimal) else v for v in values))
    return "\n".join(str(row[3]) for row in rows)


def _engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


def test_a_search_starts_from_the_criterion_with_fewer_rows(sqlite_client: TestClient) -> None:
    with _engine(sqlite_client).connect() as conn:
        # 60 heart rates, 3 results on day 10: start from the day.
        day = FIRST_DAY + timedelta(days=10)
        assert _source_table(_plan(conn, f"Observation?code={LOINC}|{HEART_RATE}"
                                         f"&date={day}")) == "idx_date"
        # 3 glucose results, 60 days of dates in the range: start from the code.
        assert _source_table(_plan(conn, f"Observation?code={LOINC}|{GLUCOSE}"
                                         f"&date=ge{FIRST_DAY}")) == "idx_token"
        # An id is always the place to start.
        assert _source_table(_plan(conn, "Observation?_id=o5&code=" + HEART_RATE)) == "resource"
        # :not only filters: the search starts from the other criterion.
        assert _source_table(_plan(conn, f"Observation?code:not={GLUCOSE}"
                                         f"&date={day}")) == "idx_date"


def test_one_statement_with_ids_bound_at_run_time_serves_any_ids(
        sqlite_client: TestClient) -> None:
    """The access checks build a rule's SQL once and bind the ids each time they run it."""
    rule = parse_query("Observation", [("code", HEART_RATE)], strict=True).expression()
    statement = matching_pks(All((Ids((), "ids"), rule)), "Observation", Names(Binding(None)))
    with _engine(sqlite_client).connect() as conn:
        started = _source_table(search_plan(conn, "Observation", All((Ids((), "ids"), rule)),
                                            None))
        found = {ids: set(conn.scalars(select(resource.c.res_id).where(
            resource.c.pk.in_(statement)), {"ids": list(ids)}))
            for ids in (("o1", "o2"), ("o3", "o100"), ("o100",), ())}
    assert found == {("o1", "o2"): {"o1", "o2"}, ("o3", "o100"): {"o3"}, ("o100",): set(),
                     (): set()}
    assert started == "resource"  # from the ids, whatever they are


def test_the_results_do_not_depend_on_where_the_search_starts(
        sqlite_client: TestClient) -> None:
    day = FIRST_DAY + timedelta(days=10)
    for query, expected in [
        (f"Observation?code={HEART_RATE}&date={day}", {"o10"}),
        (f"Observation?date={day}&code={HEART_RATE}", {"o10"}),
        (f"Observation?code={GLUCOSE}&date=ge{FIRST_DAY}", {"o100", "o101", "o102"}),
        (f"Observation?code:not={GLUCOSE}&date={day}", {"o10"}),
        (f"Observation?subject=Patient/p2&code={HEART_RATE},{GLUCOSE}&date=le{day}",
         {"o100", "o101", "o102"}),
    ]:
        bundle = sqlite_client.get(f"/fhir/{query}").json()
        assert {e["resource"]["id"] for e in bundle.get("entry", [])} == expected, query


def test_a_page_in_pk_order_is_read_off_the_token_index(sqlite_client: TestClient) -> None:
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, f"Observation?code={LOINC}|{HEART_RATE}")
        page = found.select().order_by(found.pk).limit(21)
        explained = _explain(conn, page)
    assert "ix_idx_token_sys" in explained
    assert "TEMP B-TREE" not in explained  # no sorting: the index is in pk order


def test_a_has_with_many_sources_walks_its_targets_in_pk_order(
        sqlite_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """`_has` gathers all its targets before it knows the first; when its sources are many
    (DENSE_HAS) and the page is in pk order, the resources are walked and each checked."""
    query = f"Patient?_has:Observation:subject:code={LOINC}|{HEART_RATE}"
    with _engine(sqlite_client).connect() as conn:
        gathered = _plan(conn, query)
        monkeypatch.setattr(plan_module, "DENSE_HAS", 60)  # p1 has 60 heart rates
        walked = _plan(conn, query)
        res_type, _, text = query.partition("?")
        expression = parse_query(res_type, parse_qsl(text), strict=True).expression()
        sorted_plan = search_plan(conn, res_type, expression, None, pk_order=False)
        monkeypatch.setattr(plan_module, "DENSE_HAS", 61)
        sparse = _plan(conn, query)
    assert not gathered.filters  # from the targets of the heart rates
    assert len(walked.filters) == 1  # every Patient, in pk order, checked for one
    assert not sorted_plan.filters and not sparse.filters
    for url in (query, f"{query}&_sort=-_id", f"{query}&_count=1"):
        monkeypatch.setattr(plan_module, "DENSE_HAS", 60)
        walking = sqlite_client.get(f"/fhir/{url}").json()
        monkeypatch.setattr(plan_module, "DENSE_HAS", 2000)
        gathering = sqlite_client.get(f"/fhir/{url}").json()
        assert [e["resource"]["id"] for e in walking["entry"]] == ["p1"], url
        assert walking["entry"] == gathering["entry"], url


def test_only_plans_whose_joins_are_fixed_keep_generic_plans(
        sqlite_client: TestClient) -> None:
    """PostgreSQL keeps a pinned statement's generic plan (search.statements): only for
    plans from one index lookup whose other criteria probe the candidate's own rows."""
    day = FIRST_DAY + timedelta(days=10)
    cases = {
        f"Observation?code={LOINC}|{HEART_RATE}": True,
        f"Observation?code={HEART_RATE}&date=ge{FIRST_DAY}&subject=Patient/p1": True,
        f"Observation?code={HEART_RATE}&date={day}&subject=Patient/p1": False,  # the day's
        f"Observation?code:not={GLUCOSE}&subject=Patient/p1": True,
        "Observation?_id=o1,o2": True,
        "Observation": True,
        f"Observation?date={day}": False,  # a range: how best to read it depends on its width
        "Patient?name=Zh": False,
        f"Patient?_has:Observation:subject:code={HEART_RATE}": False,  # a set of targets
        "Observation?subject:Patient._id=p1": False,  # a chain's joins
        f"Observation?code={HEART_RATE}&subject:Patient._id=p1": False,  # as a filter too
        f"Observation?code={HEART_RATE},{GLUCOSE}&subject:Patient._id=p1": False,
    }
    with _engine(sqlite_client).connect() as conn:
        for url, expected in cases.items():
            res_type, _, text = url.partition("?")
            expression = parse_query(res_type, parse_qsl(text), strict=True).expression()
            bound = query_module._bind(conn, [(res_type, expression)], None, pk_order=True)
            assert bound.pinned is expected, url


def test_other_criteria_look_up_the_candidate_own_rows(sqlite_client: TestClient) -> None:
    """Each candidate's dates are found by its resource_pk, not by reading the date index of
    every Observation (which is what SQLite chooses by itself without statistics)."""
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, f"Observation?subject=Patient/p2&date=ge{FIRST_DAY}"
                            f"&date=lt{FIRST_DAY + timedelta(days=30)}")
        explained = _explain(conn, found.select())
    assert _source_table(found) == "idx_reference"
    assert "ix_idx_date_resource" in explained
    assert "ix_idx_date_low" not in explained and "ix_idx_date_high" not in explained


def test_a_system_alone_is_checked_on_the_candidate_own_rows(
        sqlite_client: TestClient) -> None:
    """`code=system|` as a filter looks the candidate's token rows up by its resource_pk, not
    every row of the system (the index that leads with the system's hash has the code's
    next, not the pk)."""
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, f"Observation?subject=Patient/p2&code={LOINC}|")
        explained = _explain(conn, found.select())
    tokens = [line for line in explained.splitlines() if line.startswith("SEARCH t")]
    assert tokens and all("resource_pk=?" in line for line in tokens), explained
    bundle = sqlite_client.get(f"/fhir/Observation?subject=Patient/p2&code={LOINC}|").json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"o100", "o101", "o102"}


def test_a_composite_joins_its_components_by_the_element(sqlite_client: TestClient) -> None:
    """Its first component's rows are looked up by their index, the others by the
    candidate's resource_pk (then `grp`); as a filter, all by resource_pk."""
    entries = [{"resource": {
        "resourceType": "Observation", "id": f"bp{n}", "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "component": [{"code": {"coding": [{"system": LOINC, "code": code}]},
                       "valueQuantity": {"value": value, "system": UCUM, "code": "mm[Hg]"}}
                      for code, value in (("8480-6", 100 + n), ("8462-4", 60 + n))]},
        "request": {"method": "PUT", "url": f"Observation/bp{n}"}} for n in range(5)]
    response = sqlite_client.post("/fhir", json={"resourceType": "Bundle", "type": "batch",
                                                 "entry": entries}, headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    with _engine(sqlite_client).connect() as conn:
        started = _plan(conn, "Observation?component-code-value-quantity=8480-6$gt102")
        as_source = _explain(conn, started.select())
        filtered = _plan(conn, f"Observation?code={LOINC}|85354-9"
                               "&component-code-value-quantity=8480-6$gt102")
        as_filter = _explain(conn, filtered.select())
    assert "ix_idx_token_code" in as_source and "ix_idx_quantity_resource" in as_source
    assert "ix_idx_quantity_lookup" not in as_source
    assert _source_table(filtered) == "idx_token"
    probes = [line for line in as_filter.splitlines()[1:] if line.startswith("SEARCH")]
    assert len(probes) == 2 and all("resource_pk=?" in line for line in probes), as_filter
    bundle = sqlite_client.get("/fhir/Observation?component-code-value-quantity="
                               "8480-6%24gt102").json()
    assert {e["resource"]["id"] for e in bundle["entry"]} == {"bp3", "bp4"}


def test_a_type_without_criteria_is_paged_by_its_pk_index(sqlite_client: TestClient) -> None:
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, "Observation?")
        explained = _explain(conn, found.select().order_by(found.pk).limit(21))
    assert "ix_resource_type_pk" in explained and "TEMP B-TREE" not in explained


def test_a_few_ids_are_looked_up_each_not_found_walking_the_type(
        sqlite_client: TestClient) -> None:
    """`_id=a,b,c` in pk order: without a hint SQLite walks the type's pk index to avoid
    sorting three rows (214 ms at 659,000 Observations)."""
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, "Observation?_id=o1,o2,nothing")
        explained = _explain(conn, found.select().order_by(found.pk_order).limit(21))
    assert "uq_resource_type_id (res_type=? AND res_id=?)" in explained, explained
    assert "ix_resource_type_pk" not in explained
    bundle = sqlite_client.get("/fhir/Observation?_id=o2,o1,nothing").json()
    assert [e["resource"]["id"] for e in bundle["entry"]] == ["o1", "o2"]


def test_a_compartment_is_counted_as_a_source(sqlite_client: TestClient) -> None:
    """Patient/p2/Observation?code=heart-rate starts from the patient's few Observations
    (by subject or performer, both counted), not from every heart rate (at a million
    resources: 346 ms against 1 ms)."""
    with _engine(sqlite_client).connect() as conn:
        criteria = parse_query("Observation", [("code", f"{LOINC}|{HEART_RATE}")],
                               strict=True).expression()
        compartment = query_module.compartment_expression("Patient", "p2", "Observation")
        found = search_plan(conn, "Observation", All((compartment, criteria)), None)
    assert found.source.unique and len(found.filters) == 1  # the union; the code filters
    for url, expected in ((f"Patient/p2/Observation?code={LOINC}|{GLUCOSE}", 3),
                          (f"Patient/p2/Observation?code={LOINC}|{HEART_RATE}", 0),
                          (f"Patient/p1/Observation?code={LOINC}|{HEART_RATE}&_count=100", 60)):
        assert len(sqlite_client.get(f"/fhir/{url}").json().get("entry", [])) == expected, url


def test_a_sorted_walk_reads_the_sort_index_in_its_order(sqlite_client: TestClient) -> None:
    """search.walk: the index of the sort parameter in the key's order (a date's highest
    moment down), each candidate probed by its resource_pk, no sort of all the matches; the
    boundary read from the index alone."""
    from yilian.fhir.search.sorting import parse_sort
    from yilian.fhir.search.walk import Walk

    expression = parse_query("Observation", [("code", f"{LOINC}|{HEART_RATE}")],
                             strict=True).expression()
    (key,) = parse_sort("Observation", ["-date"])
    with _engine(sqlite_client).connect() as conn:
        walk = Walk(key, "Observation", Names(Binding(None)), after_cursor=True)
        page = _explain(conn, walk.page(expression, bounded=True).limit(21))
        boundary = _explain(conn, Walk(key, "Observation", Names(Binding(None)),
                                       after_cursor=True).boundary())
    assert page.startswith("SEARCH d0 USING INDEX ix_idx_date_high (res_type=? AND param=?"), page
    assert "TEMP B-TREE FOR ORDER BY" not in page  # only for the pks among equal dates
    assert all("resource_pk=?" in line for line in page.splitlines()[1:]
               if line.startswith("SEARCH")), page
    assert boundary.startswith("SEARCH d0 USING COVERING INDEX ix_idx_date_high"), boundary


def test_an_exact_string_is_looked_up_by_its_search_form(client: TestClient) -> None:
    """`family:exact=Cao` is an index lookup by the search form (value_norm) it implies,
    then the exact value; a value as long as the column (stored cut) by the value alone."""
    long = "Ábc" + "d" * 300
    put_all(client, [{"resourceType": "Patient", "id": f"x{n}", "name": [{"family": family}]}
                     for n, family in enumerate(("Cao", "cao", "CAO", "Çao", long, long[:200]))])

    def found(query: str) -> list[str]:
        bundle = client.get(f"/fhir/{query}").json()
        return sorted(e["resource"]["id"] for e in bundle.get("entry", []))

    assert found("Patient?family:exact=Cao") == ["x0"]
    assert found("Patient?family:exact=Çao") == ["x3"]
    assert found("Patient?family:exact=cao,CAO") == ["x1", "x2"]
    assert found("Patient?family=cao") == ["x0", "x1", "x2", "x3"]
    assert found(f"Patient?family:exact={long[:200]}") == ["x4", "x5"]  # both stored cut
    assert found(f"Patient?family:exact={long[:199]}") == []
    if client.app.state.engine.dialect.name == "sqlite":  # type: ignore[attr-defined]
        with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
            explained = _explain(conn, _plan(conn, "Patient?family:exact=Cao").select())
        assert "ix_idx_string_lookup (res_type=? AND param=? AND value_norm=?)" in explained


def test_the_bound_after_a_prefix() -> None:
    assert after_prefix("zha") == "zhb"
    assert after_prefix("张") == chr(ord("张") + 1)
    assert after_prefix("a" + chr(0x10FFFF)) == "b"
    assert after_prefix(chr(0x10FFFF)) is None
    assert after_prefix("") is None
    assert after_prefix("a" + chr(0xD7FF)) == "a" + chr(0xE000)  # past the surrogates


def test_prefixes_are_ranges_that_keep_case_and_script(client: TestClient) -> None:
    """On both databases: uri:below is case-sensitive (SQLite's LIKE is not), and a string
    prefix in Chinese characters finds its names."""
    entries = [{"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
               for r in (
                   {"resourceType": "ValueSet", "status": "active",
                    "url": "http://example.org/Fhir/ValueSet/upper"},
                   {"resourceType": "ValueSet", "status": "active",
                    "url": "http://example.org/fhir/ValueSet/lower"},
                   {"resourceType": "Patient", "name": [{"family": "张", "given": ["伟"]}]},
                   {"resourceType": "Patient", "name": [{"family": "章", "given": ["伟"]}]},
                   {"resourceType": "Patient", "name": [{"family": "张三丰"}]},
               )]
    response = client.post("/fhir", json={"resourceType": "Bundle", "type": "transaction",
                                          "entry": entries}, headers=FHIR_JSON)
    assert response.status_code == 200, response.text

    def found(query: str) -> list[str]:
        bundle = client.get(f"/fhir/{query}").json()
        resources = [e["resource"] for e in bundle.get("entry", [])]
        return sorted(r.get("url") or r["name"][0]["family"] for r in resources)

    assert found("ValueSet?url:below=http://example.org/fhir") == [
        "http://example.org/fhir/ValueSet/lower"]
    assert found("Patient?family=张") == ["张", "张三丰"]
    assert found("Patient?family:exact=张") == ["张"]
    assert found("Patient?name=章") == ["章"]


def test_a_bare_id_of_a_many_typed_reference_is_looked_up_by_each_type(
        sqlite_client: TestClient) -> None:
    """`subject=p1` leaves the type open (Patient, Group, Device, Location): each type is
    a lookup in the reference index, which leads with the type, not a scan of the rows."""
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, "Observation?subject=p1")
        explained = _explain(conn, found.select().order_by(found.pk).limit(21))
    assert "ix_idx_reference_target (target_type=? AND target_id=?" in explained, explained
    assert "SCAN" not in explained.replace("SCAN CONSTANT ROW", ""), explained


def test_an_identifier_of_a_type_is_looked_up_by_its_value(sqlite_client: TestClient) -> None:
    """`identifier:of-type=system|MR|12345`: the value is the row's code, whose hash leads the
    code index; the type is then checked on the rows found, not every identifier read."""
    with _engine(sqlite_client).connect() as conn:
        found = _plan(conn, "Patient?identifier:of-type="
                            "http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345")
        explained = _explain(conn, found.select().order_by(found.pk).limit(21))
    assert "ix_idx_token_code (hash_code=?" in explained, explained
    assert "SCAN" not in explained.replace("SCAN CONSTANT ROW", ""), explained


def test_a_reference_or_token_present_is_checked_on_the_type_in_pk_order(
        sqlite_client: TestClient) -> None:
    """`subject:missing=false`: every row of the parameter, which the reference and token
    tables could only read through. The type's resources are walked in pk order instead,
    each probed, so a page ends after a few when most have a value."""
    with _engine(sqlite_client).connect() as conn:
        for query in ("Observation?subject:missing=false", "Observation?code:missing=false"):
            found = _plan(conn, query)
            assert _source_table(found) == "resource", query
            explained = _explain(conn, found.select().order_by(found.pk).limit(21))
            assert "SCAN" not in explained.replace("SCAN CONSTANT ROW", ""), explained
