"""`python -m bench --inpatient`: the bed board, the census and admissions of the demo
network's 6,000-bed group hospital with a year of stays, over HTTP, against ceilings
measured in the same run (bench/README.md, "The inpatient benchmark").

For each database:
1. the demo network seeded once (`yilian.demo.seed.seed`, `--inpatient-days` days of stays,
   365 by default), or a database kept by an earlier run (BENCH_INPATIENT_KEEP);
2. a nurse of the group hospital (role nurse at Organization/h1) and her token, made as
   `yilian token issue` does: every request carries it;
3. `yilian serve` (one worker, access control on): the bed board of the largest campus and
   the census of the whole group (30 days by campus; a year by ward) fetched once (kept for
   the checks and the ceiling app), then timed with one connection (p50, p95), the board
   also with four (requests/s); then 8 clerks admitting (bench/inpatient_clerks.py), then
   racing for the same beds and for the same patients; the movement record checked;
4. the rows of the timed admissions read back, the database put back as it was
   (bench/inpatient_admissions.py), the same admissions through `yilian serve --workers 2`,
   checked and put back again;
5. the ceilings: the admissions' rows written again with no FHIR work (8 threads), the
   database put back; bench/inpatient_ceiling_app.py serving the board's and the census's
   bytes from memory over the same stack, timed as Yilian was; the same answers by
   hand-written SQL in this process (bench/inpatient_sql.py), checked against the server's.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.auth import SERVER_ENV, require_access_control
from bench.databases import drop_database, fresh_database
from bench.inpatient_admissions import (
    HOSPITAL,
    WARMUP_PER_CLERK,
    Plan,
    Replayed,
    Snapshot,
    StayCheck,
    check_stays,
    plan,
    read_back,
    replay,
    snapshot,
    undo,
)
from bench.inpatient_clerks import Answered, Work, run_clerks
from bench.inpatient_sql import (
    CensusQuery,
    board_differences,
    board_sql,
    census_differences,
    census_sql,
    time_in_process,
)
from bench.loadgen import LoadPlan, LoadResult, run_load
from bench.machine import QuietLog
from bench.procs import Server, bench_app_argv, start_server, yilian_argv
from bench.report import Half, Line, say
from bench.search_bench import Driver, Timed, database_size, vacuum_analyze
from yilian.kit.clock import DISPLAY_ZONE, utcnow

KEEP_ENV = "BENCH_INPATIENT_KEEP"  # a folder: keep (and reuse) the seeded database
CAMPUS = "h1-c01"  # the largest campus of the group hospital: 1,100 beds
CLERKS = 8
BOARD_CONNECTIONS = 4  # the board's throughput, besides its latency on one connection
LATENCY_GOAL_MS = 100.0  # the goals: p95 under 100 ms...
ADMISSIONS_GOAL = 100.0  # ...and at least 100 admissions/s
MIN_TIMED = 30  # a slow answer is timed longer, to have at least this many...
MAX_SECONDS = 60.0  # ...within this many seconds
CEILING_APP = "bench.inpatient_ceiling_app:app"
NURSE = "bench.nurse"
NURSE_PASSWORD = "bench-nurse-password-1"
NURSE_SCOPE = "user/*.cruds"


@dataclass(frozen=True)
class InpatientOptions:
    days: int
    warmup: float
    duration: float
    quiet: QuietLog
    clerks: int = CLERKS


@dataclass
class Seeding:
    """How the database was seeded (kept beside a kept database)."""

    resources: int = 0
    patients: int = 0
    beds: int = 0
    stays: int = 0
    open_stays: int = 0
    seconds: float = 0.0
    seeded_at: str = ""
    analyze_seconds: float = 0.0  # PostgreSQL: VACUUM ANALYZE after seeding

    @property
    def rate(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


# --- the database -------------------------------------------------------------------------


def _storage(kind: str, days: int, workdir: Path) -> tuple[str, Path, Path | None]:
    """(label, folder, marker): with BENCH_INPATIENT_KEEP, a database kept for the next run."""
    keep = os.environ.get(KEEP_ENV)
    if not keep:
        return "inpatient", workdir, None
    folder = Path(keep).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"inpatient{days}", folder, folder / f"inpatient{days}-{kind}.seeded"


def _seed(kind: str, url: str, days: int, quiet: QuietLog) -> Seeding:
    from yilian.demo.seed import seed
    from yilian.kit.db import make_engine

    shown = [time.perf_counter()]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - shown[0] >= 15 or (done and done == total):
            shown[0] = now
            say(f"{kind}: seeding {stage}: {done:,} of {total:,}")

    say(f"{kind}: seeding the demo network with {days} days of stays (yilian.demo.seed)")
    quiet.check(f"{kind} seed")
    engine = make_engine(url)
    try:
        started = time.perf_counter()
        seeded = seed(engine, days=days, progress=progress)
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    found = Seeding(seeded.resources, seeded.patients, seeded.beds, seeded.stays,
                    seeded.open_stays, seconds, utcnow().isoformat(timespec="seconds"))
    say(f"{kind}: seeded {found.resources:,} resources ({found.stays:,} stays) in "
        f"{seconds / 60:.1f} min, {found.rate:,.0f} resources/s")
    return found


def _upgrade(url: str) -> None:
    """A kept database brought to the current migrations, as `yilian db upgrade` would."""
    from yilian.kit.db import make_engine
    from yilian.kit.migrate import upgrade

    engine = make_engine(url, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def nurse_authorization(url: str) -> str:
    """`Authorization` for a nurse of the group hospital (created on first use): what a ward's
    staff send. Made with the server's own code, as `yilian token issue` does."""
    from yilian.auth.roles import Role
    from yilian.auth.service import create_user, find_user, token_for
    from yilian.auth.tokens import Keys
    from yilian.kit.db import make_engine

    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            user = find_user(conn, NURSE) or create_user(
                conn, NURSE, NURSE_PASSWORD, [(Role.NURSE, f"Organization/{HOSPITAL}")])
        issued = token_for(Keys(engine), user, NURSE_SCOPE, minutes=24 * 60)
    finally:
        engine.dispose()
    return f"Bearer {issued.token}"


