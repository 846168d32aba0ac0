"""A small HTTP/1.1 load generator: separate processes, keep-alive sockets, fixed duration.

Each process (multiprocessing, spawn) opens `connections` keep-alive connections to 127.0.0.1
and runs one request at a time on each, as fast as answers come (a closed loop). All processes
start together (a barrier), warm up for `warmup` seconds, then count every answer completed in
the next `duration` seconds and record its latency (from writing the request to having read
the whole body). A process also stops after `max_requests` counted answers, to bound memory.
Given the server's process id, the parent samples that process's CPU time (all its threads,
and its worker processes) meanwhile, for the server's CPU per answer in the counted window:
unlike answers per second, a figure the load processes sharing the machine do not bend.
Raw asyncio streams (uvloop when installed) keep the client's cost per request small, so the
2-core machine's time goes to the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue
import random
import signal
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"

_PATIENT = (
    '{"resourceType":"Patient","identifier":[{"system":"urn:yilian:bench","value":"%s"}],'
    '"name":[{"family":"Bench","given":["P%s"]}],"gender":"female","birthDate":"1980-02-29"}'
)


@dataclass(frozen=True)
class LoadPlan:
    port: int
    kind: str  # "read": GET a random path of `paths`; "create": POST a new Patient
    paths: tuple[str, ...] = ()
    processes: int = 2
    connections: int = 4  # per process
    warmup: float = 2.0
    duration: float = 10.0
    max_requests: int = 500_000  # counted answers per process
    seed: int = 1
    # The `Authorization` header's value sent with every request (yilian checks it; the
    # ceiling apps ignore it, and get it too so that the requests are the same bytes).
    authorization: str | None = None


@dataclass
class LoadResult:
    windows: list[tuple[int, float]]  # per process: answers counted, seconds counted
    latencies: array[float]  # seconds, sorted
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    # The server's CPU seconds per second over the counted window (1.0: one core busy), when
    # its process id was given and the window was sampled; the database server's likewise,
    # when its processes run on this machine.
    server_cores: float | None = None
    database_cores: float | None = None

    @property
    def requests(self) -> int:
        return sum(count for count, _ in self.windows)

    @property
    def rate(self) -> float:
        return sum(count / seconds for count, seconds in self.windows if seconds > 0)

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(fraction * (len(self.latencies) - 1)))
        return self.latencies[index] * 1000.0

    def failures(self) -> int:
        return self.errors + sum(n for status, n in self.statuses.items() if status >= 400)

    @property
    def server_cpu_per_answer_us(self) -> float | None:
        """The server's CPU time per answer, in microseconds."""
        if self.server_cores is None or not self.rate:
            return None
        return self.server_cores / self.rate * 1e6

    @property
    def database_cpu_per_answer_us(self) -> float | None:
        """The database server's CPU time per answer (its processes on this machine)."""
        if self.database_cores is None or not self.rate:
            return None
        return self.database_cores / self.rate * 1e6


class ProcessCpu:
    """The CPU time of some processes, sampled every `every` seconds by a thread of the bench
    until stopped; `pids` is asked at every sample (a database's backends come and go)."""

    def __init__(self, pids: Callable[[], list[int]], every: float = 0.1) -> None:
        self.pids = pids
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (time.monotonic(), CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="process-cpu", daemon=True)

    def __enter__(self) -> ProcessCpu:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            self.samples.append((time.monotonic(), _cpu_seconds(self.pids())))
            if self._stop.wait(self.every):
                self.samples.append((time.monotonic(), _cpu_seconds(self.pids())))
                return

    def cores(self, start: float, end: float) -> float | None:
        """CPU seconds per second between two monotonic instants (linear between samples);
        None unless samples surround the span."""
        if end <= start or not self.samples or not (
                self.samples[0][0] <= start and end <= self.samples[-1][0]):
            return None
        return (self._at(end) - self._at(start)) / (end - start)

    def _at(self, moment: float) -> float:
        before = max((s for s in self.samples if s[0] <= moment), key=lambda s: s[0])
        after = min((s for s in self.samples if s[0] >= moment), key=lambda s: s[0])
        if after[0] == before[0]:
            return before[1]
        share = (moment - before[0]) / (after[0] - before[0])
        return before[1] + share * (after[1] - before[1])


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User and system time of the processes (every thread of each), from /proc."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def processes_named(name: str) -> list[int]:
    """The processes of this machine whose command is `name` (/proc/PID/comm)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name:
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # ppid
            found.append(int(stat.parent.name))
    return found


@dataclass
class _Tally:
    measure_from: float
    stop_at: float
    limit: int
    count: int = 0
    errors: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    statuses: Counter[int] = field(default_factory=Counter)

    def done(self, now: float) -> bool:
        return now >= self.stop_at or self.count >= self.limit

    def window(self) -> float:
        """Seconds counted: the whole duration, or until the request limit was reached."""
        if self.count >= self.limit:
            return min(self.stop_at, time.monotonic()) - self.measure_from
        return self.stop_at - self.measure_from


def _request_maker(plan: LoadPlan, worker: int, connection: int) -> Callable[[], bytes]:
    host = f"Host: {HOST}:{plan.port}\r\n"  # and the token: the headers every request has
    if plan.authorization is not None:
        host += f"Authorization: {plan.authorization}\r\n"
    if plan.kind == "read":
        rng = random.Random(plan.seed * 7919 + worker * 131 + connection)
        requests = [
            f"GET {path} HTTP/1.1\r\n{host}Accept: application/fhir+json\r\n\r\n".encode()
            for path in plan.paths
        ]
        return lambda: rng.choice(requests)
    if plan.kind == "create":
        counter = iter(range(1 << 62))
        prefix = f"{plan.seed}-{worker}-{connection}-"

        def create() -> bytes:
            tag = f"{prefix}{next(counter)}"
            body = (_PATIENT % (tag, tag)).encode()
            return (
                f"POST /fhir/Patient HTTP/1.1\r\n{host}Accept: application/fhir+json\r\n"
                f"Content-Type: application/fhir+json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body

        return create
    raise ValueError(f"unknown load kind {plan.kind!r}")


async def _read_answer(reader: asyncio.StreamReader) -> int:
    """Read one whole answer; returns its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"\r\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 2)
        length = int(lower[at + 17 : end])
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def _connection(plan: LoadPlan, worker: int, number: int, tally: _Tally) -> None:
    make = _request_maker(plan, worker, number)
    reader, writer = await asyncio.open_connection(HOST, plan.port)
    try:
        while not tally.done(time.monotonic()):
            request = make()
            started = time.monotonic()
            try:
                writer.write(request)
                status = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                tally.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, plan.port)
                continue
            finished = time.monotonic()
            if tally.measure_from <= finished <= tally.stop_at:
                tally.count += 1
                tally.latencies.append(finished - started)
                tally.statuses[status] += 1
    finally:
        writer.close()


