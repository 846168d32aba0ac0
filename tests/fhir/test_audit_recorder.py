"""The audit recorder process, on SQLite and PostgreSQL: entries handed over are chained and
stored by the recorder, on its own beat or when flushed; a recorder that ends is replaced; the
server's close leaves nothing behind; without a recorder the server appends them itself."""

from __future__ import annotations

import io
import os
import select as io_select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import OperationalError

from yilian.fhir import audit, audit_recorder
from yilian.fhir.audit import AuditUnavailable, Entry, verify
from yilian.fhir.audit_recorder import RecordingAuditor, frame, record, to_wire
from yilian.fhir.store.tables import audit_entity, audit_log, audit_progress
from yilian.kit.db import make_engine, read_transaction
from yilian.kit.migrate import upgrade


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def auditor(engine: Engine) -> Iterator[RecordingAuditor]:
    auditor = RecordingAuditor(engine)
    yield auditor
    auditor.close()


def _read(n: int, who: str = "user a") -> Entry:
    return Entry("read", who, 0, source="10.0.0.7", path=f"GET Patient/{n}",
                 entities=(f"Patient/{n}",))


def _stored(engine: Engine) -> list[tuple[int, str, str]]:
    with read_transaction(engine) as conn:
        return [(row.seq, row.actor, row.reference) for row in conn.execute(
            select(audit_log.c.seq, audit_log.c.actor, audit_entity.c.reference)
            .join(audit_entity, audit_entity.c.seq == audit_log.c.seq)
            .order_by(audit_log.c.seq))]


def _chain(engine: Engine) -> tuple[int, object]:
    with read_transaction(engine) as conn:
        return verify(conn)


def test_flushed_entries_are_chained_by_the_recorder_in_order(
        engine: Engine, auditor: RecordingAuditor) -> None:
    auditor.start()
    recorder = auditor._child
    assert recorder is not None and recorder.poll() is None
    for n in range(1, 1001):
        auditor.later(_read(n))
    auditor.flush()
    stored = _stored(engine)
    assert [reference for _, _, reference in stored] == [f"Patient/{n}" for n in range(1, 1001)]
    assert _chain(engine) == (1000, None)
    assert auditor._child is recorder  # one recorder did it all
    with read_transaction(engine) as conn:
        entry = conn.execute(select(audit_log.c.entry).where(audit_log.c.seq == 1)).scalar_one()
    # The entry as the server made it: its moment (to the microsecond), source and path.
    event = audit.to_audit_event(1, entry)
    assert event["agent"][0]["network"]["address"] == "10.0.0.7"
    assert event["entity"][-1] == {"description": "GET Patient/1"}


def test_the_recorder_appends_on_its_own_beat(engine: Engine, auditor: RecordingAuditor
                                              ) -> None:
    for n in range(3):
        auditor.later(_read(n))
    deadline = time.monotonic() + 10
    while len(_stored(engine)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_stored(engine)) == 3  # no flush asked: the sender and the recorder's beats


