"""`python -m bench --search N`: search latency over HTTP on a generated data set, against the
same queries written by hand in SQL (bench/README.md, "The search benchmark").

For each database:
1. a fresh migrated database and `yilian serve --workers 2`; the data set of
   bench/search_data.py (N patients, ~22 resources each) POSTed as transaction Bundles by
   4 client threads, each on its own keep-alive connection;
2. `yilian serve` again with one worker (production's default); for each of the 8 query kinds,
   a set of concrete URLs built from the data (up to 200), a sample of them checked once
   (200, entries found), then 1 load process × 1 connection sending them in random order
   (bench/loadgen.py: warm-up, then every answer's latency for `duration` seconds);
3. the server stopped, each query's hand-written SQL against the index tables, run in this
   process by the database driver (sqlite3 / psycopg), selecting the same page of ids and the
   stored JSON (resource_version.content), timed the same way: what the database alone
   costs; on the checked sample, the ids it finds must be the ids the server answered;
4. the ceiling: the same SQL served over HTTP by bench/search_ceiling_app.py (uvicorn, one
   worker, Starlette, a searchset Bundle of the rows' JSON), timed as Yilian was. The
   ratios are against it; the goals are p95 under 50 ms and at most 3 times the ceiling's.
"""

from __future__ import annotations

import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
import orjson

from bench.auth import SERVER_ENV, bench_authorization, require_access_control
from bench.databases import drop_database, fresh_database
from bench.loadgen import LoadPlan, LoadResult, run_load
from bench.machine import QuietLog
from bench.procs import bench_app_argv, start_server, yilian_argv
from bench.report import Half, Line, say
from bench.search_data import (
    CST,
    ICD10,
    LABS,
    LOINC,
    RESIDENT_ID_SYSTEM,
    VITALS,
    YEARS,
    BundleBytes,
    Sample,
    generate,
    sample_every,
)
from yilian.fhir.search.normalize import hash64
from yilian.fhir.search.sorting import decode_cursor
from yilian.fhir.store.tables import metadata
from yilian.kit.text import normalize_for_search

LOAD_WORKERS = 2  # server processes while loading: one per core
LOAD_CLIENTS = 4  # two connections per worker keep both busy (bench/README.md)
QUERIES_PER_KIND = 200
CHECKED_PER_KIND = 20  # URLs of each kind fetched once and compared with the ceiling's ids
PAGE = 20  # the server's default page size
PAGES_DEEP = 10
PAGING_STARTS = 24  # broad searches followed to page 10 (each costs 9 requests to set up)
MIN_TIMED = 30  # a slow kind is timed longer, to have at least this many answers...
MAX_SECONDS = 60.0  # ...within this many seconds
CEILING_APP = "bench.search_ceiling_app:app"
P95_GOAL_MS = 50.0  # the goals: p95 under 50 ms, at most 3x the ceiling's
RATIO_GOAL = 1 / 3
KEEP_ENV = "BENCH_SEARCH_KEEP"  # a folder: keep (and reuse) the loaded database


@dataclass(frozen=True)
class SearchOptions:
    patients: int
    warmup: float
    duration: float
    quiet: QuietLog


# --- loading -----------------------------------------------------------------------------------


@dataclass
class Loaded:
    resources: int = 0
    bundles: int = 0
    seconds: float = 0.0
    megabytes: float = 0.0

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


_HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _post(client: httpx.Client, bundle: BundleBytes) -> int:
    response = client.post("/fhir", content=bundle.body, headers=_HEADERS)
    if response.status_code != 200:
        raise RuntimeError(f"POST /fhir with Bundle {bundle.name} answered "
                           f"{response.status_code}: {response.text[:800]}")
    entries = orjson.loads(response.content).get("entry", [])
    refused = [e.get("response") for e in entries
               if not str(e.get("response", {}).get("status", "")).startswith(("200", "201"))]
    if refused or len(entries) != bundle.entries:
        raise RuntimeError(f"Bundle {bundle.name}: {bundle.entries} entries sent, "
                           f"{len(entries)} answered, refused: {refused[:3]}")
    return bundle.entries


def load_over_http(base: str, bundles: Iterator[BundleBytes], expected: int, label: str,
                   authorization: str, clients: int = LOAD_CLIENTS) -> Loaded:
    """The first Bundle (the network, which every later one points at) alone, then the rest
    shared among `clients` threads, each with one keep-alive connection. Bundles are made
    while earlier ones are posted (a bounded queue): the data set is never all in memory.
    Every POST carries `authorization` (bench/auth.py)."""
    result = Loaded()
    token = {"Authorization": authorization}
    lock = threading.Lock()
    errors: list[BaseException] = []
    work: queue.Queue[BundleBytes | None] = queue.Queue(maxsize=2 * clients)

    def done(bundle: BundleBytes, created: int) -> None:
        with lock:
            result.resources += created
            result.bundles += 1
            result.megabytes += len(bundle.body) / 1e6

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=600.0, headers=token) as client:
            while (bundle := work.get()) is not None:
                if errors:
                    continue  # drain: the producer stops at the next put
                try:
                    done(bundle, _post(client, bundle))
                except BaseException as error:  # reported by the producer
                    errors.append(error)

    started = time.perf_counter()
    with httpx.Client(base_url=base, timeout=600.0, headers=token) as client:
        first = next(bundles)
        done(first, _post(client, first))
    threads = [threading.Thread(target=worker, name=f"bench-load-{n}", daemon=True)
               for n in range(clients)]
    for thread in threads:
        thread.start()
    shown = time.perf_counter()
    try:
        for bundle in bundles:
            if errors:
                break
            work.put(bundle)
            now = time.perf_counter()
            if now - shown >= 15:
                shown = now
                rate = result.resources / (now - started)
                left = max(0, expected - result.resources) / rate if rate else 0
                say(f"{label}: {result.resources:,} of ~{expected:,} resources loaded, "
                    f"{rate:,.0f}/s, ~{left / 60:.0f} min left")
    finally:
        for _ in threads:
            work.put(None)
        for thread in threads:
            thread.join()
    if errors:
        raise RuntimeError(f"loading failed: {errors[0]}") from errors[0]
    result.seconds = time.perf_counter() - started
    return result


