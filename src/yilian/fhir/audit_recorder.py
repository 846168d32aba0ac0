"""The audit recorder: a process beside each server process that chains and stores the
entries of reads, searches, refusals and sign-ins (IHE ATNA's audit record repository, one
per server process).

An entry handed to `Auditor.later` in the server would be chained and inserted by a thread
of the server itself, and that thread's Python shares the GIL with the event loop. Here the
server only queues the entry (measured under load on SQLite, four rounds side by side: reads
by id 9,181/s against 8,540/s with the thread); a thread sends the queue every tenth of a
second down a pipe, and the recorder process appends what it received every half second, as
`Auditor` does (`append`: the same chain, the same tables). A write's own entry still goes
in the write's transaction (`audit.append`), never through here.

The pipe carries frames: a 4-byte little-endian length, then an orjson array:

    ["e", [[subtype, actor, outcome, source, path, entities, detail, recorded], ...]]
    ["f", n]   flush: append everything received, then answer the line "n ok" on stdout
               (or "n failed: why" when the database refused)

and the recorder's stdout carries lines: "ready ok" first, before it gets any entry; the
answers to flushes; and after each append, "a N": the N first entries it received are
stored (committed). The server keeps every entry it sent until it is acknowledged so. The
same N goes into the database in the append's own transaction (`audit_progress`, under a key
the server gives each recorder it starts).

At the end of its input (the server closed it, or ended) a recorder appends what it holds
and exits; the signals that end a process group (Ctrl-C, a service manager's SIGTERM) do not
end it before that. One that ends early is replaced: the server reads the progress it stored,
which counts what it committed and never said (it died between its commit and its "a N"
line), and sends the new one the entries it had not stored: none is lost, none stored twice.
(Only if the database cannot say, right then, are they all sent again; an entry stored twice
is still a valid link of the chain.) If none can start (twice in a row), the server appends
its entries itself from then on. When the database refuses the entries, the recorder stops
reading at MAX_PENDING of them, the pipe fills, then the server's queue; requests then wait up
to CATCH_UP_SECONDS and fail with a 503 (`AuditUnavailable`): none is answered unaudited, and
no memory grows without bound.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import IO, Any

import orjson
from sqlalchemy import Engine

from yilian.fhir.audit import (
    FLUSH_SECONDS,
    MAX_PENDING,
    Auditor,
    AuditUnavailable,
    Entry,
    forget_progress,
    progress_of,
)
from yilian.kit.db import make_engine, write_transaction

log = logging.getLogger("yilian.audit")

URL_ENV = "YILIAN_AUDIT_RECORDER_DATABASE_URL"  # not an argument: `ps` shows arguments
KEY_ENV = "YILIAN_AUDIT_RECORDER_KEY"  # the name its progress is stored under
SEND_SECONDS = 0.1
ANSWER_SECONDS = 60.0  # a flush's answer: a busy database's lock wait included
READY = "ready"  # the recorder's first line, once it can take entries
READY_SECONDS = 60.0  # its start: Python, its imports and an engine, on a busy machine
# A full queue (MAX_PENDING) waits this long for the sender before the caller's request
# fails: a request is not answered unaudited.
CATCH_UP_SECONDS = 5.0
END_SECONDS = 30  # a recorder whose input is closed appends what it holds and exits
_LENGTH = struct.Struct("<I")
_PIPE_BYTES = 1 << 20  # half a second of entries at 10,000 reads/s, where Linux allows it

Wire = list[Any]


def to_wire(entry: Entry) -> tuple[Any, ...]:
    return (entry.subtype, entry.actor, entry.outcome, entry.source, entry.path,
            entry.entities, entry.detail, entry.recorded)


def from_wire(fields: Wire) -> Entry:
    subtype, actor, outcome, source, path, entities, detail, recorded = fields
    # orjson writes an aware datetime as RFC 3339 with its offset and microseconds.
    return Entry(subtype, actor, outcome, source, path, tuple(entities), detail,
                 datetime.fromisoformat(recorded))


def frame(message: Any) -> bytes:
    body = orjson.dumps(message)
    return _LENGTH.pack(len(body)) + body


class RecorderFailed(RuntimeError):
    """The recorder could not append the entries it was asked to flush."""


class RecordingAuditor(Auditor):
    """An `Auditor` whose later entries a recorder process appends (module docstring).

    Only the sender thread (and `flush`, `close`) write to the pipe, under `_pipe`; the
    callers of `later`, the event loop among them, only queue, and wait a bounded time when
    the queue is full."""

    beat_seconds = SEND_SECONDS  # the sender's beat; the recorder appends every half second

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._url = engine.url.render_as_string(hide_password=False)
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe = threading.Lock()  # one writer to the pipe; held while a recorder starts
        self._flushes = 0
        self._closing = False
        # Sent to the recorder and not yet acknowledged as stored, oldest first: sent again
        # to the next recorder if this one ends. `_acked`: its last "a N"; `_output`: what
        # it wrote that is not a whole line yet.
        self._unacked: deque[Entry] = deque()
        self._acked = 0
        self._key = ""  # the running recorder's, under which it stores its progress
        self._output = bytearray()
        # No recorder could start (twice in a row): entries are appended in process from
        # then on, rather than a new recorder tried (~0.4 s of CPU) every beat.
        self._in_process = False

    def start(self) -> None:
        """Start the recorder now (the server's start-up) rather than with the first entry,
        so that the first reads do not wait for it; if none can start, the server appends
        the entries itself, and says so."""
        with self._pipe:
            try:
                self._recorder()
            except OSError as error:
                log.error("no audit recorder could start (%s): this process appends its "
                          "audit entries itself", error)
                self._in_process = True

    def _catch_up(self) -> None:
        """The queue is full: wait, a bounded time, for the sender to hand it over."""
        if self._closing or self._in_process or self._thread is None:
            Auditor._catch_up(self)  # no sender to wait for: appended from here
            return
        self._wake.set()
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while len(self._pending) >= self.max_pending:
            if time.monotonic() >= deadline:
                raise AuditUnavailable(len(self._pending))
            time.sleep(0.01)

    def _beat(self) -> None:
        self._send()

    def flush(self) -> None:
        """Hand over what is pending and wait until the recorder has appended it; raises
        RecorderFailed if it could not (the database refused, or the recorder ended)."""
        with self._pipe:
            self._send_locked()
            if self._child is None and not self._unacked:
                return  # nothing was ever sent, or entries went in in process
            for attempt in range(2):  # a recorder that ended is replaced once
                try:
                    child = self._recorder()
                    self._flushes += 1
                    token = self._flushes
                    self._write(child, frame(["f", token]))
                    answer = self._answer(child, token)
                    break
                except OSError as error:
                    self._drop_child()
                    if attempt:
                        raise RecorderFailed(
                            f"the audit recorder ended before confirming its entries "
                            f"({error}); {len(self._unacked)} wait for the next") from error
        if answer != "ok":
            raise RecorderFailed(f"the audit recorder could not append its entries: {answer}")

    def close(self) -> None:
        self._closing = True
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except RecorderFailed as error:
            log.error("%s: appended by this process", error)
        with self._pipe:
            self._drop_child()
            self._take_back_unacked()  # what no recorder stored: appended here
        if self._pending:
            Auditor.flush(self)

    def _send(self) -> None:
        with self._pipe:
            self._send_locked()

    def _send_locked(self) -> None:
        if self._child is not None:
            self._take_acks()
        entries = []
        while self._pending:
            entries.append(self._pending.popleft())
        if not entries:
            self._reap()
            return
        if not self._in_process:
            data = frame(["e", [to_wire(entry) for entry in entries]])
            for _attempt in range(2):
                try:
                    self._write(self._recorder(), data)
                    self._unacked.extend(entries)
                    return
                except OSError as error:
                    log.error("the audit recorder cannot take entries: %s", error)
                    self._drop_child()
            log.error("no audit recorder could start: this process appends its audit "
                      "entries itself from now on")
            self._in_process = True
        # No recorder: the entries go in from here rather than nowhere, after those sent
        # and never acknowledged.
        self._pending.extendleft(reversed(entries))
        self._take_back_unacked()
        Auditor.flush(self)

    def _take_back_unacked(self) -> None:
        """Put the entries sent and never acknowledged back at the head of the queue, in
        their order, for this process to append."""
        self._pending.extendleft(reversed(self._unacked))
        self._unacked.clear()

    def _take_acks(self) -> None:
        """Read the acknowledgements the running recorder has written; one that ended is
        dropped (`_reap` says so)."""
        assert self._child is not None
        with contextlib.suppress(OSError):  # it ended: _reap, next, replaces it
            self._lines(self._child, 0)

    def _lines(self, child: subprocess.Popen[bytes], timeout: float) -> list[str]:
        """The whole lines `child` wrote, waiting up to `timeout` for some, its
        acknowledgements ("a N") taken in; OSError once it ended and all it wrote was read."""
        stdout = child.stdout
        assert stdout is not None
        waiting = select.poll()  # not select.select: descriptors past 1024 happen in a server
        waiting.register(stdout.fileno(), select.POLLIN)
        if not waiting.poll(timeout * 1000):
            return []
        chunk = os.read(stdout.fileno(), 1 << 16)
        if not chunk:
            raise OSError(f"the audit recorder ended (status {child.wait()})")
        self._output += chunk
        *whole, rest = self._output.split(b"\n")
        self._output = bytearray(rest)
        lines = []
        for raw in whole:
            line = raw.decode("utf-8", "replace").strip()
            if line.startswith("a "):
                self._acknowledged(int(line[2:]))
            elif line:
                lines.append(line)
        return lines

    def _acknowledged(self, stored: int) -> None:
        """The recorder stored the first `stored` entries it was sent."""
        for _ in range(min(stored - self._acked, len(self._unacked))):
            self._unacked.popleft()
        self._acked = stored

    def _answer(self, child: subprocess.Popen[bytes], token: int | str, *,
                timeout: float = ANSWER_SECONDS) -> str:
        """The recorder's answer to flush `token` ("ok" or why not), or its READY line;
        OSError if it ended or said nothing in time."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OSError("no answer from the audit recorder")
            for line in self._lines(child, remaining):
                number, _, answer = line.partition(" ")
                if number == str(token):
                    return answer

    def _drop_child(self) -> None:
        """End the recorder, its last acknowledgements read first, then the progress it
        stored with its last append: what it stored is not sent again, said or not."""
        child, self._child = self._child, None
        if child is None:
            return
        _end(child, then=lambda: self._drain(child))
        self._settle_progress(self._key)

    def _settle_progress(self, key: str) -> None:
        """A recorder has ended: drop the entries its stored progress counts as done (it
        ended between a commit and saying so), and forget its progress. If the database
        cannot say, the entries go to the next recorder; one stored already is then stored
        twice, each a valid link of the chain."""
        try:
            with write_transaction(self.engine) as conn:
                done = progress_of(conn, key) if self._unacked else None
                forget_progress(conn, key)
        except Exception as error:
            if self._unacked:
                log.warning("the audit recorder's progress could not be read (%s): its %d "
                            "unconfirmed entries go to the next one", error,
                            len(self._unacked))
            return
        if done is not None and done > self._acked:
            log.warning("the audit recorder ended after storing %d entries it had not "
                        "confirmed: not sent again", min(done - self._acked, len(self._unacked)))
            self._acknowledged(done)

    def _drain(self, child: subprocess.Popen[bytes]) -> None:
        """Read what `child` writes until it ends (its input is closed: it appends what it
        holds, acknowledges it and exits), for at most END_SECONDS."""
        deadline = time.monotonic() + END_SECONDS
        with contextlib.suppress(OSError, ValueError):
            while (remaining := deadline - time.monotonic()) > 0:
                self._lines(child, remaining)

    def _reap(self) -> None:
        """A recorder that ended while no entries came: said now, not at the next entry."""
        child = self._child
        if child is not None and child.poll() is not None:
            self._drop_child()
            log.error("the audit recorder ended (status %s): the %d entries it had not "
                      "stored go to a new one", child.returncode, len(self._unacked))

    def _recorder(self) -> subprocess.Popen[bytes]:
        """The running recorder, started if there is none or the last one ended, and given
        first the entries the last one had not stored (not while closing, unless there are
        such entries: new ones then go in from here)."""
        self._reap()
        if self._child is None:
            if self._closing and not self._unacked:
                raise OSError("closing: no new audit recorder")
            child = self._start()
            self._child, self._acked = child, 0
            if self._unacked:  # sent to the recorder that ended, never stored
                self._write(child, frame(["e", [to_wire(entry) for entry in self._unacked]]))
        return self._child

    def _start(self) -> subprocess.Popen[bytes]:
        """A new recorder, once it says it is ready (its imports done, its engine made): one
        that cannot start fails here, before any entry is handed to it."""
        self._key = uuid.uuid4().hex
        child = subprocess.Popen(
            [sys.executable, "-m", "yilian.fhir.audit_recorder"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, URL_ENV: self._url, KEY_ENV: self._key}, close_fds=True)
        assert child.stdin is not None
        with contextlib.suppress(OSError):
            fcntl.fcntl(child.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._output = bytearray()
        try:
            self._answer(child, READY, timeout=READY_SECONDS)
        except OSError:
            _end(child)
            raise
        return child

    @staticmethod
    def _write(child: subprocess.Popen[bytes], data: bytes) -> None:
        stdin = child.stdin
        assert stdin is not None
        stdin.write(data)
        stdin.flush()


def _end(child: subprocess.Popen[bytes], then: Callable[[], None] | None = None) -> None:
    """Close the recorder's input, which makes it append what it holds and exit; `then`
    runs before its output is closed (to read what it said last)."""
    with contextlib.suppress(OSError):
        assert child.stdin is not None
        child.stdin.close()
    if then is not None:
        then()
    try:
        child.wait(timeout=END_SECONDS)
    except subprocess.TimeoutExpired:
        log.error("the audit recorder did not end in %d s; killed", END_SECONDS)
        child.kill()
        child.wait()
    if child.stdout is not None:
        child.stdout.close()


# --- the recorder process ------------------------------------------------------------------------


def _frames(source: IO[bytes], buffer: bytearray) -> Iterator[Any]:
    """Read what `source` has (EOFError at its end) and decode the whole frames `buffer`
    then holds; a partial frame stays in `buffer` for the next read."""
    chunk = os.read(source.fileno(), 1 << 20)
    if not chunk:
        raise EOFError
    buffer += chunk
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + size
        if end > len(buffer):
            break
        yield orjson.loads(memoryview(buffer)[start + _LENGTH.size:end])
        start = end
    del buffer[:start]


class _Appender:
    """The recorder's appends, each acknowledged on `answers` ("a N": the N first entries
    received are stored) once committed."""

    def __init__(self, auditor: Auditor, answers: IO[bytes]) -> None:
        self.auditor = auditor
        self.answers = answers

    def append_held(self) -> str:
        before = self.auditor.done
        try:
            self.auditor.flush()
            answer = "ok"
        except Exception as error:  # the database is away: the entries wait for the next beat
            log.warning("audit entries not appended yet: %s", error)
            answer = "failed: " + " ".join(str(error).split())[:300]  # one line, as framed
        # Done with, in order: stored, or refused for good (logged); a failed flush may
        # have stored the first few one by one before the database went away. The same
        # count went into the database with them (`audit_progress`).
        if self.auditor.done != before:
            self.say(f"a {self.auditor.done}")
        return answer

    def say(self, line: str) -> None:
        with contextlib.suppress(OSError):  # the server is gone: its end follows
            self.answers.write(f"{line}\n".encode())
            self.answers.flush()


def record(engine: Engine, source: IO[bytes], answers: IO[bytes], *,
           key: str | None = None) -> None:
    """The recorder's loop: entries from `source` appended every FLUSH_SECONDS, flushes
    answered on `answers`, until the end of `source`; `key`: the name its progress is stored
    under (`audit_progress`)."""
    # Used without its thread: this loop is its beat.
    auditor = Auditor(engine, progress_key=key)
    appender = _Appender(auditor, answers)
    buffer = bytearray()
    waiting = select.poll()
    waiting.register(source.fileno(), select.POLLIN)
    due = time.monotonic() + FLUSH_SECONDS
    while True:
        wait = max(0.0, due - time.monotonic())
        full = auditor.held >= MAX_PENDING
        if full:
            # The database refuses them: read no more, so that the pipe fills and the
            # server's own bound applies (its requests wait, then fail) rather than this
            # process's memory growing without end.
            time.sleep(wait)
        elif waiting.poll(wait * 1000):
            try:
                messages = list(_frames(source, buffer))
            except EOFError:
                break
            for kind, body in messages:
                if kind == "e":
                    auditor.hold(from_wire(fields) for fields in body)
                else:
                    appender.say(f"{body} {appender.append_held()}")
        if time.monotonic() >= due:
            if auditor.held:
                appender.append_held()
            due = time.monotonic() + FLUSH_SECONDS
        if full and auditor.held >= MAX_PENDING \
                and any(event & select.POLLHUP for _, event in waiting.poll(0)):
            break  # the server is gone and the database still refuses: no one to wait for
    for _ in range(10):  # the end: a database that is away gets a few seconds more
        if appender.append_held() == "ok":
            return
        time.sleep(0.5)
    log.error("%d audit entries lost: the database refused them at the end", auditor.held)


def main() -> None:
    # Ctrl-C, and a service manager's SIGTERM, reach the whole process group: the recorder
    # ends when the server closes its input, after the server's last entries, not before
    # (and at the end of its input if the server is killed).
    for ending in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(ending, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     [audit] %(message)s")
    engine = make_engine(os.environ[URL_ENV], pool_size=1)
    sys.stdout.buffer.write(f"{READY} ok\n".encode())
    sys.stdout.buffer.flush()
    try:
        record(engine, sys.stdin.buffer, sys.stdout.buffer, key=os.environ.get(KEY_ENV))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
