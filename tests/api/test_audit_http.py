"""The audit trail, on SQLite and PostgreSQL: every interaction leaves an entry (a write's in
its own transaction), a privacy officer searches them, and the hash chain shows any entry
changed, removed or put in afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from fhir_helpers import FHIR_JSON
from sqlalchemy import Engine, delete, func, insert, select, update
from starlette.testclient import TestClient
from typer.testing import CliRunner

from yilian.auth.tokens import Keys, issue
from yilian.cli.main import app as cli
from yilian.config import Settings
from yilian.fhir.audit import GENESIS, Auditor, Entry, append, verify
from yilian.fhir.store.tables import audit_entity, audit_log
from yilian.kit.db import read_transaction, write_transaction


@pytest.fixture(params=["process", "thread"])
def settings(database_url: str, request: pytest.FixtureRequest) -> Settings:
    """The server's two ways of appending later entries (config.Settings.audit_recorder)."""
    return Settings(database_url=database_url, base_url="http://testserver/fhir",
                    audit_recorder=request.param)


def _bearer(client: TestClient, scope: str, subject: str) -> dict[str, str]:
    keys: Keys = client.app.state.keys  # type: ignore[attr-defined]
    return {"Authorization": f"Bearer {issue(keys, subject=subject, scope=scope).token}"}


def _trail(client: TestClient, query: str = "") -> list[dict[str, Any]]:
    client.app.state.audit.flush()  # type: ignore[attr-defined]
    officer = _bearer(client, "user/AuditEvent.rs", "privacy.officer")
    response = client.get(f"/fhir/$audit-trail?{query}", headers=officer)
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json().get("entry", [])]


def _entries(client: TestClient) -> int:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    with read_transaction(engine) as conn:
        return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())


def test_every_interaction_leaves_an_entry(client: TestClient) -> None:
    doctor = _bearer(client, "user/*.cruds", "dr.li")
    before = _entries(client)
    created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers={**FHIR_JSON, **doctor})
    patient = f"Patient/{created.json()['id']}"
    # The write's entry is there before any background work: it came with the write.
    assert _entries(client) == before + 1
    client.get(f"/fhir/{patient}", headers=doctor)
    client.get("/fhir/Patient?gender=male", headers=doctor)
    client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": "xyz"},
                headers={**FHIR_JSON, **doctor})
    client.get(f"/fhir/{patient}", headers={"Authorization": ""})
    client.get("/fhir/Observation", headers=_bearer(client, "user/Patient.rs", "clerk"))

    about = _trail(client, f"entity={patient}")
    assert [e["subtype"][0]["code"] for e in about] == ["read", "create"]
    assert {e["agent"][0]["who"]["display"] for e in about} == {"user dr.li"}
    assert about[1]["action"] == "C" and about[1]["outcome"] == "0"
    failures = _trail(client, "outcome=4")
    assert {(e["subtype"][0]["code"], e["agent"][0]["who"]["display"]) for e in failures} == {
        ("create", "user dr.li"), ("read", "anonymous"), ("search-type", "user clerk")}
    refused = next(e for e in failures if e["agent"][0]["who"]["display"] == "user clerk")
    assert "YL-4030" in refused["outcomeDesc"]
    searches = _trail(client, "agent-name=user dr.li&subtype=search-type")
    assert searches[0]["entity"][-1]["description"] == "GET Patient?gender=male"
    with read_transaction(client.app.state.engine) as conn:  # type: ignore[attr-defined]
        checked, broken = verify(conn)
    assert broken is None and checked == _entries(client)


def test_a_write_that_fails_leaves_its_entry_but_not_the_write(client: TestClient) -> None:
    writer = _bearer(client, "user/Patient.cu", "nurse.wang")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "id": "t1"},
         "request": {"method": "PUT", "url": "Patient/t1"}},
        {"resource": {"resourceType": "Observation", "status": "final",
                      "code": {"text": "x"}},
         "request": {"method": "POST", "url": "Observation"}}]}
    assert client.post("/fhir", json=bundle, headers={**FHIR_JSON, **writer}).status_code == 403
    [entry] = _trail(client, "agent-name=user nurse.wang")
    assert entry["subtype"][0]["code"] == "transaction" and entry["outcome"] == "4"
    assert client.get("/fhir/Patient/t1").status_code == 404


def test_only_a_privacy_officer_reads_the_trail(client: TestClient) -> None:
    everything = _bearer(client, "user/*.cruds system/*.cruds", "admin")
    assert client.get("/fhir/$audit-trail", headers=everything).status_code == 403
    officer = _bearer(client, "user/AuditEvent.rs", "privacy.officer")
    assert client.get("/fhir/Patient", headers=officer).status_code == 403
    page = client.get("/fhir/$audit-trail?_count=1", headers=officer).json()
    assert page["type"] == "searchset"
    assert client.get("/fhir/$audit-trail?nonsense=1", headers=officer).status_code == 400
    # AuditEvents that other systems send are stored like any resource, for the same readers.
    sent = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded":
            "2026-11-24T08:00:00Z", "agent": [{"requestor": True}],
            "source": {"observer": {"display": "LIS"}}}
    assert client.post("/fhir/AuditEvent", json=sent,
                       headers={**FHIR_JSON, **everything}).status_code == 403


