"""Fresh, migrated databases: a new SQLite file, or a PostgreSQL schema dropped and recreated."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import make_url, text

from bench.loadgen import processes_named
from yilian.kit.db import make_engine
from yilian.kit.migrate import upgrade

KINDS = ("sqlite", "postgresql")
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def database_pids(kind: str) -> Callable[[], list[int]] | None:
    """The processes of the bench's database server, when it runs on this machine (PostgreSQL
    at a loopback address): their CPU shares the two cores with the server and the load.
    None for SQLite, whose work is the server's own."""
    host = make_url(POSTGRES_URL).host
    if kind != "postgresql" or host not in ("127.0.0.1", "localhost", "::1", None):
        return None
    return lambda: processes_named("postgres")


def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used, or None when it answers."""
    from sqlalchemy import create_engine

    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return f"PostgreSQL does not answer at {POSTGRES_URL}: {first}"
    finally:
        engine.dispose()
    return None


def _schema(label: str) -> str:
    return "yilian_bench" if label == "server" else f"yilian_bench_{label}"


def fresh_database(kind: str, label: str, workdir: Path) -> str:
    """An empty database at the newest schema revision; returns its URL."""
    if kind == "sqlite":
        path = workdir / f"{label}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    elif kind == "postgresql":
        schema = _schema(label)
        admin = make_engine(POSTGRES_URL, pool_size=1)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    else:
        raise ValueError(f"unknown database kind {kind!r}")
    engine = make_engine(url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    return url


def analyze(url: str) -> None:
    """PostgreSQL: the planner's statistics gathered now, after a bulk load, as autovacuum
    gathers them within a minute or so of it: otherwise whether a load phase runs on plans
    made before or after that pass (and pays for the pass) is a matter of timing. SQLite:
    nothing; the server plans there without statistics (kit/sqlhints.py)."""
    if not url.startswith("postgresql"):
        return
    engine = make_engine(url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def drop_database(kind: str, label: str, workdir: Path) -> None:
    if kind == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{workdir / label}.db{suffix}").unlink(missing_ok=True)
        return
    admin = make_engine(POSTGRES_URL, pool_size=1)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{_schema(label)}" CASCADE'))
    admin.dispose()