# --- the ceiling's database access ---------------------------------------------------------------


class Driver:
    """One connection of the database's own driver, statements with :name parameters.

    PostgreSQL, `prepared`: psycopg's default, a statement run five times is prepared and
    PostgreSQL may then keep a generic plan (one for any values); otherwise every statement
    is planned for its values. Neither is better for every query (at a million resources
    generic plans for `hash_sys = $1 AND hash_code = $2` inside an EXISTS were 8 and 100
    times slower than the plans for the values, while small queries gain by skipping the
    planning), so the bench times both and keeps the faster (`_ceilings`)."""

    def __init__(self, kind: str, url: str, *, prepared: bool = True) -> None:
        self.kind = kind
        if kind == "sqlite":
            import sqlite3

            self.conn: Any = sqlite3.connect(url.removeprefix("sqlite:///"),
                                             isolation_level=None, check_same_thread=False)
            # The server's read PRAGMAs (yilian.kit.db).
            for pragma in ("busy_timeout=30000", "cache_size=-65536", "temp_store=MEMORY"):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            self.conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True,
                                        prepare_threshold=5 if prepared else None)
        self._texts: dict[str, str] = {}

    def _sql(self, text: str) -> str:
        """SQLite: as written, `+d.low` keeps SQLite from using an index on that column (so
        that it probes by resource_pk instead). PostgreSQL: without the `+` (its planner has
        statistics), parameters as %(name)s."""
        if self.kind == "sqlite":
            return text
        converted = self._texts.get(text)
        if converted is None:
            converted = re.sub(r":(\w+)", r"%(\1)s", re.sub(r"\+(\w+\.)", r"\1", text))
            self._texts[text] = converted
        return converted

    def instant(self, moment: datetime) -> Any:
        """A bound UTC instant, as the UtcDateTime column stores it."""
        moment = moment.astimezone(UTC)
        if self.kind == "sqlite":
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
        return moment

    def rows(self, text: str, params: dict[str, Any]) -> list[Any]:
        return list(self.conn.execute(self._sql(text), params).fetchall())

    def close(self) -> None:
        self.conn.close()


_CONTENT = "JOIN resource_version v ON v.resource_pk = r.pk AND v.version = r.version"
_LIMIT = PAGE + 1  # the server reads one row more to know whether there is a next page

Found = tuple[list[str], set[str]]  # the page's ids in order, the included Type/ids


@dataclass
class Answer:
    """What a ceiling query found: "Type/id" and stored JSON of the page and the included."""

    page: list[tuple[str, bytes]]
    included: list[tuple[str, bytes]] = field(default_factory=list)

    def found(self) -> Found:
        return [key.partition("/")[2] for key, _ in self.page], {k for k, _ in self.included}


Ceiling = Callable[[Driver, dict[str, Any]], Answer]


def _page(rows: Sequence[Any], res_type: str) -> list[tuple[str, bytes]]:
    return [(f"{res_type}/{row[1]}", bytes(row[2])) for row in rows[:PAGE]]


def _with_content(page: str, order: str = "p.pk") -> str:
    """The page's pks first (`page` selects `pk`, ordered and limited), then the stored JSON
    of those rows only (as the server does): fetching the content of every match before
    sorting would cost the ceiling what no one would write."""
    return (f"SELECT r.pk, r.res_id, v.content FROM ({page}) p "
            f"JOIN resource r ON r.pk = p.pk {_CONTENT} WHERE NOT r.deleted ORDER BY {order}")


# Index rows exist only for current, live versions (yilian.fhir.search.predicates), and the
# token hashes carry the resource type: the pages below need the resource table only to join
# a reference's (type, id) to a pk.


def _read(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(
        f"SELECT r.pk, r.res_id, v.content FROM resource r {_CONTENT} "
        "WHERE r.res_type = 'Patient' AND r.res_id = :id", p), "Patient"))


_IDENTIFIER = _with_content(
    "SELECT t.resource_pk AS pk FROM idx_token t "
    "WHERE t.hash_sys = :hash_sys AND t.hash_code = :hash "
    f"ORDER BY t.resource_pk LIMIT {_LIMIT}")


def _identifier(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_IDENTIFIER, p), "Patient"))