def test_the_chain_shows_what_was_changed_removed_or_put_in(engine: Engine) -> None:
    with write_transaction(engine) as conn:
        append(conn, [Entry("read", f"user u{n}", 0, entities=(f"Patient/{n}",))
                      for n in range(5)])
    with read_transaction(engine) as conn:
        assert verify(conn) == (5, None)

    def broken() -> tuple[int, str]:
        with read_transaction(engine) as conn:
            _, found = verify(conn)
        assert found is not None
        return found.seq, found.why

    with write_transaction(engine) as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3).values(
            entry=conn.execute(select(audit_log.c.entry).where(audit_log.c.seq == 3))
            .scalar_one().replace("user u2", "user someone")))
    assert broken() == (3, "was changed after it was written")
    runner = CliRunner()
    url = engine.url.render_as_string(hide_password=False)
    result = runner.invoke(cli, ["audit", "verify", "--db", url])
    assert result.exit_code == 1 and "broken at entry 3" in result.output


@pytest.mark.parametrize("damage", ["delete middle", "delete last", "insert"])
def test_removed_or_inserted_entries_break_the_chain(engine: Engine, damage: str) -> None:
    with write_transaction(engine) as conn:
        append(conn, [Entry("read", "user u", 0) for _ in range(4)])
    with write_transaction(engine) as conn:
        if damage == "delete middle":
            conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
        elif damage == "delete last":
            conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
        else:
            row = conn.execute(select(audit_log).where(audit_log.c.seq == 4)).one()
            conn.execute(delete(audit_log).where(audit_log.c.seq == 4))
            conn.execute(insert(audit_log).values(
                seq=4, recorded=row.recorded, actor="user forger", subtype="read", outcome=0,
                entry=row.entry.replace("user u", "user forger"), prev_hash=row.prev_hash,
                hash=GENESIS))
    with read_transaction(engine) as conn:
        checked, found = verify(conn)
    assert found is not None and found.seq == {"delete middle": 2, "delete last": 4,
                                               "insert": 4}[damage]
    assert checked == found.seq - 1


@pytest.mark.parametrize("seq", [3, -1])
def test_an_entity_row_without_its_entry_breaks_the_trail(engine: Engine, seq: int) -> None:
    """Nothing ties an entity row to its entry in the schema (no foreign key, for speed):
    `verify` finds one put in with no entry, which searches of the trail would show."""
    with write_transaction(engine) as conn:
        append(conn, [Entry("read", "user u", 0, entities=("Patient/1",)) for _ in range(2)])
    with read_transaction(engine) as conn:
        assert verify(conn) == (2, None)
    with write_transaction(engine) as conn:
        conn.execute(insert(audit_entity).values(seq=seq, reference="Patient/2"))
    with read_transaction(engine) as conn:
        checked, found = verify(conn)
    assert checked == 2 and found is not None
    assert (found.seq, found.why) == (seq, "has an entity row but no entry")


def test_buffered_entries_are_written_when_the_auditor_closes(
        engine: Engine) -> None:
    auditor = Auditor(engine)
    auditor.later(Entry("read", "user a", 0, entities=("Patient/1",)))
    auditor.close()
    with read_transaction(engine) as conn:
        assert verify(conn) == (1, None)


@pytest.mark.parametrize("column", ["actor", "entity"])
def test_an_edit_of_what_searches_read_breaks_the_chain_too(engine: Engine, column: str) -> None:
    from yilian.fhir.store.tables import audit_entity

    with write_transaction(engine) as conn:
        append(conn, [Entry("read", "user u", 0, entities=("Patient/1",)) for _ in range(3)])
    with write_transaction(engine) as conn:
        if column == "actor":
            conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(actor="user x"))
        else:
            conn.execute(update(audit_entity).where(audit_entity.c.seq == 2)
                         .values(reference="Patient/2"))
    with read_transaction(engine) as conn:
        checked, found = verify(conn)
    assert found is not None and found.seq == 2 and checked == 1