def _stalled(auditor: RecordingAuditor, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small queue and a one-page pipe, so that a stopped recorder is felt at once."""
    monkeypatch.setattr(auditor, "max_pending", 20)
    monkeypatch.setattr(audit_recorder, "_PIPE_BYTES", 4096)
    monkeypatch.setattr(audit_recorder, "CATCH_UP_SECONDS", 0.3)


def test_a_full_queue_waits_for_the_recorder_then_fails(
        engine: Engine, auditor: RecordingAuditor, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database refuses, or the recorder is stuck: the queue stays bounded and callers
    get AuditUnavailable (a 503) after a bounded wait; nothing handed over is lost."""
    _stalled(auditor, monkeypatch)
    auditor.start()
    recorder = auditor._child
    assert recorder is not None
    os.kill(recorder.pid, signal.SIGSTOP)
    try:
        handed = 0
        with pytest.raises(AuditUnavailable) as refused:
            for n in range(20_000):
                handed += 1
                auditor.later(_read(n))
        assert handed < 1000  # a one-page pipe and twenty queued, not twenty thousand
        assert refused.value.http_status == 503
    finally:
        os.kill(recorder.pid, signal.SIGCONT)
    auditor.flush()
    assert auditor._child is recorder
    assert _chain(engine) == (handed, None)  # the refused caller's entry too


def test_the_recorder_outlives_a_process_groups_sigterm(
        engine: Engine, auditor: RecordingAuditor) -> None:
    """A service manager stops a server by signalling its whole group: the recorder ends
    when the server closes its input, after the server's last entries, not before."""
    auditor.start()
    recorder = auditor._child
    assert recorder is not None
    for ending in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        os.kill(recorder.pid, ending)
    auditor.later(_read(1))
    auditor.flush()
    assert auditor._child is recorder and recorder.poll() is None
    assert _stored(engine) == [(1, "user a", "Patient/1")]


def test_a_recorder_that_cannot_start_is_not_tried_every_beat(
        engine: Engine, auditor: RecordingAuditor, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """One that exits before it is ready (here: a database URL it cannot use) is never
    handed an entry; the server appends them itself from then on."""
    started: list[object] = []
    real_popen = audit_recorder.subprocess.Popen

    def counted(*args: object, **kwargs: object) -> object:
        started.append(args)
        return real_popen(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(audit_recorder.subprocess, "Popen", counted)
    monkeypatch.setattr(auditor, "_url", "nosuchdriver://nowhere")
    auditor.start()  # the server still starts
    assert auditor._child is None
    for n in range(3):
        auditor.later(_read(n))
        time.sleep(0.15)  # a sender's beat or more each
    auditor.flush()
    assert [ref for _, _, ref in _stored(engine)] == ["Patient/0", "Patient/1", "Patient/2"]
    assert len(started) == 1
    assert "no audit recorder could start" in caplog.text


def test_the_recorder_stops_reading_while_the_database_refuses(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """Entries it cannot append stay in the pipe, not in its memory; once the database
    takes them again, all go in."""
    monkeypatch.setattr(audit_recorder, "MAX_PENDING", 10)
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables yet: refused
    entries_in, entries_out = os.pipe()
    answers_in, answers_out = os.pipe()
    data = b"".join(frame(["e", [to_wire(_read(n))]]) for n in range(3000))

    def send() -> None:
        with os.fdopen(entries_out, "wb") as pipe:
            pipe.write(data)

    sender = threading.Thread(target=send)
    sender.start()
    with os.fdopen(entries_in, "rb") as source, os.fdopen(answers_out, "wb") as answers:
        recorder = threading.Thread(target=record, args=(engine, source, answers))
        recorder.start()
        time.sleep(1.5)
        assert sender.is_alive()  # blocked on a full pipe: the recorder reads no more
        upgrade(engine)  # the database takes entries again
        sender.join(timeout=30)
        recorder.join(timeout=30)
    with os.fdopen(answers_in, "rb") as answered:
        acks = [int(line[2:]) for line in answered.read().decode().split("\n") if line]
    assert not recorder.is_alive()
    assert _chain(engine) == (3000, None)
    # Acknowledged only once stored, in order: none while refused, all at the end.
    assert acks == sorted(set(acks)) and acks[-1] == 3000
    engine.dispose()


def test_an_append_cut_short_acknowledges_what_it_stored(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch refused, the entries one by one until the database goes away: the first
    few are stored, and acknowledged; the rest wait, and are acknowledged once stored. The
    progress stored with them says the same."""
    auditor = audit.Auditor(engine, progress_key="r1")
    answers = io.BytesIO()
    appender = audit_recorder._Appender(auditor, answers)
    auditor.hold(_read(n) for n in range(10))
    real_append, calls = audit.append, []

    def going_away(conn: object, entries: list[Entry], **progress: object) -> None:
        calls.append(len(entries))
        if len(calls) == 1 or len(calls) == 6:  # the batch, then the fifth alone
            raise OperationalError("INSERT", None, Exception("the database went away"))
        real_append(conn, entries, **progress)  # type: ignore[arg-type]

    def progress() -> int | None:
        with read_transaction(engine) as conn:
            return audit.progress_of(conn, "r1")

    monkeypatch.setattr(audit, "append", going_away)
    assert appender.append_held().startswith("failed: ")
    assert answers.getvalue() == b"a 4\n" and auditor.held == 6
    assert progress() == 4
    monkeypatch.setattr(audit, "append", real_append)
    assert appender.append_held() == "ok"
    assert answers.getvalue() == b"a 4\na 10\n"
    assert progress() == 10
    assert [ref for _, _, ref in _stored(engine)] == [f"Patient/{n}" for n in range(10)]


def test_a_recorder_holding_refused_entries_ends_with_its_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Reading no more, it still sees its input end (the server gone): it tries the
    database a last few times, says what is lost, and exits rather than live on."""
    monkeypatch.setattr(audit_recorder, "MAX_PENDING", 10)
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables: refused
    entries_in, entries_out = os.pipe()
    answers_in, answers_out = os.pipe()
    with os.fdopen(entries_out, "wb") as pipe:  # fits in the pipe, then the server is gone
        pipe.write(b"".join(frame(["e", [to_wire(_read(n))]]) for n in range(50)))
    with os.fdopen(entries_in, "rb") as source, os.fdopen(answers_out, "wb") as answers:
        recorder = threading.Thread(target=record, args=(engine, source, answers))
        recorder.start()
        recorder.join(timeout=30)
    os.close(answers_in)
    assert not recorder.is_alive()
    assert "audit entries lost: the database refused them at the end" in caplog.text
    engine.dispose()


def test_a_recorder_that_ended_is_replaced(engine: Engine, auditor: RecordingAuditor,
                                           caplog: pytest.LogCaptureFixture) -> None:
    auditor.later(_read(1))
    auditor.flush()
    first = auditor._child
    assert first is not None
    first.kill()
    first.wait()
    auditor.later(_read(2))
    auditor.flush()
    assert auditor._child is not None and auditor._child is not first
    assert [ref for _, _, ref in _stored(engine)] == ["Patient/1", "Patient/2"]
    assert _chain(engine) == (2, None)
    assert "the audit recorder ended" in caplog.text


def _stored_once_by_a_new_recorder(engine: Engine, auditor: RecordingAuditor,
                                   first: object, sent: int) -> None:
    """One more entry, flushed: a recorder other than `first` takes it, and the `sent`
    entries before it and it are each stored once, in order, the server holding none."""
    auditor.later(_read(sent))
    auditor.flush()
    assert auditor._child is not None and auditor._child is not first
    assert [ref for _, _, ref in _stored(engine)] == [f"Patient/{n}" for n in range(sent + 1)]
    assert _chain(engine) == (sent + 1, None)
    assert not auditor._unacked


def test_entries_a_recorder_had_not_stored_go_to_the_next_one(
        engine: Engine, auditor: RecordingAuditor, caplog: pytest.LogCaptureFixture) -> None:
    """Killed with entries sent to it and not stored, a recorder's replacement gets them:
    each stored once, in order."""
    auditor.start()
    first = auditor._child
    assert first is not None
    os.kill(first.pid, signal.SIGSTOP)  # it reads nothing more, stores nothing more
    for n in range(100):
        auditor.later(_read(n))
    deadline = time.monotonic() + 10
    while len(auditor._unacked) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)  # the sender's beat hands them over
    assert len(auditor._unacked) == 100 and not auditor._pending
    first.kill()
    first.wait()
    _stored_once_by_a_new_recorder(engine, auditor, first, 100)
    assert "entries it had not stored go to a new one" in caplog.text


def test_a_recorder_that_dies_before_confirming_its_append_has_nothing_sent_again(
        engine: Engine, auditor: RecordingAuditor, caplog: pytest.LogCaptureFixture) -> None:
    """Killed after committing 50 entries and before the server heard its "a 50": the
    progress it stored with them says they are done, so the next recorder does not get
    them again. Each stored once, in order; the dead recorder's progress is forgotten."""
    auditor.start()
    first = auditor._child
    assert first is not None and first.stdout is not None
    with auditor._pipe:  # the sender thread stays out: no acknowledgement is read
        for n in range(50):
            auditor.later(_read(n))
        auditor._send_locked()
        assert len(auditor._unacked) == 50
        deadline = time.monotonic() + 10
        while len(_stored(engine)) < 50 and time.monotonic() < deadline:
            time.sleep(0.05)  # the recorder's own beat appends them
        said = b""
        while b"a 50\n" not in said and time.monotonic() < deadline:
            if io_select.select([first.stdout], [], [], 0.1)[0]:  # the line the server misses
                said += os.read(first.stdout.fileno(), 1 << 16)
        assert b"a 50\n" in said
        first.kill()
        first.wait()
    assert len(auditor._unacked) == 50
    _stored_once_by_a_new_recorder(engine, auditor, first, 50)
    assert "storing 50 entries it had not confirmed" in caplog.text
    with read_transaction(engine) as conn:
        recorders = conn.execute(select(audit_progress.c.recorder)).scalars().all()
    assert recorders == [auditor._key]  # the running recorder's alone


def test_stored_entries_are_acknowledged_and_forgotten(engine: Engine,
                                                      auditor: RecordingAuditor) -> None:
    """The server keeps an entry until the recorder says it is stored: after a flush, or
    the recorder's own beat, it holds none."""
    for n in range(10):
        auditor.later(_read(n))
    auditor.flush()
    assert not auditor._unacked
    for n in range(10, 15):
        auditor.later(_read(n))
    deadline = time.monotonic() + 10
    while (len(_stored(engine)) < 15 or auditor._unacked) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_stored(engine)) == 15 and not auditor._unacked  # no flush asked


def test_close_appends_what_is_held_and_ends_the_recorder(engine: Engine) -> None:
    auditor = RecordingAuditor(engine)
    for n in range(5):
        auditor.later(_read(n))
    recorder = auditor._child
    auditor.close()
    assert _chain(engine) == (5, None)
    if recorder is not None:  # the sender may not have started it before close
        assert recorder.poll() == 0


def test_without_a_recorder_the_server_appends_the_entries(
        engine: Engine, auditor: RecordingAuditor, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def cannot_start() -> None:
        raise OSError("no such interpreter")

    monkeypatch.setattr(auditor, "_start", cannot_start)
    auditor.later(_read(1))
    auditor.flush()
    assert [ref for _, _, ref in _stored(engine)] == ["Patient/1"]
    assert "cannot take entries: no such interpreter" in caplog.text


def test_entries_from_several_threads_are_all_recorded(engine: Engine,
                                                       auditor: RecordingAuditor) -> None:
    def hand_over(who: str) -> None:
        for n in range(500):
            auditor.later(_read(n, who))

    threads = [threading.Thread(target=hand_over, args=(f"user {t}",)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    auditor.flush()
    stored = _stored(engine)
    assert len(stored) == 2000 and len({(actor, ref) for _, actor, ref in stored}) == 2000
    assert _chain(engine) == (2000, None)


def test_frames_split_across_reads_are_put_back_together(engine: Engine) -> None:
    """The recorder's loop itself, on a pipe written a byte at a time."""
    entries_in, entries_out = os.pipe()
    answers_in, answers_out = os.pipe()
    data = (frame(["e", [to_wire(_read(n)) for n in range(3)]]) + frame(["f", 7])
            + frame(["e", [to_wire(_read(3))]]))

    def send() -> None:
        for offset in range(len(data)):
            os.write(entries_out, data[offset:offset + 1])
        os.close(entries_out)

    sender = threading.Thread(target=send)
    sender.start()
    with os.fdopen(entries_in, "rb") as source, os.fdopen(answers_out, "wb") as answers:
        record(engine, source, answers)
    sender.join()
    with os.fdopen(answers_in, "rb") as answered:
        # Each append acknowledged (the first N entries stored), the flush answered after.
        assert answered.read() == b"a 3\n7 ok\na 4\n"
    assert [ref for _, _, ref in _stored(engine)] == [f"Patient/{n}" for n in range(4)]


def test_reads_over_http_are_recorded_by_the_recorder(database_url: str) -> None:
    """A server as `yilian serve` makes it: its lifespan starts the recorder, reads leave
    their entries through it, and shutting down leaves no recorder behind."""
    from fhir_helpers import FHIR_JSON, authorized
    from starlette.testclient import TestClient

    from yilian.api.app import create_app
    from yilian.config import Settings

    app = create_app(Settings(database_url=database_url, base_url="http://testserver/fhir",
                              audit_recorder="process"))
    auditor = app.state.audit
    assert isinstance(auditor, RecordingAuditor)
    with TestClient(app, base_url="http://testserver") as raw:
        client = authorized(raw)
        recorder = auditor._child
        assert recorder is not None and recorder.poll() is None  # started with the server
        created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                              headers=FHIR_JSON)
        patient = f"Patient/{created.json()['id']}"
        for _ in range(3):
            assert client.get(f"/fhir/{patient}").status_code == 200
        auditor.flush()
        engine: Engine = app.state.engine
        with read_transaction(engine) as conn:
            reads = conn.execute(
                select(func.count()).select_from(audit_log.join(
                    audit_entity, audit_entity.c.seq == audit_log.c.seq))
                .where(audit_entity.c.reference == patient, audit_log.c.subtype == "read")
            ).scalar_one()
        assert reads == 3
    assert recorder.poll() == 0
    assert _chain(app.state.engine)[1] is None
    app.state.engine.dispose()