# --- what is asked ------------------------------------------------------------------------


@dataclass
class Ask:
    """One URL of the board or the census, and what became of it."""

    label: str
    path: str
    census: CensusQuery | None = None  # None: the board
    body: bytes = b""  # Yilian's answer, fetched once
    check_seconds: float = 0.0  # mean time of the fetches before timing
    duration: float = 0.0
    ours: LoadResult | None = None
    ours_many: LoadResult | None = None  # the board with several connections
    memory: LoadResult | None = None  # the ceiling app
    memory_many: LoadResult | None = None
    sql: Timed | None = None
    differences: list[str] = field(default_factory=list)


def _asks() -> list[Ask]:
    today = utcnow().astimezone(DISPLAY_ZONE).date()
    hospital = {"hospital_id": HOSPITAL}
    month = CensusQuery(today - timedelta(days=29), today, "campus", hospital)
    year = CensusQuery(today - timedelta(days=365), today, "ward", hospital)
    return [
        Ask(f"bed board {CAMPUS}", f"/api/inpatient/board?campus={CAMPUS}"),
        Ask(f"census {HOSPITAL} by campus, 30 days", month.path(default_period=True), month),
        Ask(f"census {HOSPITAL} by ward, a year", year.path(default_period=False), year),
    ]


def _fetch(base: str, asks: list[Ask], authorization: str, duration: float) -> list[str]:
    """Each URL fetched three times: it must answer 200; the last body is kept (the checks,
    the ceiling app), the mean time sets how long it is timed."""
    problems = []
    with httpx.Client(base_url=base, timeout=300.0,
                      headers={"Authorization": authorization}) as client:
        for ask in asks:
            started = time.perf_counter()
            for _ in range(3):
                response = client.get(ask.path)
            ask.check_seconds = (time.perf_counter() - started) / 3
            ask.duration = max(duration, min(MIN_TIMED * ask.check_seconds, MAX_SECONDS))
            if response.status_code != 200:
                problems.append(f"{ask.path} answered {response.status_code}: "
                                f"{response.text[:300]}")
            ask.body = response.content
    return problems


