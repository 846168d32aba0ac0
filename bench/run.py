"""One database's half of the bench: our server, then the ceilings, then the result lines."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.auth import SERVER_ENV, bench_authorization, require_access_control
from bench.ceiling_app import DATA_ENV, write_data
from bench.databases import analyze, database_pids, drop_database, fresh_database
from bench.indexing import measure_indexing
from bench.ingest import Ingestion, ingest_in_parallel, ingest_over_http
from bench.loadgen import LoadPlan, LoadResult, run_load
from bench.machine import QuietLog
from bench.procs import Server, bench_app_argv, start_server, yilian_argv
from bench.report import Half, Line, say
from bench.rows import BundleRows, ReadBack, read_back, time_driver_inserts, time_inserts
from bench.synthea import BundleFile

INGEST_GOAL_SQLITE = 2_000.0  # resources/s
READ_GOAL = 0.5  # of the ceiling


@dataclass(frozen=True)
class Options:
    bundles: list[BundleFile]
    warmup: float
    duration: float
    processes: int
    connections: int
    quiet: QuietLog


def _plan(
    options: Options, port: int, kind: str, authorization: str, paths: tuple[str, ...] = (),
    *, serial: bool = False
) -> LoadPlan:
    """The load of a phase; `serial`: one process, one connection (latency without queueing).
    Every request carries `authorization` (the ceiling app gets it too: the same bytes)."""
    return LoadPlan(
        port=port,
        kind=kind,
        paths=paths,
        processes=1 if serial else options.processes,
        connections=1 if serial else options.connections,
        warmup=options.warmup,
        duration=options.duration,
        authorization=authorization,
    )


@dataclass
class Loads:
    reads: LoadResult
    serial_reads: LoadResult
    creates: LoadResult

    def failures(self, label: str) -> list[str]:
        return (_failures(f"{label} read", self.reads)
                + _failures(f"{label} read, 1 connection", self.serial_reads)
                + _failures(f"{label} create", self.creates))


def _run_loads(options: Options, label: str, server: Server, paths: tuple[str, ...],
               authorization: str, database: Callable[[], list[int]] | None = None) -> Loads:
    """The three loads; `database`: the database server's processes, whose CPU is sampled
    too (ours on PostgreSQL; the ceilings use none)."""
    port, pid = server.port, server.proc.pid
    phase = f"{options.warmup:g}+{options.duration:g} s"
    say(f"{label}: read by id, {options.processes}x{options.connections} connections, {phase}")
    options.quiet.check(f"{label} read")
    reads = run_load(_plan(options, port, "read", authorization, paths), pid, database)
    say(f"{label}: read by id, 1 connection, {phase}")
    options.quiet.check(f"{label} read, 1 connection")
    serial = run_load(_plan(options, port, "read", authorization, paths, serial=True), pid,
                      database)
    say(f"{label}: create Patient, {phase}")
    options.quiet.check(f"{label} create")
    creates = run_load(_plan(options, port, "create", authorization), pid, database)
    return Loads(reads, serial, creates)


def _same_bytes(base: str, reads: dict[str, tuple[bytes, str, str]], authorization: str,
                sample: int = 25) -> int:
    """How many of a sample of reads did not answer exactly the bytes the ceiling will send."""
    keys = list(reads)[:: max(1, len(reads) // sample)]
    different = 0
    headers = {"Accept": "application/fhir+json", "Authorization": authorization}
    with httpx.Client(base_url=base, timeout=30.0, headers=headers) as client:
        for key in keys:
            response = client.get(f"/fhir/{key}")
            if response.status_code != 200 or response.content != reads[key][0]:
                different += 1
    return different


def _load_lines(
    database: str, what: str, ours: LoadResult, ceiling: LoadResult, goal: float | None
) -> list[Line]:
    """Answers per second (the goal on its ratio), p50, p95, and the server's CPU time per
    answer: where answers per second also depend on how much of the two cores the load
    processes leave the server, this says what each answer costs it; on PostgreSQL, the
    database server's CPU time per answer too (the ceiling spends none)."""
    return [
        Line(database, what, "requests/s", ours.rate, ceiling.rate, goal=goal,
             goal_on_ratio=goal is not None),
        Line(database, f"{what} p50", "ms", ours.percentile_ms(0.50),
             ceiling.percentile_ms(0.50), higher_is_better=False),
        Line(database, f"{what} p95", "ms", ours.percentile_ms(0.95),
             ceiling.percentile_ms(0.95), higher_is_better=False),
        Line(database, f"{what}, server CPU per answer", "µs", ours.server_cpu_per_answer_us,
             ceiling.server_cpu_per_answer_us, higher_is_better=False),
        *([Line(database, f"{what}, database server CPU per answer", "µs",
                ours.database_cpu_per_answer_us, higher_is_better=False)]
          if ours.database_cpu_per_answer_us is not None else []),
    ]


