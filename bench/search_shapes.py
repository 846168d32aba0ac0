"""`python -m bench.search_shapes DATABASE_URL [FILTER ...]`: a survey of about 80 everyday
search shapes over HTTP against a database kept by the search benchmark (bench/README.md,
"Search shapes (diagnostic)").

The search benchmark (`python -m bench --search N`) times eight kinds of query in depth; the
searches people actually send take many more shapes (sorts, `:contains`, `_total`,
`_revinclude`, `_has`, compartments, system-wide searches...). This module sends each of those
shapes a few times to `yilian serve` on the same data, to find the slow ones: a shape that
takes hundreds of milliseconds here is a query plan worth a look. It is a diagnostic, not a
benchmark: no ceiling, no goal met or missed, nothing written to bench/results, and it is not
part of `make bench`.

The database is one the search benchmark kept (`BENCH_SEARCH_KEEP`), for example

    BENCH_SEARCH_KEEP=/work/keep .venv/bin/python -m bench --search 50000 --only sqlite
    PYTHONPATH=. .venv/bin/python -m bench.search_shapes sqlite:////work/keep/search50000.db

(PostgreSQL: schema `yilian_bench_search50000`, the URL as the `.loaded` file gives it,
`postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dyilian_bench_search50000`).
The values the URLs need (a LOINC code and its text, an ICD-10 code, an ATC code, a location,
a campus, names, identifiers) are looked up in the index tables, always the same row of the
same ordering, so that the same data gives the same URLs on either database.

Each shape is fetched 4 times in a row over one keep-alive connection, with the bench user's
token. Per shape one line: the fastest and the slowest time (request sent → whole body read),
the status, what the first page held (matches, `+N` included resources, `of T` when the
Bundle gives a total) and the URL. The fastest of 4 is the warm figure, the one to compare
with the 50 ms p95 goal of the search issue; the slowest is usually the first, with cold
caches and, on PostgreSQL, the statements not yet prepared. A shape whose first answer took
over 5 s is not fetched again. Optional FILTERs keep only the shapes whose URL contains one
of them (`_sort`, `Patient?name`...). The summary at the end lists the shapes whose fastest
time is over 50 ms.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import ColumnElement, Connection, func, make_url, select

from bench.auth import SERVER_ENV, bench_authorization, require_access_control
from bench.procs import install_signal_handlers, start_server, yilian_argv
from bench.report import say
from bench.search_bench import P95_GOAL_MS
from bench.search_data import ATC, HOSPITALS, ICD10, LOINC, RESIDENT_ID_SYSTEM, UCUM, V2_0203
from yilian.fhir.search.normalize import hash64
from yilian.fhir.store.tables import idx_reference, idx_string, idx_token
from yilian.kit.db import make_engine

TIMES = 4  # answers per shape: the first is usually cold, the fastest is the warm figure
SLOW_SECONDS = 5.0  # a first answer slower than this is not asked for again
REQUEST_TIMEOUT = 600.0
PATIENT = "pat-000123"  # the search bench's read-by-id example: exists from 124 patients on
HEADERS = {"Accept": "application/fhir+json"}


# --- the facts the URLs need -------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    patient: str
    loinc: str  # an Observation.code
    loinc_word: str  # the first word of its text ("heart", "hemoglobin"...)
    icd10: str  # a Condition.code
    atc: str  # a MedicationRequest.code
    location: str  # where Encounters happened (a ward, clinic or emergency department)
    campus: str  # a Location other Locations are partOf
    practitioner_name: str
    family: str  # a Patient's family name as written
    resident_id: str  # a Patient identifier under RESIDENT_ID_SYSTEM
    mrn: str  # a Patient identifier of type MR (the first hospital's MRN)


def _nth(conn: Connection, column: ColumnElement[Any], where: Sequence[ColumnElement[bool]],
         offset: int = 0) -> str:
    """The value at `offset` of `column` over the rows matching `where`, sorted by value.

    By value, not by pk: the pks depend on the order the loading threads' Bundles arrived
    in, the values only on the data. Byte order on both databases (PostgreSQL's own
    collation would sort otherwise than SQLite), so that both choose the same value. Rows,
    not distinct values: a frequent value is likelier to be chosen, as in real searches.
    A smaller data set than the offset assumes wraps around."""
    key = column.collate("C") if conn.dialect.name == "postgresql" else column
    query = select(column).where(*where, column.is_not(None)).order_by(key)
    value = conn.execute(query.offset(offset).limit(1)).scalar()
    if value is None and offset:
        count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
        if count:
            value = conn.execute(query.offset(offset % count).limit(1)).scalar()
    if value is None:
        raise SystemExit(f"nothing found for {query.compile(conn)}\n"
                         "is this a database of the search benchmark?")
    return str(value)


def _code(conn: Connection, res_type: str, param: str, system: str, offset: int = 0) -> str:
    """A token's code under `system`, by the (type, param, system) hash the index has."""
    t = idx_token.c
    return _nth(conn, t.code, [t.hash_sys == hash64(res_type, param, system),
                               t.res_type == res_type, t.param == param], offset)


