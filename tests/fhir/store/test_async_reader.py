"""Reads by id batched onto asynchronous PostgreSQL connections: each read gets its own
answer, whatever else shares its batch."""

from __future__ import annotations

import asyncio

import pytest
from fhir_helpers import patient
from starlette.testclient import TestClient

from yilian.fhir.store.sql import AsyncFastReader
from yilian.kit.db import make_autocommit_engine


def test_concurrent_reads_share_batches_and_get_their_own_answers(
    client: TestClient, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the batched asynchronous reader serves PostgreSQL only")
    ids = []
    for n in range(12):
        answer = client.post("/fhir/Patient", json=patient(family=f"Batch{n}"))
        ids.append(answer.json()["id"])
    deleted = ids.pop()
    assert client.delete(f"/fhir/Patient/{deleted}").status_code in (200, 204)
    engine = make_autocommit_engine(database_url)
    reader = AsyncFastReader(engine, size=2)

    async def read_all() -> list[object]:
        # Each id twice, a deleted one, an unknown one, another type with a known id:
        # 26 reads at once on a pool of 2 connections.
        keys = [("Patient", i) for i in ids * 2]
        keys += [("Patient", deleted), ("Patient", "nobody"), ("Observation", ids[0])]
        try:
            return list(await asyncio.gather(*(reader.current(t, i) for t, i in keys)))
        finally:
            await reader.close()

    found = asyncio.run(read_all())
    engine.dispose()
    for n, stored in enumerate(found[:22]):
        assert stored is not None
        assert stored.res_id == ids[n % 11]  # type: ignore[attr-defined]
        assert f"Batch{n % 11}".encode() in stored.content  # type: ignore[attr-defined]
    tombstone, unknown, other_type = found[22:]
    assert tombstone is not None and tombstone.deleted  # type: ignore[attr-defined]
    assert unknown is None
    assert other_type is None


def test_batched_reads_answer_what_the_thread_reader_answers(
    client: TestClient, database_url: str
) -> None:
    """Binary rows and array literals: the same StoredVersion, to the byte and the
    microsecond, as the synchronous reader's; keys that an array literal would misread
    (NULL, quotes, backslashes, commas, braces) are looked up as the strings they are."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the batched asynchronous reader serves PostgreSQL only")
    from yilian.fhir.store.sql import FastReader

    ids = [client.post("/fhir/Patient", json=patient(family=f"Same{n}")).json()["id"]
           for n in range(3)]
    client.put("/fhir/Patient/NULL", json={**patient(family="Null"), "id": "NULL"})
    keys = [("Patient", i) for i in [*ids, "NULL"]]
    keys += [("Patient", odd) for odd in ('a"b', "a\\b", "a,b", "{a}", "")]
    engine = make_autocommit_engine(database_url)
    reader = AsyncFastReader(engine, size=1)
    thread_reader = FastReader(engine)

    async def read_all() -> list[object]:
        try:
            return list(await asyncio.gather(*(reader.current(t, i) for t, i in keys)))
        finally:
            await reader.close()

    try:
        batched = asyncio.run(read_all())
        one_by_one = [thread_reader.current(t, i) for t, i in keys]
    finally:
        thread_reader.close()
        engine.dispose()
    assert batched == one_by_one
    assert all(found is not None for found in batched[:4])
    assert batched[4:] == [None] * 5
    first = batched[0]
    assert isinstance(first.content, bytes)  # type: ignore[attr-defined]
    assert first.last_updated.utcoffset() is not None  # type: ignore[attr-defined]


def test_a_cancelled_read_leaves_the_others_of_its_batch_their_answers(
    client: TestClient, database_url: str
) -> None:
    """A client gone mid-read cancels its own read only, even when another read of the
    same resource waits on the same batch."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the batched asynchronous reader serves PostgreSQL only")
    known = client.post("/fhir/Patient", json=patient(family="Cancelled")).json()["id"]
    engine = make_autocommit_engine(database_url)
    reader = AsyncFastReader(engine, size=1)

    async def read_some() -> tuple[list[object], bool]:
        try:
            reads = [asyncio.ensure_future(reader.current("Patient", known)) for _ in range(3)]
            await asyncio.sleep(0)  # all three join the first batch
            reads[1].cancel()
            first, third = await reads[0], await reads[2]
            later = await reader.current("Patient", known)  # the reader goes on serving
            return [first, third, later], reads[1].cancelled()
        finally:
            await reader.close()

    try:
        answers, cancelled = asyncio.run(read_some())
    finally:
        engine.dispose()
    assert cancelled
    assert all(a is not None and a.res_id == known for a in answers)  # type: ignore[attr-defined]