def _failures(label: str, result: LoadResult) -> list[str]:
    failed = result.failures()
    if not failed:
        return []
    return [f"{label}: {failed} failed answers of {result.requests + result.errors} "
            f"(statuses {dict(result.statuses)}, connection errors {result.errors})"]


@dataclass
class Ours:
    ingestion: Ingestion
    back: ReadBack
    loads: Loads
    peak: int | None  # KiB
    notes: list[str]
    authorization: str  # the bench user's token, sent to the ceiling app too
    unaudited_reads: LoadResult  # reads by id from the same database, audit trail off
    store_reads: LoadResult  # the same reads by a bare app that only reads the database


def _ours(kind: str, options: Options, workdir: Path, url: str) -> Ours:
    notes: list[str] = []
    authorization = bench_authorization(url)
    say(f"{kind}: starting yilian serve (access control on, an admin token on every request)")
    server = start_server(f"yilian-{kind}", yilian_argv(url), log_dir=workdir, env=SERVER_ENV)
    try:
        require_access_control(server.base, authorization)
        total = sum(b.entries for b in options.bundles)
        say(f"{kind}: ingesting {len(options.bundles)} bundles ({total:,} resources) over HTTP")
        options.quiet.check(f"{kind} ingest")
        ingestion = ingest_over_http(server.base, options.bundles, authorization)
        say(f"{kind}: {ingestion.rate:,.0f} resources/s; reading the rows back")
        back = read_back(url, ingestion.keys)
        analyze(url)
        different = _same_bytes(server.base, back.reads, authorization)
        if different:
            notes.append(f"{kind}: {different} sampled reads differ from the stored bytes "
                         "the ceiling serves")
        paths = tuple(f"/fhir/{key}" for key in back.reads)
        loads = _run_loads(options, kind, server, paths, authorization, database_pids(kind))
        peak = server.peak_rss_kib()
    finally:
        server.stop()
    notes += loads.failures(f"{kind} (yilian)")
    unaudited = _unaudited_reads(kind, options, workdir, url, paths, authorization)
    notes += _failures(f"{kind} (yilian, audit trail off) read", unaudited)
    store_reads = _store_reads(kind, options, workdir, url, paths, authorization)
    notes += _failures(f"{kind} (the database alone) read", store_reads)
    return Ours(ingestion, back, loads, peak, notes, authorization, unaudited, store_reads)


def _unaudited_reads(kind: str, options: Options, workdir: Path, url: str,
                     paths: tuple[str, ...], authorization: str) -> LoadResult:
    """The same reads from the same database, served with the audit trail off: what an
    audit entry per read costs (a diagnostic; the audit trail is not optional)."""
    return _reads_served_by("bench.unaudited_app:app", "audit trail off", kind, options,
                            workdir, {**SERVER_ENV, "YILIAN_DATABASE_URL": url}, paths,
                            authorization)


def _store_reads(kind: str, options: Options, workdir: Path, url: str,
                 paths: tuple[str, ...], authorization: str) -> LoadResult:
    """The same reads from the same database by the ceiling's stack with nothing but the
    store's reader (bench/store_read_app.py): what fetching the bytes from this database
    costs on this machine (a diagnostic)."""
    return _reads_served_by("bench.store_read_app:app", "a bare app reading the database",
                            kind, options, workdir, {"YILIAN_DATABASE_URL": url}, paths,
                            authorization)


def _reads_served_by(app: str, what: str, kind: str, options: Options, workdir: Path,
                     env: dict[str, str], paths: tuple[str, ...], authorization: str
                     ) -> LoadResult:
    """The read load once more, against another app of the bench on the same database."""
    say(f"{kind}: read by id again, {what} (diagnostic)")
    name = app.partition(":")[0].rpartition(".")[2]
    server = start_server(f"{name}-{kind}", bench_app_argv(app), log_dir=workdir, env=env)
    try:
        options.quiet.check(f"{kind} read, {what}")
        return run_load(_plan(options, server.port, "read", authorization, paths),
                        server.proc.pid, database_pids(kind))
    finally:
        server.stop()


SERVER_PROCESSES = 2  # one per core
# Clients posting at once, each on its own keep-alive connection. A worker keeps the
# connections it accepted, so with one client per worker both may land on the same one;
# two per worker keep both cores busy.
PARALLEL_CLIENTS = 4


