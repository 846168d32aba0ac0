"""Admission clerks: one process (multiprocessing, spawn), one keep-alive connection per clerk,
raw HTTP/1.1 on asyncio streams (uvloop when installed), as bench/loadgen.py, so that the
client's cost per request stays small and the two cores go to the server.

Four phases, one after the other, on the same connections:

- `serial`: one clerk alone admits one patient after the other: the latency of an admission
  without queueing (its first `warmup` admissions not timed);
- `distinct`: each clerk POSTs its own admissions (its beds, its patients) to
  `/fhir/Encounter/$admit`, one at a time, as fast as the answers come. Each clerk's first
  `warmup` admissions are not timed; the clock starts when every clerk has done its warm-up
  and stops when the last one is done: admissions answered 200 ÷ that time.
- `race_beds`: for each bed, every clerk POSTs an admission of its own patient to that bed at
  the same moment (the requests written together, then every answer awaited): one must be
  admitted, the others refused with 409 (the bed is taken).
- `race_patients`: for each patient, every clerk POSTs an admission of that patient to its
  own bed at the same moment: one must be admitted, the others refused with 409 (the patient
  is in hospital already).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.inpatient_admissions import Task

HOST = "127.0.0.1"
PATH = "/fhir/Encounter/$admit"
SAMPLES = 3  # unexpected answers kept per phase, for the notes


@dataclass
class Answered:
    """What one phase got back."""

    name: str
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds, timed requests, sorted
    seconds: float = 0.0  # the timed part's wall time
    timed_ok: int = 0  # timed admissions answered 200
    admitted: list[tuple[str, str]] = field(default_factory=list)  # (bed, patient) 200
    refused: list[tuple[str, str]] = field(default_factory=list)  # (bed, patient) 409
    winners: list[int] = field(default_factory=list)  # per race: admissions answered 200
    unexpected: list[str] = field(default_factory=list)  # "status: body" samples

    @property
    def rate(self) -> float:
        return self.timed_ok / self.seconds if self.seconds else 0.0

    def percentile_ms(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        index = min(len(self.latencies) - 1, round(fraction * (len(self.latencies) - 1)))
        return self.latencies[index] * 1000.0

    def requests(self) -> int:
        return sum(self.statuses.values())

    def others(self) -> int:
        """Answers neither 200 nor 409."""
        return sum(n for status, n in self.statuses.items() if status not in (200, 409))


@dataclass(frozen=True)
class Work:
    port: int
    authorization: str
    serial: list[Task]
    distinct: list[list[Task]]
    race_beds: list[list[Task]]
    race_patients: list[list[Task]]
    warmup: int


class _Connection:
    def __init__(self, work: Work) -> None:
        self.head = (f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{work.port}\r\n"
                     f"Authorization: {work.authorization}\r\n"
                     "Accept: application/fhir+json\r\n"
                     "Content-Type: application/fhir+json\r\n").encode()
        self.port = work.port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def send(self, body: bytes) -> None:
        assert self.writer is not None
        self.writer.write(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)

    async def answer(self) -> tuple[int, bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        body = b""
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            length = int(lower[at + 17:end])
            if length:
                body = await self.reader.readexactly(length)
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append((await self.reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
            body = b"".join(parts)
        return status, body

    async def post(self, body: bytes) -> tuple[int, bytes]:
        self.send(body)
        return await self.answer()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


def _record(found: Answered, task: Task, status: int, body: bytes) -> None:
    found.statuses[status] += 1
    if status == 200:
        found.admitted.append((task.bed_id, task.patient_id))
    elif status == 409:
        found.refused.append((task.bed_id, task.patient_id))
    elif len(found.unexpected) < SAMPLES:
        found.unexpected.append(f"{status}: {body[:400].decode(errors='replace')}")


async def _serial(work: Work, connection: _Connection) -> Answered:
    found = Answered("serial")
    started = time.monotonic()
    for n, task in enumerate(work.serial):
        if n == work.warmup:
            started = time.monotonic()
        began = time.monotonic()
        status, body = await connection.post(task.body)
        if n >= work.warmup:
            found.latencies.append(time.monotonic() - began)
            found.timed_ok += status == 200
        _record(found, task, status, body)
    found.seconds = time.monotonic() - started
    found.latencies.sort()
    return found


async def _distinct(work: Work, connections: list[_Connection]) -> Answered:
    found = Answered("distinct")
    ready = asyncio.Event()
    arrived = 0
    started = 0.0
    ends: list[float] = []

    async def clerk(number: int) -> None:
        nonlocal arrived, started
        connection = connections[number]
        for n, task in enumerate(work.distinct[number]):
            if n == work.warmup:
                arrived += 1
                if arrived == len(connections):
                    started = time.monotonic()
                    ready.set()
                await ready.wait()
            began = time.monotonic()
            status, body = await connection.post(task.body)
            if n >= work.warmup:
                found.latencies.append(time.monotonic() - began)
                found.timed_ok += status == 200
            _record(found, task, status, body)
        if len(work.distinct[number]) <= work.warmup:
            arrived += 1
            if arrived == len(connections):
                started = time.monotonic()
                ready.set()
        ends.append(time.monotonic())

    await asyncio.gather(*(clerk(n) for n in range(len(connections))))
    found.seconds = max(ends) - started if started else 0.0
    found.latencies.sort()
    return found


async def _races(name: str, races: list[list[Task]], connections: list[_Connection]
                 ) -> Answered:
    found = Answered(name)
    started = time.monotonic()
    for race in races:
        clerks = connections[:len(race)]
        for connection, task in zip(clerks, race, strict=True):
            connection.send(task.body)  # every request out before any answer is read
        answers = await asyncio.gather(*(connection.answer() for connection in clerks))
        for task, (status, body) in zip(race, answers, strict=True):
            _record(found, task, status, body)
        found.winners.append(sum(1 for status, _ in answers if status == 200))
    found.seconds = time.monotonic() - started
    return found


async def _drive(work: Work) -> list[Answered]:
    clerks = max([len(work.distinct), *(len(r) for r in work.race_beds + work.race_patients)])
    connections = [_Connection(work) for _ in range(clerks)]
    phases: list[tuple[str, Callable[[], Awaitable[Answered]]]] = [
        ("serial", lambda: _serial(work, connections[0])),
        ("distinct", lambda: _distinct(work, connections[:len(work.distinct)])),
        ("race_beds", lambda: _races("race_beds", work.race_beds, connections)),
        ("race_patients", lambda: _races("race_patients", work.race_patients, connections)),
    ]
    found = []
    try:
        for name, phase in phases:
            # New connections for each phase: one left idle by the phase before (the other
            # clerks' while one works alone) may have been closed by the server's keep-alive
            # timeout (uvicorn: 5 s), and a POST must not be sent twice.
            for connection in connections:
                connection.close()
            await asyncio.gather(*(c.open() for c in connections))
            try:
                found.append(await phase())
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                raise RuntimeError(f"phase {name}: {error!r}") from error
        return found
    finally:
        for connection in connections:
            connection.close()


def _run(work: Work) -> list[Answered]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_drive(work))
    found: list[Answered] = uvloop.run(_drive(work))
    return found


def _process(work: Work, out: multiprocessing.Queue[Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it ends us
    try:
        out.put(_run(work))
    except Exception as error:
        out.put(error)


def run_clerks(work: Work, timeout: float = 1800.0) -> list[Answered]:
    """The four phases in a process of their own; returns what each got back."""
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[Any] = context.Queue()
    process = context.Process(target=_process, args=(work, out), daemon=True,
                              name="bench-clerks")
    process.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                answer = out.get(timeout=0.5)
                break
            except queue.Empty:
                if process.exitcode is not None:
                    try:
                        answer = out.get(timeout=2.0)
                        break
                    except queue.Empty:
                        raise RuntimeError("the clerks' process ended without reporting "
                                           f"(exit code {process.exitcode})") from None
                if time.monotonic() > deadline:
                    raise RuntimeError("the clerks did not finish in time") from None
        process.join(timeout=10)
    finally:
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)
    if isinstance(answer, Exception):
        raise RuntimeError(f"the clerks failed: {answer!r}") from answer
    found: list[Answered] = answer
    return found