# A prefix as an index range (LIKE uses no index on SQLite, nor on PostgreSQL without the C
# collation or text_pattern_ops); DISTINCT: two names of a patient may both match.
_FAMILY = _with_content(
    "SELECT DISTINCT s.resource_pk AS pk FROM idx_string s WHERE s.res_type = 'Patient' "
    "AND s.param = 'family' AND s.value_norm >= :low AND s.value_norm < :high "
    f"ORDER BY s.resource_pk LIMIT {_LIMIT}")


def _family(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_FAMILY, p), "Patient"))


# The patient's references first, then each one's date row by resource_pk.
_PATIENT_CODE_DATES = _with_content(
    "SELECT f.resource_pk AS pk, d.low AS low FROM idx_reference f CROSS JOIN idx_date d "
    "WHERE f.target_type = 'Patient' AND f.target_id = :patient "
    "AND f.res_type = 'Observation' AND f.param = 'patient' "
    "AND d.resource_pk = f.resource_pk AND d.res_type = 'Observation' AND d.param = 'date' "
    "AND +d.low >= :low AND +d.low < :high "
    "AND EXISTS (SELECT 1 FROM idx_token t "
    "WHERE t.hash_sys = :code_sys AND t.hash_code = :code "
    "AND t.resource_pk = f.resource_pk) "
    f"ORDER BY d.low, f.resource_pk LIMIT {_LIMIT}", order="p.low, p.pk")


def _patient_code_dates(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_PATIENT_CODE_DATES, p), "Observation"))


_LOCATION_STATUS = _with_content(
    "SELECT f.resource_pk AS pk FROM idx_reference f "
    "WHERE f.target_type = 'Location' AND f.target_id = :location "
    "AND f.res_type = 'Encounter' AND f.param = 'location' "
    "AND EXISTS (SELECT 1 FROM idx_token t WHERE t.hash_code = :status "
    "AND t.resource_pk = f.resource_pk) "
    f"ORDER BY f.resource_pk LIMIT {_LIMIT}")


def _location_status(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_LOCATION_STATUS, p), "Encounter"))


# The patient by identifier, then the references to it, in that order.
_CHAIN = _with_content(
    "SELECT f.resource_pk AS pk FROM idx_token t CROSS JOIN resource pt "
    "CROSS JOIN idx_reference f "
    "WHERE t.hash_sys = :hash_sys AND t.hash_code = :hash "
    "AND pt.pk = t.resource_pk AND NOT pt.deleted "
    "AND f.target_type = 'Patient' AND f.target_id = pt.res_id "
    "AND f.res_type = 'Encounter' AND f.param = 'patient' "
    f"ORDER BY f.resource_pk LIMIT {_LIMIT}")


def _chain(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_CHAIN, p), "Encounter"))


# The Conditions by code, then their references by resource_pk, then the Patients.
_HAS = _with_content(
    "SELECT pt.pk AS pk FROM resource pt WHERE pt.res_type = 'Patient' AND pt.res_id IN ("
    "SELECT f.target_id FROM idx_token t CROSS JOIN idx_reference f "
    "WHERE t.hash_sys = :code_sys AND t.hash_code = :code AND f.resource_pk = t.resource_pk "
    "AND f.res_type = 'Condition' AND f.param = 'patient' AND f.target_type = 'Patient') "
    f"AND NOT pt.deleted ORDER BY pt.pk LIMIT {_LIMIT}")


def _has(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_HAS, p), "Patient"))


# low <= high: the day's rows are one range of the (res_type, param, low) index.
_INCLUDE_PAGE = _with_content(
    "SELECT d.resource_pk AS pk FROM idx_date d "
    "WHERE d.res_type = 'Observation' AND d.param = 'date' "
    "AND d.low >= :low AND d.low <= :high AND d.high <= :high "
    "AND EXISTS (SELECT 1 FROM idx_token t "
    "WHERE t.hash_sys = :code_sys AND t.hash_code = :code "
    "AND t.resource_pk = d.resource_pk) "
    f"ORDER BY d.resource_pk LIMIT {_LIMIT}")


def _include(db: Driver, p: dict[str, Any]) -> Answer:
    rows = db.rows(_INCLUDE_PAGE, p)
    page = rows[:PAGE]
    if not page:
        return Answer([])
    marks = ", ".join(f":pk{i}" for i in range(len(page)))
    included = db.rows(
        f"SELECT r.pk, r.res_id, v.content, r.res_type FROM resource r {_CONTENT} "
        "WHERE (r.res_type, r.res_id) IN (SELECT f.target_type, f.target_id "
        f"FROM idx_reference f WHERE f.resource_pk IN ({marks}) "
        "AND f.res_type = 'Observation' AND f.param = 'subject') AND NOT r.deleted",
        {f"pk{i}": row[0] for i, row in enumerate(page)})
    return Answer(_page(rows, "Observation"),
                  [(f"{row[3]}/{row[1]}", bytes(row[2])) for row in included])


_PAGE_TEN = _with_content(
    "SELECT t.resource_pk AS pk FROM idx_token t "
    "WHERE t.hash_sys = :code_sys AND t.hash_code = :code AND t.resource_pk > :after "
    f"ORDER BY t.resource_pk LIMIT {_LIMIT}")
