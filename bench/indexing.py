"""Indexing overhead at ingestion: the same Bundles, in process, with and without search indexes.

Two fresh migrated databases of the same kind get the same transaction Bundles through
FhirRouter.handle (what POST /fhir calls, without HTTP), one router with the server's indexer
(extract_index_rows), the other with none: the only difference is extracting and writing the
search index rows. The issue's goal: (time with - time without) / time without under 50%.

Then the database's share of that overhead, its floor: the index rows the indexed database
holds, read back bundle by bundle, are written into a third fresh database through the
store's own insert (`insert_index_rows`, what a write's flush does with them), one
transaction per bundle as in the run, with no FHIR work at all: no parsing, validation,
extraction or resource rows.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, Table, func, select, text

from bench.databases import drop_database, fresh_database
from bench.machine import QuietLog
from bench.report import Line
from bench.synthea import BundleFile
from yilian.fhir.messages import FhirRequest
from yilian.fhir.router import FhirRouter, RouterOptions
from yilian.fhir.search.extract import IndexRows, extract_index_rows, warm_up
from yilian.fhir.search.rows import ROW_TYPES
from yilian.fhir.store.sql import insert_index_rows
from yilian.fhir.store.tables import INDEX_TABLES, resource
from yilian.kit import heap
from yilian.kit.db import make_engine, read_transaction, write_transaction

BASE_URL = "http://127.0.0.1:8000/fhir"
OVERHEAD_GOAL = 50.0  # percent of the time without indexes


def in_process_router(engine: Engine, *, indexed: bool = True) -> FhirRouter:
    """A router as `yilian serve` builds it (validating writes), with or without indexes."""
    return FhirRouter(engine, indexer=extract_index_rows if indexed else None,
                      options=RouterOptions(validate=True))


def post_transaction(router: FhirRouter, bundle: BundleFile) -> None:
    """What POST /fhir does with a transaction Bundle, without HTTP; raises unless 200."""
    request = FhirRequest("POST", "", body=bundle.body, content_type="application/fhir+json")
    answer = router.handle(request, BASE_URL)
    if answer.status != 200:
        raise RuntimeError(f"{bundle.name}: {answer.status} {answer.body_bytes()!r:.300}")


@dataclass(frozen=True)
class IndexingCost:
    first_untimed: bool  # the first Bundle went into both databases before the clock started
    timed_bundles: int
    timed_resources: int
    seconds_with: float  # sum of the timed Bundles' transactions, with search indexes
    seconds_without: float
    stored_resources: int  # in the indexed database, untimed first Bundle included
    index_rows: int
    seconds_replayed: float  # the timed Bundles' index rows alone, written again (the floor)
    replayed_rows: int

    @property
    def overhead_percent(self) -> float:
        return 100.0 * (self.seconds_with - self.seconds_without) / self.seconds_without

    def rate(self, seconds: float) -> float:
        return self.timed_resources / seconds

    def lines(self, kind: str) -> list[Line]:
        return [
            Line(kind, "ingest in process, with search indexes", "resources/s",
                 self.rate(self.seconds_with), self.rate(self.seconds_without)),
            Line(kind, "ingest in process, without search indexes", "resources/s",
                 self.rate(self.seconds_without)),
            Line(kind, "indexing overhead at ingestion", "%", self.overhead_percent,
                 higher_is_better=False, goal=OVERHEAD_GOAL),
            Line(kind, "  of which the database alone (index rows replayed)", "%",
                 self.database_percent, higher_is_better=False),
        ]

    @property
    def database_percent(self) -> float:
        """The index rows' own writing, as a share of the time without indexes."""
        return 100.0 * self.seconds_replayed / self.seconds_without

    def note(self, kind: str) -> str:
        per_resource = self.index_rows / self.stored_resources
        first = (" after a first bundle ingested into both databases untimed (one-time setup)"
                 if self.first_untimed else "")
        return (
            f"{kind}: indexing overhead measured in process (FhirRouter.handle, no HTTP) on "
            f"{self.timed_bundles} bundles ({self.timed_resources:,} resources){first}, each "
            "into the indexed and the unindexed database in turn (alternating which first), "
            "plans compiled and the collector settled as yilian serve does: "
            f"{self.seconds_with:.2f} s with search indexes, "
            f"{self.seconds_without:.2f} s without; {self.index_rows:,} index rows for "
            f"{self.stored_resources:,} resources, {per_resource:.1f} per resource. The timed "
            f"bundles' {self.replayed_rows:,} index rows alone, read back and written bundle by "
            "bundle into a fresh database through the store's insert, no FHIR work: "
            f"{self.seconds_replayed:.2f} s, {self.database_percent:.0f}% of the time without "
            "indexes"
        )


@contextmanager
def _server_heap() -> Iterator[None]:
    """Search plans compiled and the collector settled as `yilian serve` does at start: the
    collector's thresholds weigh on indexing's many small allocations. The bench's own
    collector settings come back afterwards."""
    thresholds = gc.get_threshold()
    warm_up()
    heap.settle()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@contextmanager
def _fresh_engine(kind: str, label: str, workdir: Path) -> Iterator[Engine]:
    url = fresh_database(kind, label, workdir)
    engine = make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(kind, label, workdir)


