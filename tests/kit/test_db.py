"""SQLite writers across processes: they queue on the writer lock and none is refused."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from sqlalchemy import Connection, text

from yilian.kit.db import make_engine, run_write

WRITERS = 3
THREADS = 3
ROWS = 40  # per thread


def _write_rows(url: str, writer: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    engine = make_engine(url)

    def rows(thread: int) -> None:
        for row in range(ROWS):
            # Read, then write from what was read: only a real lock keeps counts exact.
            def bump(conn: Connection, key: str = f"{writer}-{thread}-{row}") -> None:
                total = conn.execute(text("SELECT total FROM counter")).scalar_one()
                conn.execute(text("UPDATE counter SET total = :t"), {"t": total + 1})
                conn.execute(text("INSERT INTO seen (key) VALUES (:k)"), {"k": key})

            run_write(engine, bump)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(rows, range(THREADS)))
    engine.dispose()


def test_processes_queue_on_the_sqlite_writer_lock(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/queue.db"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counter (total INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
        conn.execute(text("CREATE TABLE seen (key TEXT PRIMARY KEY)"))
    spawn = multiprocessing.get_context("spawn")
    processes = [spawn.Process(target=_write_rows, args=(url, n)) for n in range(WRITERS)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT total FROM counter")).scalar_one() == (
            WRITERS * THREADS * ROWS
        )
        assert conn.execute(text("SELECT count(*) FROM seen")).scalar_one() == (
            WRITERS * THREADS * ROWS
        )
    assert (tmp_path / "queue.db-writer.lock").exists()
    engine.dispose()