def _code_text(conn: Connection, res_type: str, param: str, system: str, code: str) -> str:
    t = idx_token.c
    return _nth(conn, t.text, [t.hash_sys == hash64(res_type, param, system),
                               t.hash_code == hash64(res_type, param, code),
                               t.res_type == res_type, t.param == param, t.code == code])


def _target(conn: Connection, res_type: str, param: str, target_type: str,
            offset: int = 0) -> str:
    r = idx_reference.c
    return _nth(conn, r.target_id, [r.target_type == target_type, r.res_type == res_type,
                                    r.param == param], offset)


def _string(conn: Connection, res_type: str, param: str, offset: int = 0) -> str:
    s = idx_string.c
    return _nth(conn, s.value_exact, [s.res_type == res_type, s.param == param], offset)


def look_up_facts(url: str) -> Facts:
    """The values the URLs need, from the index tables (the offsets are arbitrary: any row
    of the kind, away from the first few)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            loinc = _code(conn, "Observation", "code", LOINC, 5000)
            return Facts(
                patient=PATIENT,
                loinc=loinc,
                loinc_word=_code_text(conn, "Observation", "code", LOINC, loinc).split()[0],
                icd10=_code(conn, "Condition", "code", ICD10, 777),
                atc=_code(conn, "MedicationRequest", "code", ATC, 777),
                location=_target(conn, "Encounter", "location", "Location", 999),
                campus=_target(conn, "Location", "partof", "Location"),
                practitioner_name=_string(conn, "Practitioner", "name"),
                family=_string(conn, "Patient", "family", 500),
                resident_id=_code(conn, "Patient", "identifier", RESIDENT_ID_SYSTEM, 700),
                mrn=_code(conn, "Patient", "identifier", HOSPITALS[0].mrn_system, 700),
            )
    finally:
        engine.dispose()


# --- the shapes --------------------------------------------------------------------------------


def shapes(f: Facts) -> list[str]:
    """The URLs, relative to the FHIR base, grouped by what they exercise."""
    pat, code, loinc_code = f.patient, f.loinc, f"{LOINC}|{f.loinc}"
    return [
        # Patient: a read, names (pinyin, 汉字, :contains, :exact), dates, gender
        f"Patient/{pat}",
        "Patient?name=wang",
        "Patient?name=王",
        "Patient?name:contains=ang",
        f"Patient?family:exact={f.family}",
        "Patient?birthdate=1980",
        "Patient?birthdate=ge1990-01-01&birthdate=lt1990-02-01",
        "Patient?gender=female",
        "Patient?gender=female&_total=accurate",
        # Patient: sorted over every patient
        "Patient?_sort=family",
        "Patient?_sort=-birthdate",
        # Patient: address, identifiers (with and without a system, a system alone, of-type)
        "Patient?address-city=北京市",
        "Patient?address=北京",
        f"Patient?identifier={RESIDENT_ID_SYSTEM}|{f.resident_id}",
        f"Patient?identifier={f.resident_id}",
        f"Patient?identifier={RESIDENT_ID_SYSTEM}|",
        f"Patient?identifier:of-type={V2_0203}|MR|{f.mrn}",
        # Patient: :missing, _lastUpdated (matches everything), sorted by it
        "Patient?general-practitioner:missing=true",
        "Patient?_lastUpdated=gt2020-01-01",
        "Patient?_sort=_lastUpdated",
        # Observation: one patient's
        f"Observation?patient=Patient/{pat}&_sort=-date",
        f"Observation?subject={pat}",
        f"Observation?patient={pat}&category=vital-signs",
        # Observation: by code, :text, quantity (~650,000 Observations at 50,000 patients)
        f"Observation?code={loinc_code}&_sort=-date",
        f"Observation?code={code}",
        f"Observation?code:text={f.loinc_word}",
        f"Observation?code:text={f.loinc_word}&patient={pat}",
        "Observation?value-quantity=gt100",
        f"Observation?value-quantity=gt100|{UCUM}|mm[Hg]",  # a unit of vital signs
        f"Observation?code-value-quantity={loinc_code}$gt100",
        # Observation: dates, _lastUpdated, :not, sorted over all of them
        "Observation?date=2024-03-05",
        "Observation?date=ge2024-12-30&_sort=-date",
        "Observation?_lastUpdated=gt2020-01-01",
        "Observation?status:not=final",
        "Observation?_sort=date",
        "Observation?_sort=-date&_count=100",
        # Observation: chained through the subject, the encounter's location
        "Observation?subject:Patient.name=wang",
        "Observation?subject:Patient.birthdate=1980-01-01",
        f"Observation?patient.gender=female&code={loinc_code}",
        f"Observation?encounter.location.partof=Location/{f.campus}",
        # Observation: ap, totals, _summary, _elements, ids that do not exist, a combo code
        "Observation?value-quantity=ap100",
        f"Observation?code={loinc_code}&_total=accurate",
        f"Observation?code={loinc_code}&_summary=count",
        f"Observation?patient={pat}&_elements=code,value",
        "Observation?_id=x1,x2,x3",
        f"Observation?combo-code={LOINC}|8480-6",
        # Encounter: dates, status, location, _revinclude, chained, _has
        "Encounter?date=2024-01",
        "Encounter?status=in-progress",
        f"Encounter?status=in-progress&location=Location/{f.location}",
        f"Encounter?patient={pat}&_revinclude=Observation:encounter",
        f"Encounter?practitioner.name={f.practitioner_name[:3]}",
        "Encounter?class=IMP&date=ge2024-06",
        f"Encounter?location=Location/{f.location}&_sort=-date",
        f"Encounter?_has:Observation:encounter:code={loinc_code}&status=in-progress",
        # A patient with everything pointing at it
        f"Patient?_id={pat}&_revinclude=Encounter:patient",
        f"Patient?_id={pat}&_revinclude=*",
        # Condition, MedicationRequest: by code, status, with _include
        f"Condition?code={ICD10}|{f.icd10}&_include=Condition:subject&_count=50",
        f"Condition?code={f.icd10}&_sort=-recorded-date",
        "Condition?clinical-status=active",
        f"MedicationRequest?status=active&patient={pat}",
        f"MedicationRequest?code={ATC}|{f.atc}",
        f"MedicationRequest?code={f.atc}&_include=MedicationRequest:patient"
        "&_include=MedicationRequest:encounter",
        # Patients by what points at them (_has)
        f"Patient?_has:Observation:patient:code={loinc_code}",
        f"Patient?_has:Encounter:patient:location=Location/{f.location}",
        f"Patient?_has:Condition:patient:code={f.icd10}&gender=male",
        # The patient compartment
        f"Patient/{pat}/Observation",
        f"Patient/{pat}/Observation?code={loinc_code}",
        f"Patient/{pat}/Encounter?_sort=-date",
        # Across types
        "?_type=Patient,Practitioner&name=wang",
        "?_lastUpdated=gt2020-01-01",
        f"?_id={pat}",
        # The network: practitioners, locations, organizations
        "Practitioner?name=张",
        f"Location?partof=Location/{f.campus}",
        "Organization?name=仁和",
        "Location?name:contains=病区",
        # _include:iterate, _include=*, a sort on two parameters, a large page
        f"Observation?_include=Observation:encounter&_include:iterate=Encounter:location"
        f"&patient={pat}",
        f"Observation?code={loinc_code}&_include=*&_count=10",
        "Encounter?_sort=status,-date",
        "Observation?_count=1000",
    ]


# --- timing ------------------------------------------------------------------------------------


@dataclass
class Timing:
    url: str
    times_ms: list[float]
    status: int  # the first answer's other than 200 if any, else 200
    found: str  # what the first page held, or the resource type of a read
    problem: str = ""  # the OperationOutcome's first diagnostics, for a status other than 200

    @property
    def fastest(self) -> float:
        return min(self.times_ms)

    @property
    def slowest(self) -> float:
        return max(self.times_ms)

    def line(self) -> str:
        return (f"{self.fastest:10.1f} {self.slowest:10.1f}  {self.status}  {self.found:>16}  "
                f"{self.url}")


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"text": response.text[:300]}
    return body if isinstance(body, dict) else {}


def _found(body: dict[str, Any]) -> str:
    """`20+5 of 1234`: matches on the page, + included resources, of the Bundle's total."""
    if body.get("resourceType") != "Bundle":
        return str(body.get("resourceType", "?"))
    modes = [entry.get("search", {}).get("mode", "match") for entry in body.get("entry", [])]
    included = sum(1 for mode in modes if mode != "match")
    text = str(len(modes) - included) + (f"+{included}" if included else "")
    total = body.get("total")
    return text if total is None else f"{text} of {total}"