# In a year: each row's date probed by resource_pk (`+`: not by a date index's range).
_PAGE_TEN_DATED = _with_content(
    "SELECT t.resource_pk AS pk FROM idx_token t "
    "WHERE t.hash_sys = :code_sys AND t.hash_code = :code AND t.resource_pk > :after "
    "AND EXISTS (SELECT 1 FROM idx_date d WHERE d.resource_pk = t.resource_pk "
    "AND d.res_type = 'Observation' AND d.param = 'date' "
    "AND +d.low >= :low AND +d.high <= :high) "
    f"ORDER BY t.resource_pk LIMIT {_LIMIT}")


def _page_ten(db: Driver, p: dict[str, Any]) -> Answer:
    return Answer(_page(db.rows(_PAGE_TEN_DATED if "low" in p else _PAGE_TEN, p),
                        "Observation"))


# --- the queries -------------------------------------------------------------------------------


@dataclass
class Query:
    path: str  # /fhir/Type?query, percent-encoded
    params: dict[str, Any]  # the ceiling's, with instants as datetimes


@dataclass
class Kind:
    label: str
    example: str  # the shape of its URLs, for the notes
    ceiling: Ceiling
    queries: list[Query] = field(default_factory=list)


def _path(res_type: str, pairs: Sequence[tuple[str, str]]) -> str:
    return f"/fhir/{res_type}?{urlencode(pairs, quote_via=quote, safe='/')}"


def _day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=CST)


def _day_end(day: date) -> datetime:
    return _day_start(day) + timedelta(days=1) - timedelta(microseconds=1)


def _prefix_range(prefix: str) -> tuple[str, str]:
    low = normalize_for_search(prefix)
    return low, low[:-1] + chr(ord(low[-1]) + 1)


def build_kinds(sample: Sample, seed: int = 7) -> list[Kind]:
    """Every kind with up to QUERIES_PER_KIND URLs drawn from the sampled facts (paging's
    are collected from the running server by `collect_page_ten`)."""
    rng = random.Random(seed)
    patients = list(sample.patients)
    rng.shuffle(patients)
    patients = patients[:QUERIES_PER_KIND]
    kinds: list[Kind] = []

    # Not a search: what any request costs over HTTP, for scale.
    read = Kind("(for scale) read Patient by id", "Patient/id", _read)
    read.queries = [Query(f"/fhir/Patient/{facts.id}", {"id": facts.id}) for facts in patients]
    kinds.append(read)

    by_id = Kind("patient by identifier", "Patient?identifier=system|value", _identifier)
    for n, facts in enumerate(patients):
        system, value = ((RESIDENT_ID_SYSTEM, facts.resident_id) if n % 2 == 0
                         else (facts.mrn_system, facts.mrn))
        by_id.queries.append(Query(
            _path("Patient", [("identifier", f"{system}|{value}")]),
            {"hash_sys": hash64("Patient", "identifier", system),
             "hash": hash64("Patient", "identifier", value)}))
    kinds.append(by_id)

    family = Kind("patient by family name prefix", "Patient?family=Zh (or 张)", _family)
    for n, facts in enumerate(patients):
        if n % 3 == 2:
            prefix = facts.family[0]
        else:
            prefix = facts.family_pinyin[: rng.randrange(2, len(facts.family_pinyin) + 1)]
        low, high = _prefix_range(prefix)
        family.queries.append(Query(_path("Patient", [("family", prefix)]),
                                    {"low": low, "high": high}))
    kinds.append(family)

    dated = Kind("observations by patient+code+dates, sorted",
                 "Observation?patient=Patient/p&code=loinc|c&date=geD1&date=ltD2&_sort=date",
                 _patient_code_dates)
    for facts in patients:
        code, when = rng.choice(facts.observations)
        first = (when - timedelta(days=rng.randrange(30, 1500))).date()
        last = (when + timedelta(days=rng.randrange(1, 1500))).date()
        dated.queries.append(Query(
            _path("Observation", [("patient", f"Patient/{facts.id}"),
                                  ("code", f"{LOINC}|{code}"), ("date", f"ge{first}"),
                                  ("date", f"lt{last}"), ("_sort", "date")]),
            {"patient": facts.id, "code_sys": hash64("Observation", "code", LOINC),
             "code": hash64("Observation", "code", code),
             "low": _day_start(first), "high": _day_start(last)}))
    kinds.append(dated)

    located = Kind("encounters by location+status",
                   "Encounter?location=Location/l&status=finished", _location_status)
    locations = sorted(sample.encounter_locations)
    for _ in range(QUERIES_PER_KIND):
        location = rng.choice(locations)
        located.queries.append(Query(
            _path("Encounter", [("location", f"Location/{location}"), ("status", "finished")]),
            {"location": location, "status": hash64("Encounter", "status", "finished")}))
    kinds.append(located)

    chained = Kind("chained: encounters by patient.identifier",
                   "Encounter?patient.identifier=system|value", _chain)
    for n, facts in enumerate(reversed(patients)):
        system, value = ((facts.mrn_system, facts.mrn) if n % 2 == 0
                         else (RESIDENT_ID_SYSTEM, facts.resident_id))
        chained.queries.append(Query(
            _path("Encounter", [("patient.identifier", f"{system}|{value}")]),
            {"hash_sys": hash64("Patient", "identifier", system),
             "hash": hash64("Patient", "identifier", value)}))
    kinds.append(chained)

    has = Kind("_has: patients with a condition",
               "Patient?_has:Condition:patient:code=icd10|c", _has)
    codes = sorted(sample.condition_codes)
    for n in range(QUERIES_PER_KIND):
        code = codes[n % len(codes)]
        has.queries.append(Query(
            _path("Patient", [("_has:Condition:patient:code", f"{ICD10}|{code}")]),
            {"code_sys": hash64("Condition", "code", ICD10),
             "code": hash64("Condition", "code", code)}))
    kinds.append(has)

    include = Kind("_include: a day's observations + patients",
                   "Observation?code=loinc|c&date=D&_include=Observation:subject", _include)
    days = sorted(sample.observation_days.items(), key=lambda item: (-item[1], item[0]))
    for (code, day), _count in days[:QUERIES_PER_KIND]:
        include.queries.append(Query(
            _path("Observation", [("code", f"{LOINC}|{code}"), ("date", day.isoformat()),
                                  ("_include", "Observation:subject")]),
            {"code_sys": hash64("Observation", "code", LOINC),
             "code": hash64("Observation", "code", code), "low": _day_start(day),
             "high": _day_end(day)}))
    kinds.append(include)

    kinds.append(Kind(f"paging: page {PAGES_DEEP} of observations by code",
                      f"page {PAGES_DEEP} (next links) of Observation?code=loinc|c"
                      "[&date=YYYY]&_count=20", _page_ten))
    return kinds