async def _drive(plan: LoadPlan, worker: int, barrier: Barrier) -> tuple[_Tally, float]:
    barrier.wait(timeout=60)  # every process is up: start together
    start = time.monotonic()
    tally = _Tally(start + plan.warmup, start + plan.warmup + plan.duration, plan.max_requests)
    await asyncio.gather(*(_connection(plan, worker, n, tally) for n in range(plan.connections)))
    return tally, tally.window()


def _run(coroutine: Coroutine[Any, Any, tuple[_Tally, float]]) -> tuple[_Tally, float]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    result: tuple[_Tally, float] = uvloop.run(coroutine)
    return result


def _worker(plan: LoadPlan, worker: int, barrier: Barrier, out: multiprocessing.Queue[Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends us
    try:
        tally, window = _run(_drive(plan, worker, barrier))
        out.put((tally.count, window, tally.latencies.tobytes(), dict(tally.statuses),
                 tally.errors, tally.measure_from))
    except Exception as error:
        out.put(error)


def _next_answer(
    out: multiprocessing.Queue[Any], workers: list[Any], received: int, deadline: float
) -> Any:
    """The next report of a load process; fails early when one ended without reporting."""
    while True:
        try:
            return out.get(timeout=0.5)
        except queue.Empty:
            pass
        ended = [p for p in workers if p.exitcode is not None]
        if len(ended) > received:
            try:  # its report may still be in the pipe
                return out.get(timeout=2.0)
            except queue.Empty:
                pass
            codes = ", ".join(f"{p.name}: {p.exitcode}" for p in ended)
            raise RuntimeError(f"a load process ended without reporting (exit codes {codes})")
        if time.monotonic() > deadline:
            raise RuntimeError("a load process did not report back in time")


def run_load(plan: LoadPlan, server_pid: int | None = None,
             database_pids: Callable[[], list[int]] | None = None) -> LoadResult:
    """Run the plan in `plan.processes` processes and merge what they counted; with
    `server_pid`, the server's CPU time in the window every process counted in, and with
    `database_pids`, that of the database server's processes (sampled twice a second: the
    listing is not free, and the load shares the machine)."""
    if server_pid is None:
        return _run_load(plan)[0]
    server = [server_pid, *_children(server_pid)]
    database = ProcessCpu(database_pids, every=0.5) if database_pids is not None else None
    with ProcessCpu(lambda: server) as cpu, database or contextlib.nullcontext():
        result, spans = _run_load(plan)
    # Sampled to the end now. CLOCK_MONOTONIC is the machine's: the load processes' instants
    # are ours too.
    window = max(start for start, _ in spans), min(end for _, end in spans)
    result.server_cores = cpu.cores(*window)
    if database is not None:
        result.database_cores = database.cores(*window)
    return result


def _run_load(plan: LoadPlan) -> tuple[LoadResult, list[tuple[float, float]]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(plan.processes)
    out: multiprocessing.Queue[Any] = context.Queue()
    workers = [
        context.Process(target=_worker, args=(plan, n, barrier, out), daemon=True,
                        name=f"bench-load-{n}")
        for n in range(plan.processes)
    ]
    for process in workers:
        process.start()
    latencies: array[float] = array("d")
    statuses: Counter[int] = Counter()
    windows: list[tuple[int, float]] = []
    spans: list[tuple[float, float]] = []  # each process's counted window, monotonic
    errors = 0
    try:
        deadline = time.monotonic() + plan.warmup + plan.duration + 90
        for received in range(len(workers)):
            answer = _next_answer(out, workers, received, deadline)
            if isinstance(answer, Exception):
                raise RuntimeError(f"a load process failed: {answer!r}") from answer
            count, window, raw, by_status, failed, measure_from = answer
            windows.append((count, window))
            spans.append((measure_from, measure_from + window))
            chunk: array[float] = array("d")
            chunk.frombytes(raw)
            latencies.extend(chunk)
            statuses.update(by_status)
            errors += failed
        for process in workers:
            process.join(timeout=10)
    finally:
        for process in workers:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
    ordered = array("d", sorted(latencies))
    return LoadResult(windows, ordered, statuses, errors), spans
