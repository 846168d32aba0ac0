"""The command line of `python -m bench`."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.databases import KINDS, postgres_problem
from bench.machine import QuietLog
from bench.procs import install_signal_handlers, stop_all
from bench.report import Line, append_json, render, say
from bench.run import Options, run_database
from bench.synthea import DEFAULT_DIR, load_bundles

QUICK_BUNDLES = 8


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Yilian's ingestion, read and create throughput against ceilings "
        "measured in the same run, and the search indexes' share of ingestion "
        "(bench/README.md).",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_BUNDLES} bundles, 1 s warm-up + 4 s per phase")
    parser.add_argument("--only", choices=KINDS, help="one database instead of both")
    parser.add_argument("--profile", action="store_true",
                        help="instead: profile one ingestion in process with cProfile")
    parser.add_argument("--bundles", type=int, help="use the first N bundles")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per load phase")
    parser.add_argument("--duration", type=float, help="seconds measured per load phase")
    parser.add_argument("--processes", type=int, default=2, help="load processes (2)")
    parser.add_argument("--connections", type=int, default=4,
                        help="keep-alive connections per load process (4)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DIR,
                        help=f"the Synthea bundles ({DEFAULT_DIR})")
    parser.add_argument("--search", type=int, metavar="PATIENTS",
                        help="instead: the search benchmark on a generated data set of "
                        "PATIENTS patients (~22 resources each; 50000 for the full run)")
    parser.add_argument("--inpatient", action="store_true",
                        help="instead: the inpatient benchmark (bed board, census, admissions) "
                        "on the demo network's 6,000-bed group hospital")
    parser.add_argument("--inpatient-days", type=int, default=365, metavar="DAYS",
                        help="--inpatient: days of stays to seed (365; 30 for a quick run)")
    return parser.parse_args(argv)


def _kinds(only: str | None) -> list[str]:
    return [only] if only else list(KINDS)


def _profile(args: argparse.Namespace, options: Options, workdir: Path) -> int:
    from bench.profile import profile_ingestion

    for kind in _kinds(args.only):
        if kind == "postgresql" and (problem := postgres_problem()):
            print(f"PostgreSQL profile skipped: {problem}")
            continue
        say(f"{kind}: profiling the ingestion of {len(options.bundles)} bundles")
        print(profile_ingestion(kind, options.bundles, workdir))
    return 0


def main(argv: list[str] | None = None) -> int:
    install_signal_handlers()
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("\n[bench] interrupted: every server it started has been stopped",
              file=sys.stderr)
        return 130


def _search(args: argparse.Namespace) -> int:
    from bench.search_bench import SearchOptions, run_search_database

    if args.search < 1:
        raise SystemExit("--search takes a number of patients, at least 1")
    options = SearchOptions(
        patients=args.search,
        warmup=args.warmup if args.warmup is not None else 1.0,
        duration=args.duration if args.duration is not None else 5.0,
        quiet=QuietLog(),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="yilian-bench-search-") as tmp:
            halves = _halves(args.only,
                             lambda kind: run_search_database(kind, options, Path(tmp)))
    finally:
        stop_all()
    return _report(halves, options.quiet, {
        "search_patients": options.patients,
        "warmup_s": options.warmup,
        "duration_s": options.duration,
        "load_processes": 1,
        "connections_per_process": 1,
    })


def _inpatient(args: argparse.Namespace) -> int:
    from bench.inpatient_bench import InpatientOptions, context, run_inpatient_database

    if args.inpatient_days < 1:
        raise SystemExit("--inpatient-days takes a number of days, at least 1")
    options = InpatientOptions(
        days=args.inpatient_days,
        warmup=args.warmup if args.warmup is not None else 1.0,
        duration=args.duration if args.duration is not None else 5.0,
        quiet=QuietLog(),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="yilian-bench-inpatient-") as tmp:
            halves = _halves(args.only,
                             lambda kind: run_inpatient_database(kind, options, Path(tmp)))
    finally:
        stop_all()
    return _report(halves, options.quiet, context(options))


@dataclass
class _Halves:
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _halves(only: str | None, run: Callable[[str], Any]) -> _Halves:
    """Each database's half in turn; one that fails or cannot run keeps the other's figures."""
    found = _Halves()
    for kind in _kinds(only):
        if kind == "postgresql" and (problem := postgres_problem()):
            found.skipped.append(f"The PostgreSQL half was skipped: {problem}")
            say(found.skipped[-1])
            found.lines.append(Line(kind, "skipped (PostgreSQL does not answer)", "", None,
                                    note=problem))
            continue
        try:
            half = run(kind)
        except Exception as error:  # keep the other half's figures
            found.failures.append(f"The {kind} half failed: {error}")
            say(found.failures[-1])
            found.lines.append(Line(kind, "failed (see below)", "", None, note=str(error)))
            continue
        found.lines += half.lines
        found.notes += half.notes
    return found


def _report(halves: _Halves, quiet: QuietLog, context: dict[str, Any]) -> int:
    """The table and notes on stdout, the lines appended to results/latest.json."""
    notes = [*halves.notes, *quiet.notes(), *halves.skipped, *halves.failures]
    print(render(halves.lines))
    print()
    for note in notes:
        print(f"- {note}")
    path = append_json(halves.lines, {**context, "cpus": os.cpu_count(), "notes": notes})
    print(f"- appended {len(halves.lines)} lines to {path}")
    return 1 if halves.failures else 0


def _main(argv: list[str] | None) -> int:
    args = _arguments(argv)
    if args.search is not None:
        return _search(args)
    if args.inpatient:
        return _inpatient(args)
    limit = args.bundles or (QUICK_BUNDLES if args.quick else None)
    options = Options(
        bundles=load_bundles(args.data, limit),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0),
        duration=args.duration if args.duration is not None else (4.0 if args.quick else 10.0),
        processes=args.processes,
        connections=args.connections,
        quiet=QuietLog(),
    )
    try:
        with tempfile.TemporaryDirectory(prefix="yilian-bench-") as tmp:
            workdir = Path(tmp)
            if args.profile:
                return _profile(args, options, workdir)
            halves = _halves(args.only, lambda kind: run_database(kind, options, workdir))
    finally:
        stop_all()
    return _report(halves, options.quiet, {
        "quick": args.quick,
        "bundles": len(options.bundles),
        "resources": sum(b.entries for b in options.bundles),
        "warmup_s": options.warmup,
        "duration_s": options.duration,
        "load_processes": options.processes,
        "connections_per_process": options.connections,
    })