def page_ten_starts(sample: Sample) -> list[tuple[str, int | None]]:
    """(LOINC code, year or None) of broad searches with at least 10 pages."""
    per_year: dict[tuple[str, int], int] = {}
    per_code: dict[str, int] = {}
    for (code, day), count in sample.observation_days.items():
        per_year[(code, day.year)] = per_year.get((code, day.year), 0) + count
        per_code[code] = per_code.get(code, 0) + count
    needed = PAGE * (PAGES_DEEP - 1) + 1
    codes = [m.code for m in (*VITALS, *LABS)]
    whole = [(code, None) for code in codes if per_code.get(code, 0) >= needed]
    # Then one year per code in turn (2015 for the first code, 2016 for the next...).
    yearly: list[tuple[str, int | None]] = []
    for turn in range(len(YEARS)):
        for n, code in enumerate(codes):
            year = YEARS[(n + turn) % len(YEARS)]
            if per_year.get((code, year), 0) >= needed:
                yearly.append((code, year))
    return (whole + yearly)[:PAGING_STARTS]


def collect_page_ten(base: str, kind: Kind, sample: Sample, authorization: str) -> list[str]:
    """Follow `next` links from broad searches to page 10; its URLs become the queries."""
    problems: list[str] = []
    with httpx.Client(base_url=base, timeout=120.0,
                      headers={"Accept": "application/fhir+json",
                               "Authorization": authorization}) as client:
        for code, year in page_ten_starts(sample):
            pairs = [("code", f"{LOINC}|{code}")]
            params: dict[str, Any] = {"code_sys": hash64("Observation", "code", LOINC),
                                      "code": hash64("Observation", "code", code)}
            if year is not None:
                pairs.append(("date", str(year)))
                params["low"] = datetime(year, 1, 1, tzinfo=CST)
                params["high"] = datetime(year + 1, 1, 1, tzinfo=CST) - timedelta(
                    microseconds=1)
            pairs.append(("_count", str(PAGE)))
            path = _path("Observation", pairs)
            for _ in range(PAGES_DEEP - 1):
                response = client.get(path)
                if response.status_code != 200:
                    problems.append(f"{path}: {response.status_code}")
                    break
                nexts = [link["url"] for link in response.json().get("link", [])
                         if link.get("relation") == "next"]
                if not nexts:
                    problems.append(f"{path}: no next link")
                    break
                parts = urlsplit(nexts[0])
                path = f"{parts.path}?{parts.query}"
            else:
                cursor = dict(parse_qsl(urlsplit(path).query))["_cursor"]
                kind.queries.append(Query(path, {**params,
                                                 "after": decode_cursor(cursor, 0).pk}))
    return problems


# --- running the queries -----------------------------------------------------------------------


@dataclass
class Checked:
    """What the server answered to the checked sample of a kind."""

    found: list[Found] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # URL: status
    seconds: float = 0.0  # all the checks, one after another

    def duration(self, least: float) -> float:
        """Seconds to time the kind: `least`, longer when MIN_TIMED answers need more."""
        mean = self.seconds / len(self.found) if self.found else 0.0
        return max(least, min(MIN_TIMED * mean, MAX_SECONDS))

    @property
    def empty(self) -> int:
        return sum(1 for page, _ in self.found if not page)

    def mean_entries(self) -> float:
        if not self.found:
            return 0.0
        return sum(len(page) + len(extra) for page, extra in self.found) / len(self.found)


def touch_over_http(base: str, kind: Kind, authorization: str) -> None:
    """Every URL of the kind once, untimed, before the timed load: the rows it reads come
    into the database's and the system's caches. Yilian is timed first, and the ceilings
    after it would otherwise find warm what it found cold: measured on SQLite when the OS
    kept only 1 GB of the 3 GB file cached, encounters by location p95 30-60 ms against the
    ceiling's 5-7, with the same warm times as before."""
    with _client(base, authorization) as client:
        for query in kind.queries:
            client.get(query.path)