def _time_asks(port: int, asks: list[Ask], authorization: str, options: InpatientOptions,
               label: str, memory: bool) -> None:
    """Each URL with one connection (the board also with several). A slow answer is timed
    longer (`Ask.duration`); from memory every answer is fast: `options.duration`."""
    for ask in asks:
        duration = options.duration if memory else ask.duration
        phase = f"{options.warmup:g}+{duration:.3g} s"
        say(f"{label}: {ask.label}, 1 connection, {phase}")
        options.quiet.check(f"{label} {ask.label}")
        result = run_load(LoadPlan(port=port, kind="read", paths=(ask.path,), processes=1,
                                   connections=1, warmup=options.warmup,
                                   duration=duration, authorization=authorization))
        many = None
        if ask.census is None:
            say(f"{label}: {ask.label}, {BOARD_CONNECTIONS} connections, {phase}")
            options.quiet.check(f"{label} {ask.label}, {BOARD_CONNECTIONS} connections")
            many = run_load(LoadPlan(port=port, kind="read", paths=(ask.path,), processes=1,
                                     connections=BOARD_CONNECTIONS, warmup=options.warmup,
                                     duration=duration, authorization=authorization))
        if memory:
            ask.memory, ask.memory_many = result, many
        else:
            ask.ours, ask.ours_many = result, many


# --- admissions ---------------------------------------------------------------------------


@dataclass
class Round:
    """One server's admissions: what the clerks got, what the database holds after."""

    workers: int
    serial: Answered
    distinct: Answered
    race_beds: Answered
    race_patients: Answered
    check: StayCheck
    peak_kib: int | None = None

    def phases(self) -> list[Answered]:
        return [self.serial, self.distinct, self.race_beds, self.race_patients]

    def admitted(self) -> list[tuple[str, str]]:
        return [pair for phase in self.phases() for pair in phase.admitted]

    def refused(self) -> list[tuple[str, str]]:
        return [pair for phase in self.phases() for pair in phase.refused]

    def single_winners(self) -> tuple[int, int]:
        races = self.race_beds.winners + self.race_patients.winners
        return sum(1 for n in races if n == 1), len(races)


def _admissions(kind: str, url: str, server: Server, work_plan: Plan, before: Snapshot,
                authorization: str, workers: int, options: InpatientOptions) -> Round:
    say(f"{kind}: one clerk admitting {len(work_plan.serial)} patients, then "
        f"{options.clerks} clerks ({sum(map(len, work_plan.distinct)):,} admissions), then "
        f"racing for {len(work_plan.race_beds)} beds and {len(work_plan.race_patients)} "
        f"patients (yilian serve --workers {workers})")
    options.quiet.check(f"{kind} admissions, {workers} worker(s)")
    try:
        serial, distinct, race_beds, race_patients = run_clerks(Work(
            server.port, authorization, work_plan.serial, work_plan.distinct,
            work_plan.race_beds, work_plan.race_patients, WARMUP_PER_CLERK))
    except RuntimeError as error:
        alive = "running" if server.proc.poll() is None else f"ended ({server.proc.returncode})"
        raise RuntimeError(f"{error}; the server is {alive}, the end of its log:\n"
                           f"{_tail(server.log)}") from error
    found = Round(workers, serial, distinct, race_beds, race_patients, StayCheck(0, 0, 0))
    found.check = check_stays(url, before, found.admitted(), found.refused())
    say(f"{kind}: {distinct.rate:,.0f} admissions/s; {found.check.new_open:,} new open stays, "
        f"{found.check.beds_twice} beds and {found.check.patients_twice} patients with two")
    return found