def _parallel_ingestion(kind: str, options: Options, workdir: Path) -> Ingestion:
    """The same Bundles into a fresh database, served by 2 processes and posted by 2 clients
    at once: what the machine's two cores do together."""
    url = fresh_database(kind, "parallel", workdir)
    try:
        authorization = bench_authorization(url)
        say(f"{kind}: ingesting again, {SERVER_PROCESSES} server processes x "
            f"{PARALLEL_CLIENTS} clients")
        server = start_server(f"yilian-{kind}-parallel",
                              yilian_argv(url, workers=SERVER_PROCESSES),
                              log_dir=workdir, env=SERVER_ENV)
        try:
            options.quiet.check(f"{kind} parallel ingest")
            return ingest_in_parallel(server.base, options.bundles, PARALLEL_CLIENTS,
                                      authorization)
        finally:
            server.stop()
    finally:
        drop_database(kind, "parallel", workdir)


def _ceiling_http(kind: str, options: Options, workdir: Path, back: ReadBack,
                  authorization: str) -> Loads:
    data = workdir / f"ceiling-{kind}.json"
    write_data(data, back.reads)
    say(f"{kind}: starting the ceiling app")
    server = start_server(f"ceiling-{kind}", bench_app_argv(), log_dir=workdir,
                          env={DATA_ENV: str(data)})
    try:
        paths = tuple(f"/fhir/{key}" for key in back.reads)
        return _run_loads(options, f"{kind} ceiling", server, paths, authorization)
    finally:
        server.stop()
        data.unlink(missing_ok=True)


def _timed_inserts(
    kind: str,
    options: Options,
    workdir: Path,
    back: ReadBack,
    timer: Callable[[str, list[BundleRows]], float],
) -> float:
    url = fresh_database(kind, "ceiling", workdir)
    try:
        options.quiet.check(f"{kind} ceiling rows ({timer.__name__})")
        return timer(url, back.bundles)
    finally:
        drop_database(kind, "ceiling", workdir)


def run_database(kind: str, options: Options, workdir: Path) -> Half:
    url = fresh_database(kind, "server", workdir)
    try:
        found = _ours(kind, options, workdir, url)
    finally:
        drop_database(kind, "server", workdir)
    ingestion, back, ours, peak, notes = (found.ingestion, found.back, found.loads, found.peak,
                                          found.notes)
    parallel = _parallel_ingestion(kind, options, workdir)
    ceiling = _ceiling_http(kind, options, workdir, back, found.authorization)
    notes += ceiling.failures(f"{kind} (ceiling)")
    say(f"{kind}: ceiling ingestion, the same rows by executemany")
    insert_seconds = _timed_inserts(kind, options, workdir, back, time_inserts)
    say(f"{kind}: the same rows as driver tuples (exec_driver_sql)")
    driver_seconds = _timed_inserts(kind, options, workdir, back, time_driver_inserts)
    say(f"{kind}: indexing overhead, the same bundles in process with and without indexes")
    indexing = measure_indexing(kind, options.bundles, workdir, options.quiet)
    resources = back.count("resources")
    notes.append(
        f"{kind}: ingested {ingestion.resources:,} resources in {len(ingestion.keys)} bundles "
        f"in {ingestion.seconds:.1f} s, writing {back.count('versions'):,} versions and "
        f"{back.count('index'):,} index rows ({back.index_summary()}); without the first "
        f"bundle {ingestion.rate_after_first():,.0f} resources/s; the same rows took "
        f"{insert_seconds:.2f} s by Core executemany, {driver_seconds:.2f} s as driver tuples"
    )
    notes.append(indexing.note(kind))
    lines = [
        Line(kind, "ingest (transaction Bundles)", "resources/s", ingestion.rate,
             resources / insert_seconds, goal=INGEST_GOAL_SQLITE if kind == "sqlite" else None),
        Line(kind, "ingest, vs driver-only rows", "resources/s", ingestion.rate,
             resources / driver_seconds),
        Line(kind, f"ingest, {SERVER_PROCESSES} processes x {PARALLEL_CLIENTS} clients",
             "resources/s",
             parallel.rate, resources / insert_seconds,
             goal=INGEST_GOAL_SQLITE if kind == "sqlite" else None),
        *indexing.lines(kind),
        *_load_lines(kind, "read by id", ours.reads, ceiling.reads, READ_GOAL),
        *(line for line in _load_lines(kind, "read by id, audit trail off (diagnostic)",
                                       found.unaudited_reads, ceiling.reads, None)
          if "p50" not in line.measure),
        *(line for line in _load_lines(
            kind, "read by id, a bare app reading the database (diagnostic)",
            found.store_reads, ceiling.reads, None) if "p50" not in line.measure),
        *(line for line in _load_lines(kind, "read by id, 1 connection", ours.serial_reads,
                                       ceiling.serial_reads, None) if "p95" not in line.measure),
        *_load_lines(kind, "create Patient", ours.creates, ceiling.creates, None),
        Line(kind, "server peak RSS (VmHWM)", "MiB",
             None if peak is None else peak / 1024.0),
    ]
    return Half(lines, notes)