def _client(base: str, authorization: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=300.0,
                        headers={"Accept": "application/fhir+json",
                                 "Authorization": authorization})


def check_over_http(base: str, kind: Kind, authorization: str) -> Checked:
    checked = Checked()
    with _client(base, authorization) as client:
        for query in kind.queries[:CHECKED_PER_KIND]:
            started = time.perf_counter()
            response = client.get(query.path)
            checked.seconds += time.perf_counter() - started
            if response.status_code != 200:
                checked.failed.append(f"{query.path}: {response.status_code} "
                                      f"{response.text[:200]}")
                checked.found.append(([], set()))
                continue
            page: list[str] = []
            extra: set[str] = set()
            answer = response.json()
            if answer.get("resourceType") != "Bundle":  # a read
                checked.found.append(([answer.get("id")], set()))
                continue
            for entry in answer.get("entry", []):
                mode = entry.get("search", {}).get("mode")
                resource = entry.get("resource", {})
                if mode == "match":
                    page.append(resource["id"])
                elif mode == "include":
                    extra.add(f"{resource['resourceType']}/{resource['id']}")
                else:
                    checked.failed.append(f"{query.path}: a {mode} entry "
                                          f"{orjson.dumps(resource)[:200]!r}")
            checked.found.append((page, extra))
    return checked


@dataclass
class Timed:
    latencies: list[float]  # seconds, sorted

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(fraction * (len(self.latencies) - 1)))
        return self.latencies[index] * 1000.0


def time_ceiling(db: Driver, kind: Kind, warmup: float, duration: float,
                 seed: int = 1) -> Timed:
    """The kind's queries in random order, one at a time, as the load generator sends them."""
    rng = random.Random(seed)
    params = [q.params for q in kind.queries]
    latencies: list[float] = []
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + duration
    while True:
        chosen = rng.choice(params)
        began = time.monotonic()
        if began >= stop_at:
            break
        kind.ceiling(db, chosen)
        ended = time.monotonic()
        if measure_from <= ended <= stop_at:
            latencies.append(ended - began)
    return Timed(sorted(latencies))


def _bound(db: Driver, params: dict[str, Any]) -> dict[str, Any]:
    return {k: db.instant(v) if isinstance(v, datetime) else v for k, v in params.items()}