def _timed_post(router: FhirRouter, bundle: BundleFile) -> float:
    started = time.perf_counter()
    post_transaction(router, bundle)
    return time.perf_counter() - started


def _interleaved_seconds(
    indexed: FhirRouter, unindexed: FhirRouter, bundles: list[BundleFile]
) -> tuple[float, float, list[tuple[int, int]]]:
    """(seconds with, seconds without, each Bundle's resource pks in the indexed database as
    (after, up to)): each Bundle into both databases, alternating which goes first, so that
    whatever else the machine does weighs on both alike."""
    with_seconds = without_seconds = 0.0
    ranges: list[tuple[int, int]] = []
    last = _last_pk(indexed.engine)
    for number, bundle in enumerate(bundles):
        if number % 2:
            without_seconds += _timed_post(unindexed, bundle)
            with_seconds += _timed_post(indexed, bundle)
        else:
            with_seconds += _timed_post(indexed, bundle)
            without_seconds += _timed_post(unindexed, bundle)
        ranges.append((last, last := _last_pk(indexed.engine)))
    return with_seconds, without_seconds, ranges


def _last_pk(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        last: int | None = conn.execute(select(func.max(resource.c.pk))).scalar_one()
        return last or 0


def _index_rows_between(engine: Engine, after: int, up_to: int
                        ) -> list[tuple[int, str, IndexRows]]:
    """The index rows of the resources with pks in (after, up_to], as the extractor gave
    them to the store: (pk, type, rows by table), each row in its table's `ROW_TYPES` order."""
    found: dict[int, tuple[str, IndexRows]] = {}
    with read_transaction(engine) as conn:
        for name, table in INDEX_TABLES.items():
            columns = [table.c[field] for field in ROW_TYPES[name]._fields]
            query = (select(table.c.resource_pk, table.c.res_type, *columns)
                     .where(table.c.resource_pk > after, table.c.resource_pk <= up_to)
                     .order_by(table.c.resource_pk))
            for pk, res_type, *values in conn.execute(query):
                tables = found.setdefault(pk, (res_type, {}))[1]
                tables.setdefault(name, []).append(tuple(values))
    return [(pk, res_type, tables) for pk, (res_type, tables) in sorted(found.items())]


def _replayed_seconds(kind: str, indexed: Engine, ranges: list[tuple[int, int]],
                      workdir: Path) -> tuple[float, int]:
    """(seconds, rows): the Bundles' index rows alone, one write transaction per Bundle, into
    a fresh database through the store's own insert (read back before the clock starts)."""
    batches = [_index_rows_between(indexed, after, up_to) for after, up_to in ranges]
    rows = sum(len(table_rows) for batch in batches for _, _, tables in batch
               for table_rows in tables.values())
    seconds = 0.0
    with _fresh_engine(kind, "replayed", workdir) as target:
        _checkpoint(target)
        for batch in batches:
            started = time.perf_counter()
            with write_transaction(target) as conn:
                insert_index_rows(conn, batch)
            seconds += time.perf_counter() - started
    return seconds, rows


def _checkpoint(engine: Engine) -> None:
    """PostgreSQL: write out what the runs before left dirty, so that the replay, timed
    alone, does not pay a checkpoint of theirs (four full runs without: 42-61%). SQLite's
    fresh file has no WAL of theirs."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("CHECKPOINT"))
            conn.commit()


def _count(engine: Engine, tables: list[Table]) -> int:
    with read_transaction(engine) as conn:
        return sum(conn.execute(select(func.count()).select_from(table)).scalar_one()
                   for table in tables)


def measure_indexing(
    kind: str, bundles: list[BundleFile], workdir: Path, quiet: QuietLog
) -> IndexingCost:
    # The first Bundle pays one-time work (each engine's SQL compilation, first validations).
    warm, timed = (bundles[:1], bundles[1:]) if len(bundles) > 1 else ([], bundles)
    with (_fresh_engine(kind, "indexed", workdir) as indexed,
          _fresh_engine(kind, "unindexed", workdir) as unindexed):
        # Routers first, as the server builds its router before settling the heap: their
        # validation tables join the search plans in the permanent generation.
        routers = in_process_router(indexed), in_process_router(unindexed, indexed=False)
        with _server_heap():
            for bundle in warm:
                for router in routers:
                    post_transaction(router, bundle)
            quiet.check(f"{kind} indexing overhead")
            seconds_with, seconds_without, ranges = _interleaved_seconds(*routers, timed)
            seconds_replayed, replayed_rows = _replayed_seconds(kind, indexed, ranges,
                                                                workdir)
        index_tables = list(INDEX_TABLES.values())
        if unexpected := _count(unindexed, index_tables):
            raise RuntimeError(f"{unexpected} index rows written without an indexer")
        return IndexingCost(
            first_untimed=bool(warm),
            timed_bundles=len(timed),
            timed_resources=sum(bundle.entries for bundle in timed),
            seconds_with=seconds_with,
            seconds_without=seconds_without,
            stored_resources=_count(indexed, [resource]),
            index_rows=_count(indexed, index_tables),
            seconds_replayed=seconds_replayed,
            replayed_rows=replayed_rows,
        )