def _tail(log: Path, lines: int = 12) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _round_notes(kind: str, found: Round) -> list[str]:
    notes = []
    for phase in found.phases():
        statuses = ", ".join(f"{n:,} × {status}" for status, n in sorted(phase.statuses.items()))
        what = {"serial": "one clerk's admissions", "distinct": "the clerks' admissions",
                "race_beds": "races for a bed", "race_patients": "races for a patient"
                }[phase.name]
        line = (f"{kind} (--workers {found.workers}): {what}: {phase.requests():,} requests "
                f"in {phase.seconds:.1f} s: {statuses or 'none'}")
        if phase.name == "distinct":
            line += (f"; latency p50 {phase.percentile_ms(0.5):.1f} / p95 "
                     f"{phase.percentile_ms(0.95):.1f} ms")
        if phase.winners:
            single = sum(1 for n in phase.winners if n == 1)
            line += f"; {single} of {len(phase.winners)} races won by exactly one clerk"
        if phase.unexpected:
            line += f"; unexpected answers, e.g. {phase.unexpected[0]}"
        notes.append(line)
    if found.check.problems:
        notes.append(f"{kind} (--workers {found.workers}): the movement record after the "
                     f"admissions: {'; '.join(found.check.problems)}")
    return notes


# --- one database -------------------------------------------------------------------------


def _ours(kind: str, url: str, workdir: Path, asks: list[Ask], work_plan: Plan,
          before: Snapshot, authorization: str, options: InpatientOptions
          ) -> tuple[Round, list[str]]:
    notes: list[str] = []
    say(f"{kind}: starting yilian serve (one worker, access control on, a nurse's token)")
    server = start_server(f"yilian-{kind}-inpatient", yilian_argv(url), log_dir=workdir,
                          env=SERVER_ENV)
    try:
        require_access_control(server.base, authorization)
        notes += _fetch(server.base, asks, authorization, options.duration)
        _time_asks(server.port, asks, authorization, options, kind, memory=False)
        found = _admissions(kind, url, server, work_plan, before, authorization, 1, options)
        found.peak_kib = server.peak_rss_kib()
    finally:
        server.stop()
    return found, notes


def _second_round(kind: str, url: str, workdir: Path, work_plan: Plan, before: Snapshot,
                  authorization: str, options: InpatientOptions) -> Round:
    server = start_server(f"yilian-{kind}-inpatient-2", yilian_argv(url, workers=2),
                          log_dir=workdir, env=SERVER_ENV)
    try:
        return _admissions(kind, url, server, work_plan, before, authorization, 2, options)
    finally:
        server.stop()


def _memory_ceiling(kind: str, workdir: Path, asks: list[Ask], authorization: str,
                    options: InpatientOptions) -> None:
    from bench.inpatient_ceiling_app import DATA_ENV, write_data

    data = workdir / f"inpatient-ceiling-{kind}.json"
    write_data(data, {ask.path: ask.body for ask in asks})
    server = start_server(f"inpatient-ceiling-{kind}", bench_app_argv(CEILING_APP),
                          log_dir=workdir, env={DATA_ENV: str(data)})
    try:
        _time_asks(server.port, asks, authorization, options, f"{kind} ceiling", memory=True)
    finally:
        server.stop()
        data.unlink(missing_ok=True)


def _sql_ceiling(kind: str, url: str, asks: list[Ask], options: InpatientOptions) -> None:
    db = Driver(kind, url)
    try:
        for ask in asks:
            answer = orjson.loads(ask.body) if ask.body else {}
            census = ask.census

            def run(query: CensusQuery | None = census) -> object:
                if query is None:
                    return board_sql(db, CAMPUS)
                return census_sql(db, query, utcnow())

            if census is None:
                ask.differences = board_differences(board_sql(db, CAMPUS), answer)
            else:
                ask.differences = census_differences(census_sql(db, census, utcnow()), answer)
            say(f"{kind} ceiling: {ask.label}, hand-written SQL in process, "
                f"{options.warmup:g}+{options.duration:g} s")
            options.quiet.check(f"{kind} SQL {ask.label}")
            ask.sql = time_in_process(run, options.warmup, options.duration)
    finally:
        db.close()