def test_the_trail_finds_an_entry_by_each_thing_it_is_about(client: TestClient) -> None:
    doctor = _bearer(client, "user/*.cruds", "dr.li")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": f"urn:uuid:{n}", "request": {"method": "POST", "url": "Patient"},
         "resource": {"resourceType": "Patient", "gender": "male"}}
        for n in ("3fa85f64-5717-4562-b3fc-2c963f66afa6", "4fa85f64-5717-4562-b3fc-2c963f66afa6")]}
    answer = client.post("/fhir", json=bundle, headers={**FHIR_JSON, **doctor})
    assert answer.status_code == 200, answer.text
    first, second = (e["response"]["location"].split("/_history")[0]
                     for e in answer.json()["entry"])
    client.get(f"/fhir/{second}", headers=doctor)

    def subtypes(query: str) -> list[str]:
        return [e["subtype"][0]["code"] for e in _trail(client, query)]

    assert subtypes(f"entity={first}") == ["transaction"]
    assert subtypes(f"entity={second}") == ["read", "transaction"]
    assert subtypes(f"entity=Patient/none,{first}") == ["transaction"]
    assert subtypes(f"entity={first}&subtype=read") == []
    with read_transaction(client.app.state.engine) as conn:  # type: ignore[attr-defined]
        assert verify(conn)[1] is None


def test_odd_numbers_in_the_trail_search_are_not_a_500(client: TestClient) -> None:
    officer = _bearer(client, "user/AuditEvent.rs", "privacy.officer")
    for query in ("_id=%C2%B2", "_count=%C2%B2", "_cursor=99999999999999999999999",
                  "_id=99999999999999999999999"):
        assert client.get(f"/fhir/$audit-trail?{query}", headers=officer).status_code < 500


def test_a_backlog_is_written_by_the_caller(engine: Engine, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    auditor = Auditor(engine)
    monkeypatch.setattr(auditor, "max_pending", 3)
    auditor._stop = True  # no background thread: only the backlog rule writes
    for n in range(3):
        auditor.later(Entry("read", f"user {n}", 0))
    with read_transaction(engine) as conn:
        assert verify(conn) == (3, None)


def test_a_head_kept_elsewhere_shows_the_end_was_cut(engine: Engine) -> None:
    from yilian.fhir.audit import head
    from yilian.fhir.store.tables import audit_entity, audit_head

    with write_transaction(engine) as conn:
        append(conn, [Entry("read", "user u", 0, entities=("Patient/1",)) for _ in range(4)])
    runner = CliRunner()
    url = engine.url.render_as_string(hide_password=False)
    kept = runner.invoke(cli, ["audit", "head", "--db", url]).stdout.strip()
    with read_transaction(engine) as conn:
        assert kept == "{}:{}".format(*head(conn))
    # Cut the last two entries and make the head agree: the chain alone cannot tell.
    with write_transaction(engine) as conn:
        second = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == 2)).scalar_one()
        conn.execute(delete(audit_entity).where(audit_entity.c.seq > 2))
        conn.execute(delete(audit_log).where(audit_log.c.seq > 2))
        conn.execute(update(audit_head).values(seq=2, hash=second))
    assert runner.invoke(cli, ["audit", "verify", "--db", url]).exit_code == 0
    cut = runner.invoke(cli, ["audit", "verify", "--expect", kept, "--db", url])
    assert cut.exit_code == 1 and "broken at entry 4" in cut.output


def test_reads_are_refused_while_their_entries_cannot_be_handed_over(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stuck recorder (or a database refusing its entries) fills the pipe and then the
    server's bounded queue: reads then answer 503 after a bounded wait, never unaudited, and
    every read answered has its entry once the recorder goes on."""
    import fcntl
    import os
    import signal

    from yilian.fhir import audit_recorder
    from yilian.fhir.audit_recorder import RecordingAuditor

    auditor = client.app.state.audit  # type: ignore[attr-defined]
    if not isinstance(auditor, RecordingAuditor):
        pytest.skip("the thread appends in the request itself: nothing to hand over")
    doctor = _bearer(client, "user/*.cruds", "dr.li")
    created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers={**FHIR_JSON, **doctor})
    patient = f"Patient/{created.json()['id']}"
    auditor.flush()
    recorder = auditor._child
    assert recorder is not None and recorder.stdin is not None
    fcntl.fcntl(recorder.stdin.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    monkeypatch.setattr(auditor, "max_pending", 5)
    monkeypatch.setattr(audit_recorder, "CATCH_UP_SECONDS", 0.2)
    os.kill(recorder.pid, signal.SIGSTOP)
    try:
        statuses = []
        for _ in range(500):
            statuses.append(client.get(f"/fhir/{patient}", headers=doctor).status_code)
            if statuses[-1] != 200:
                break
        refused = client.get(f"/fhir/{patient}", headers=doctor)
    finally:
        os.kill(recorder.pid, signal.SIGCONT)
    assert statuses[-1] == 503 and refused.status_code == 503
    assert "YL-0503" in refused.text and refused.json()["resourceType"] == "OperationOutcome"
    answered = statuses.count(200)
    reads = [e for e in _trail(client, f"entity={patient}&_count=1000")
             if e["subtype"][0]["code"] == "read"]
    assert len(reads) >= answered  # refused ones may have their entry too: they were queued