def _diagnostics(body: dict[str, Any]) -> str:
    issues = body.get("issue") or [{}]
    first = issues[0] if isinstance(issues[0], dict) else {}
    return str(first.get("diagnostics") or first.get("details", {}).get("text")
               or body.get("text") or body)[:300]


def time_shape(client: httpx.Client, url: str) -> Timing:
    """Up to TIMES answers in a row; the first one's page is reported."""
    timing = Timing(url, [], 200, "")
    for attempt in range(TIMES):
        started = time.perf_counter()
        response = client.get(url)
        timing.times_ms.append((time.perf_counter() - started) * 1000)
        if attempt == 0:
            timing.found = _found(_body(response))
        if response.status_code != 200 and timing.status == 200:
            timing.status = response.status_code
            timing.problem = _diagnostics(_body(response))
        if timing.times_ms[0] > SLOW_SECONDS * 1000:
            break
    return timing


# --- the run -----------------------------------------------------------------------------------


def _check_database(url: str) -> None:
    """A URL of a kept SQLite file or PostgreSQL schema; a missing SQLite file is not
    created (SQLite would make an empty one), and a schema behind the migrations is brought
    up to them, as the search bench does when it reuses a kept database."""
    from yilian.kit.migrate import current_revision, head_revision, upgrade

    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise SystemExit(f"not a SQLite or PostgreSQL URL: {url}")
    if backend == "sqlite" and not Path(make_url(url).database or "").is_file():
        raise SystemExit(f"no such database file: {make_url(url).database}")
    engine = make_engine(url, pool_size=1)
    try:
        current = current_revision(engine)
        if current is None:
            raise SystemExit(f"{url} is not a Yilian database (no migration revision)")
        if current != head_revision():
            say(f"upgrading the database from revision {current} to the newest")
            upgrade(engine)
    finally:
        engine.dispose()