def run_inpatient_database(kind: str, options: InpatientOptions, workdir: Path) -> Half:
    label, folder, marker = _storage(kind, options.days, workdir)
    reuse = marker is not None and marker.exists()
    if reuse:
        assert marker is not None
        kept = orjson.loads(marker.read_bytes())
        url, seeding = kept.pop("url"), Seeding(**kept)
        say(f"{kind}: reusing the database seeded on {seeding.seeded_at} ({url}); "
            "upgrading its schema")
        _upgrade(url)
    else:
        url = fresh_database(kind, label, folder)
    try:
        if not reuse:
            seeding = _seed(kind, url, options.days, options.quiet)
            started = time.perf_counter()
            vacuum_analyze(kind, url)
            seeding.analyze_seconds = time.perf_counter() - started
            if marker is not None:
                marker.write_bytes(orjson.dumps({"url": url, **asdict(seeding)}))
        size = database_size(kind, url)
        authorization = nurse_authorization(url)
        asks = _asks()
        say(f"{kind}: planning the admissions")
        work_plan = plan(url, options.clerks)
        before = snapshot(url, work_plan.bed_ids)
        second: Round | None = None
        replayed: tuple[Replayed, Replayed] | None = None
        measured = source()  # the code the servers run (others may be committing)
        try:
            first, notes = _ours(kind, url, workdir, asks, work_plan, before, authorization,
                                 options)
            rows = read_back(url, before, [[(t.bed_id, t.patient_id) for t in tasks]
                                           for tasks in (work_plan.serial,
                                                         *work_plan.distinct)])
            undo(url, before)
            second = _second_round(kind, url, workdir, work_plan, before, authorization,
                                   options)
            undo(url, before)
            say(f"{kind} ceiling: the admissions' rows written again, by one thread, then by "
                f"{options.clerks}, no FHIR work")
            options.quiet.check(f"{kind} ceiling admissions")
            replayed = (replay(url, rows[:1]), replay(url, rows[1:]))
        finally:
            removed = undo(url, before)
            say(f"{kind}: database put back as it was ({removed:,} stays removed)")
        _memory_ceiling(kind, workdir, asks, authorization, options)
        _sql_ceiling(kind, url, asks, options)
    finally:
        if marker is None:
            drop_database(kind, label, folder)
    if source() != measured:
        notes.append(f"{kind}: Yilian's commit changed while it was measured: {measured} when "
                     f"its first server started, {source()} at the end")
    return Half(*_results(kind, options, seeding, reuse, size, asks, work_plan, first, second,
                          replayed, notes, measured))