def _sqlite_file(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def database_size(kind: str, url: str) -> float:
    """MB on disk: the SQLite file and its WAL, or the PostgreSQL schema's relations."""
    if kind == "sqlite":
        path = _sqlite_file(url)
        return sum(Path(f"{path}{s}").stat().st_size for s in ("", "-wal")
                   if Path(f"{path}{s}").exists()) / 1e6
    db = Driver(kind, url)
    try:
        row = db.rows("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c "
                      "JOIN pg_namespace n ON n.oid = c.relnamespace "
                      "WHERE n.nspname = current_schema() AND c.relkind = 'r'", {})
        return float(row[0][0] or 0) / 1e6
    finally:
        db.close()


def vacuum_analyze(kind: str, url: str) -> None:
    """PostgreSQL: what autovacuum does after a bulk load (statistics, visibility map), done
    now so that plans do not change halfway through. SQLite: nothing (Yilian runs no ANALYZE,
    so neither does the bench)."""
    if kind != "postgresql":
        return
    db = Driver(kind, url)
    try:
        db.conn.execute(f"VACUUM ANALYZE {', '.join(t.name for t in metadata.sorted_tables)}")
    finally:
        db.close()


# --- one database ------------------------------------------------------------------------------


def _storage(kind: str, patients: int, workdir: Path) -> tuple[str, Path, Path | None]:
    """(label, folder, marker): with BENCH_SEARCH_KEEP, a database kept for the next run."""
    keep = os.environ.get(KEEP_ENV)
    if not keep:
        return "search", workdir, None
    folder = Path(keep).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"search{patients}", folder, folder / f"search{patients}-{kind}.loaded"


def _load(kind: str, options: SearchOptions, workdir: Path, url: str, sample: Sample,
          authorization: str) -> Loaded:
    expected = round(options.patients * 21.8) + 341
    say(f"{kind}: loading {options.patients:,} patients (~{expected:,} resources), "
        f"yilian serve --workers {LOAD_WORKERS}, {LOAD_CLIENTS} clients")
    server = start_server(f"yilian-{kind}-search-load", yilian_argv(url, workers=LOAD_WORKERS),
                          log_dir=workdir, env=SERVER_ENV)
    try:
        require_access_control(server.base, authorization)
        options.quiet.check(f"{kind} search load")
        loaded = load_over_http(server.base, generate(options.patients, sample=sample),
                                expected, kind, authorization)
    finally:
        server.stop()
    say(f"{kind}: {loaded.resources:,} resources in {loaded.bundles:,} Bundles in "
        f"{loaded.seconds / 60:.1f} min, {loaded.rate:,.0f} resources/s")
    return loaded


def _upgrade(url: str) -> None:
    """A kept database, loaded by an earlier run, brought to the current migrations (as
    `yilian db upgrade` would) before it is served: the server expects them (the users and
    keys of access control among them)."""
    from yilian.kit.db import make_engine
    from yilian.kit.migrate import upgrade

    engine = make_engine(url, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _sample_only(patients: int) -> Sample:
    sample = Sample(every=sample_every(patients))
    for _ in generate(patients, sample=sample):
        pass
    return sample


def _ours(kind: str, options: SearchOptions, workdir: Path, url: str, kinds: list[Kind],
          sample: Sample, authorization: str
          ) -> tuple[dict[str, LoadResult], dict[str, Checked], list[str]]:
    notes: list[str] = []
    server = start_server(f"yilian-{kind}-search", yilian_argv(url), log_dir=workdir,
                          env=SERVER_ENV)
    results: dict[str, LoadResult] = {}
    checks: dict[str, Checked] = {}
    try:
        require_access_control(server.base, authorization)
        paging = kinds[-1]
        say(f"{kind}: following next links to page {PAGES_DEEP}")
        problems = collect_page_ten(server.base, paging, sample, authorization)
        if problems:
            notes.append(f"{kind}: paging: {len(problems)} broad searches did not reach page "
                         f"{PAGES_DEEP}, e.g. {problems[0]}")
        for search in kinds:
            if not search.queries:
                notes.append(f"{kind}: {search.label}: no query could be built")
                continue
            checks[search.label] = checked = check_over_http(server.base, search,
                                                             authorization)
            if checked.failed:
                notes.append(f"{kind}: {search.label}: {len(checked.failed)} failed checks, "
                             f"e.g. {checked.failed[0]}")
            if checked.empty:
                say(f"WARNING {kind}: {search.label}: {checked.empty} of "
                    f"{len(checked.found)} checked queries found nothing")
            duration = checked.duration(options.duration)
            phase = f"{options.warmup:g}+{duration:.3g} s"
            say(f"{kind}: {search.label}, {len(search.queries)} URLs, 1 connection, {phase}")
            touch_over_http(server.base, search, authorization)
            options.quiet.check(f"{kind} {search.label}")
            results[search.label] = result = run_load(LoadPlan(
                port=server.port, kind="read", paths=tuple(q.path for q in search.queries),
                processes=1, connections=1, warmup=options.warmup, duration=duration,
                authorization=authorization))
            if result.failures():
                notes.append(f"{kind}: {search.label}: {result.failures()} failed answers of "
                             f"{result.requests + result.errors} (statuses "
                             f"{dict(result.statuses)}, connection errors {result.errors})")
    finally:
        server.stop()
    return results, checks, notes


def _ceilings(kind: str, options: SearchOptions, url: str, kinds: list[Kind],
              checks: dict[str, Checked]) -> tuple[dict[str, Timed], dict[str, bool], list[str]]:
    """Each kind's hand-written SQL alone, in this process: what the database costs. On
    PostgreSQL each kind is timed prepared and planned for its values (`Driver`), and the
    one with the lower p95 is kept: (timings, prepared or not by kind, notes)."""
    if kind != "postgresql":
        timed, notes = _ceilings_as(kind, options, url, kinds, checks, prepared=True)
        return timed, {label: True for label in timed}, notes
    prepared, notes = _ceilings_as(kind, options, url, kinds, checks, prepared=True)
    planned, _ = _ceilings_as(kind, options, url, kinds, checks, prepared=False)
    best: dict[str, Timed] = {}
    modes: dict[str, bool] = {}
    for label, kept in prepared.items():
        other = planned[label]
        modes[label] = kept.percentile_ms(0.95) <= other.percentile_ms(0.95)
        best[label] = kept if modes[label] else other
        notes.append(f"{kind}: {label}: the hand-written SQL's p95 prepared (generic plans "
                     f"allowed) {kept.percentile_ms(0.95):.2f} ms, planned for its values "
                     f"{other.percentile_ms(0.95):.2f} ms; the ceiling runs it "
                     f"{'prepared' if modes[label] else 'planned for its values'}")
    return best, modes, notes


def _ceilings_as(kind: str, options: SearchOptions, url: str, kinds: list[Kind],
                 checks: dict[str, Checked], *, prepared: bool
                 ) -> tuple[dict[str, Timed], list[str]]:
    notes: list[str] = []
    timed: dict[str, Timed] = {}
    db = Driver(kind, url, prepared=prepared)
    how = "" if kind != "postgresql" else ", prepared" if prepared else ", planned per values"
    try:
        for search in kinds:
            if not search.queries:
                continue
            bound = [Query(q.path, _bound(db, q.params)) for q in search.queries]
            mine = Kind(search.label, search.example, search.ceiling, bound)
            checked = checks.get(search.label)
            mine_checked = Checked()
            if checked is not None:
                different = []
                for query, server in zip(bound, checked.found, strict=False):
                    started = time.perf_counter()
                    found = search.ceiling(db, query.params).found()
                    mine_checked.seconds += time.perf_counter() - started
                    mine_checked.found.append(found)
                    if found != server:
                        different.append(query.path)
                if different:
                    notes.append(f"{kind}: {search.label}: the ceiling's SQL found other ids "
                                 f"than the server for {len(different)} of "
                                 f"{len(checked.found)} checked URLs, e.g. {different[0]}")
            duration = mine_checked.duration(options.duration)
            say(f"{kind} ceiling: {search.label}, hand-written SQL{how}, "
                f"{options.warmup:g}+{duration:.3g} s")
            options.quiet.check(f"{kind} ceiling {search.label}")
            timed[search.label] = time_ceiling(db, mine, options.warmup, duration)
    finally:
        db.close()
    return timed, notes


def _http_ceilings(kind: str, options: SearchOptions, workdir: Path, url: str,
                   kinds: list[Kind], checks: dict[str, Checked], authorization: str,
                   prepared: dict[str, bool]) -> dict[str, LoadResult]:
    """Each kind's hand-written SQL served over HTTP (bench/search_ceiling_app.py), timed as
    Yilian was: the ceiling the ratios are taken against. It ignores the token, and gets it
    all the same, so that its requests are the same size as Yilian's."""
    from bench.search_ceiling_app import DATA_ENV, write_data  # it imports this module

    measured = [search for search in kinds if search.queries]
    db = Driver(kind, url)
    try:
        queries = [(search.ceiling.__name__, prepared.get(search.label, True),
                    [_bound(db, q.params) for q in search.queries]) for search in measured]
    finally:
        db.close()
    data = workdir / f"search-ceiling-{kind}.json"
    write_data(data, kind, url, queries)
    results: dict[str, LoadResult] = {}
    server = start_server(f"search-ceiling-{kind}", bench_app_argv(CEILING_APP),
                          log_dir=workdir, env={DATA_ENV: str(data)})
    try:
        for number, search in enumerate(measured):
            checked = checks.get(search.label)
            duration = checked.duration(options.duration) if checked else options.duration
            say(f"{kind} ceiling: {search.label}, hand-written SQL over HTTP, "
                f"{options.warmup:g}+{duration:.3g} s")
            options.quiet.check(f"{kind} HTTP ceiling {search.label}")
            results[search.label] = run_load(LoadPlan(
                port=server.port, kind="read",
                paths=tuple(f"/search/{number}/{n}" for n in range(len(search.queries))),
                processes=1, connections=1, warmup=options.warmup, duration=duration,
                authorization=authorization))
    finally:
        server.stop()
    return results


def run_search_database(kind: str, options: SearchOptions, workdir: Path) -> Half:
    label, folder, marker = _storage(kind, options.patients, workdir)
    sample = Sample(every=sample_every(options.patients))
    reuse = marker is not None and marker.exists()
    loaded: Loaded | None = None
    if reuse:
        assert marker is not None
        kept = orjson.loads(marker.read_bytes())
        url, loaded = kept.pop("url"), Loaded(**kept)
        say(f"{kind}: reusing the database loaded before ({url}); upgrading its schema, "
            "regenerating the facts")
        _upgrade(url)
        sample = _sample_only(options.patients)
    else:
        url = fresh_database(kind, label, folder)
    try:
        authorization = bench_authorization(url)
        if not reuse:
            loaded = _load(kind, options, workdir, url, sample, authorization)
            if marker is not None:
                marker.write_bytes(orjson.dumps({"url": url, **asdict(loaded)}))
        vacuum_analyze(kind, url)
        size = database_size(kind, url)
        kinds = build_kinds(sample)
        ours, checks, notes = _ours(kind, options, workdir, url, kinds, sample, authorization)
        alone, prepared, mismatches = _ceilings(kind, options, url, kinds, checks)
        notes += mismatches
        over_http = _http_ceilings(kind, options, workdir, url, kinds, checks, authorization,
                                   prepared)
    finally:
        if marker is None:
            drop_database(kind, label, folder)
    lines: list[Line] = []
    data = (f"{kind}: {options.patients:,} patients, {sample.total:,} resources "
            f"({', '.join(f'{n:,} {t}' for t, n in sample.resources.most_common())}) in "
            f"{sample.bundles:,} transaction Bundles; database {size:,.0f} MB")
    if loaded is not None:
        data += (f"; loaded{' (by an earlier run, kept)' if reuse else ''} in "
                 f"{loaded.seconds / 60:.1f} min ({loaded.megabytes:,.0f} MB of "
                 f"JSON) by {LOAD_CLIENTS} clients into yilian serve --workers {LOAD_WORKERS}")
        lines.append(Line(kind, f"search data: load {loaded.resources:,} resources",
                          "resources/s", loaded.rate))
    notes.insert(0, data)
    for search in kinds:
        result, ceiling = ours.get(search.label), over_http.get(search.label)
        sql = alone.get(search.label)
        if result is None or ceiling is None or sql is None:
            lines.append(Line(kind, search.label, "", None, note="not measured"))
            continue
        lines.append(Line(kind, f"{search.label} p50", "ms", result.percentile_ms(0.5),
                          ceiling.percentile_ms(0.5), higher_is_better=False))
        lines.append(Line(kind, f"{search.label} p95", "ms", result.percentile_ms(0.95),
                          ceiling.percentile_ms(0.95), higher_is_better=False,
                          goal=P95_GOAL_MS, ratio_goal=RATIO_GOAL))
        checked = checks[search.label]
        notes.append(
            f"{kind}: {search.label}: {len(search.queries)} URLs like {search.example}; "
            f"{result.requests:,} answers timed, {ceiling.requests:,} of the ceiling over "
            f"HTTP; the SQL alone in process p50 {sql.percentile_ms(0.5):.2f} / p95 "
            f"{sql.percentile_ms(0.95):.2f} ms ({len(sql.latencies):,} runs); "
            f"checked {len(checked.found)}: {checked.mean_entries():.1f} entries on average, "
            f"{checked.empty} empty")
    return Half(lines, notes)