def _log_end(path: Path, lines: int = 20) -> str:
    """The server's log lives in a temporary folder: shown when a request fails, or lost."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def survey(url: str, urls: list[str], log_dir: Path) -> list[Timing]:
    """`yilian serve` on `url` (one worker, as in production), each URL timed, the server
    stopped whatever happens."""
    authorization = bench_authorization(url)
    server = start_server("yilian-search-shapes", yilian_argv(url), log_dir=log_dir,
                          env=SERVER_ENV)
    timings: list[Timing] = []
    try:
        require_access_control(server.base, authorization)
        with httpx.Client(base_url=f"{server.base}/fhir/", timeout=REQUEST_TIMEOUT,
                          headers={**HEADERS, "Authorization": authorization}) as client:
            metadata = client.get("metadata")
            if metadata.status_code != 200:
                raise RuntimeError(f"GET /fhir/metadata answered {metadata.status_code}")
            print(f"{'fastest ms':>10} {'slowest ms':>10}  {'':3}  {'page':>16}  URL", flush=True)
            for shape in urls:
                timing = time_shape(client, shape)
                timings.append(timing)
                print(timing.line(), flush=True)
                if timing.problem:
                    print(f"{'':23}{timing.problem}", flush=True)
    except httpx.HTTPError:
        say(f"the end of the server's log:\n{_log_end(server.log)}")
        raise
    finally:
        server.stop()
    return timings


def summary(timings: list[Timing]) -> list[str]:
    slow = sorted((t for t in timings if t.fastest > P95_GOAL_MS), key=lambda t: -t.fastest)
    failed = [t for t in timings if t.status != 200]
    lines = [f"{len(timings)} shapes; {len(slow)} with the fastest answer over "
             f"{P95_GOAL_MS:g} ms (the search issue's p95 goal); {len(failed)} not 200"]
    lines += [f"  {t.fastest:9.1f} ms  {t.url}" for t in slow]
    return lines


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.search_shapes",
        description="Time about 80 search shapes over HTTP against a database kept by "
        "`BENCH_SEARCH_KEEP=DIR python -m bench --search N` (bench/README.md).")
    parser.add_argument("database_url",
                        help="sqlite:////DIR/searchN.db, or postgresql+psycopg://...?options="
                        "-csearch_path%%3Dyilian_bench_searchN")
    parser.add_argument("filters", nargs="*", metavar="FILTER",
                        help="only the shapes whose URL contains one of these")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    install_signal_handlers()
    try:
        return _run(args)
    except KeyboardInterrupt:
        say("interrupted: the server has been stopped")
        return 130


def _run(args: argparse.Namespace) -> int:
    _check_database(args.database_url)
    facts = look_up_facts(args.database_url)
    urls = [u for u in shapes(facts) if not args.filters or any(f in u for f in args.filters)]
    if not urls:
        say(f"no shape's URL contains any of {args.filters}")
        return 2
    say(f"{len(urls)} shapes, {TIMES} answers each, on {make_url(args.database_url)}")
    say("values: " + ", ".join(f"{name} {value}" for name, value in asdict(facts).items()))
    with tempfile.TemporaryDirectory(prefix="yilian-bench-shapes-") as tmp:
        timings = survey(args.database_url, urls, Path(tmp))
    print()
    print("\n".join(summary(timings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