def _results(kind: str, options: InpatientOptions, seeding: Seeding, reuse: bool, size: float,
             asks: list[Ask], work_plan: Plan, first: Round, second: Round | None,
             replayed: tuple[Replayed, Replayed] | None, notes: list[str], measured: str
             ) -> tuple[list[Line], list[str]]:
    lines = [Line(kind, f"seed {options.days} days of stays", "resources/s", seeding.rate,
                  note="seeded by an earlier run (kept)" if reuse else "")]
    notes = [
        f"{kind}: the demo network (yilian.demo.seed, {options.days} days): "
        f"{seeding.resources:,} resources, {seeding.patients:,} patients, {seeding.beds:,} "
        f"beds, {seeding.stays:,} stays ({seeding.open_stays:,} open), seeded"
        f"{' by an earlier run, kept,' if reuse else ''} in {seeding.seconds / 60:.1f} min "
        f"on {seeding.seeded_at}"
        + (f", then VACUUM ANALYZE in {seeding.analyze_seconds:.0f} s"
           if kind == "postgresql" and not reuse else "") + f"; database {size:,.0f} MB; "
        f"Yilian at commit {measured}",
        *notes,
    ]
    for ask in asks:
        ours, memory, sql = ask.ours, ask.memory, ask.sql
        if ours is None or memory is None or sql is None:
            lines.append(Line(kind, ask.label, "", None, note="not measured"))
            continue
        lines += [
            Line(kind, f"{ask.label} p50", "ms", ours.percentile_ms(0.5),
                 sql.percentile_ms(0.5), higher_is_better=False),
            Line(kind, f"{ask.label} p95", "ms", ours.percentile_ms(0.95),
                 sql.percentile_ms(0.95), higher_is_better=False, goal=LATENCY_GOAL_MS),
            Line(kind, f"{ask.label} p50, vs bytes from memory", "ms",
                 ours.percentile_ms(0.5), memory.percentile_ms(0.5), higher_is_better=False),
            Line(kind, f"{ask.label} p95, vs bytes from memory", "ms",
                 ours.percentile_ms(0.95), memory.percentile_ms(0.95),
                 higher_is_better=False),
        ]
        if ask.census is None:
            lines.append(Line(kind, f"{ask.label}, 1 connection", "requests/s", ours.rate,
                              memory.rate))
            if ask.ours_many is not None and ask.memory_many is not None:
                lines.append(Line(kind, f"{ask.label}, {BOARD_CONNECTIONS} connections",
                                  "requests/s", ask.ours_many.rate, ask.memory_many.rate))
        failed = ours.failures()
        notes.append(
            f"{kind}: {ask.label}: GET {ask.path}, {len(ask.body):,} bytes; "
            f"{ours.requests:,} answers timed ({failed} failed), {memory.requests:,} from "
            f"memory; the SQL alone in process p50 {sql.percentile_ms(0.5):.2f} / p95 "
            f"{sql.percentile_ms(0.95):.2f} ms ({len(sql.latencies):,} runs)"
            + (f"; the SQL's answer differs: {'; '.join(ask.differences)}"
               if ask.differences else "; the SQL's answer matches the server's"))
    alone, together = replayed if replayed else (None, None)
    serial = first.serial
    lines += [
        Line(kind, "admission, 1 clerk p50", "ms", serial.percentile_ms(0.5),
             alone.percentile_ms(0.5) if alone else None, higher_is_better=False),
        Line(kind, "admission, 1 clerk p95", "ms", serial.percentile_ms(0.95),
             alone.percentile_ms(0.95) if alone else None, higher_is_better=False),
        Line(kind, f"admissions, {options.clerks} clerks", "admissions/s", first.distinct.rate,
             together.rate if together else None, goal=ADMISSIONS_GOAL),
    ]
    if second is not None:
        lines.append(Line(kind, f"admissions, {options.clerks} clerks, 2 server processes",
                          "admissions/s", second.distinct.rate,
                          together.rate if together else None))
    rounds = [r for r in (first, second) if r is not None]
    single = sum(r.single_winners()[0] for r in rounds)
    races = sum(r.single_winners()[1] for r in rounds)
    lines += [
        Line(kind, "races won by exactly one clerk", "%",
             100.0 * single / races if races else None, goal=100.0),
        Line(kind, "beds with two open stays (after all)", "beds",
             float(max(r.check.beds_twice for r in rounds)), higher_is_better=False, goal=0.0),
        Line(kind, "patients with two open stays (after all)", "patients",
             float(max(r.check.patients_twice for r in rounds)), higher_is_better=False,
             goal=0.0),
        Line(kind, "server peak RSS (VmHWM)", "MiB",
             None if first.peak_kib is None else first.peak_kib / 1024.0),
    ]
    notes.append(f"{kind}: admissions planned: {work_plan.summary()}; each clerk's first "
                 f"{WARMUP_PER_CLERK} not timed")
    for found in rounds:
        notes += _round_notes(kind, found)
    if alone is not None and together is not None:
        notes.append(f"{kind}: ceiling: the timed admissions' rows ({together.rows} rows each "
                     f"on average) written again: {alone.admissions} by one thread in "
                     f"{alone.seconds:.2f} s ({alone.rate:,.0f}/s), {together.admissions:,} by "
                     f"{options.clerks} threads in {together.seconds:.2f} s (latency p50 "
                     f"{together.percentile_ms(0.5):.1f} / p95 "
                     f"{together.percentile_ms(0.95):.1f} ms, queueing included); "
                     "the database put back after each round")
    return lines, notes


def source() -> str:
    """The commit measured, and whether src/ differs from it (others may be committing)."""
    import subprocess

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent.parent,
                                  capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "src")
    return f"{commit}{' with uncommitted changes in src/' if changed else ''}"


def context(options: InpatientOptions) -> dict[str, Any]:
    return {"inpatient_days": options.days, "warmup_s": options.warmup,
            "duration_s": options.duration, "clerks": options.clerks,
            "campus": CAMPUS, "hospital": HOSPITAL, "source": source()}
