"""Fixtures: a migrated database per test on SQLite and (when it answers) PostgreSQL.

PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth, database `test`);
override with YILIAN_TEST_POSTGRES_URL. Each xdist worker uses a schema of its own.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fhir_helpers import admin_token, authorized
from servers import free_port, serving
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from yilian.api.app import create_app
from yilian.config import Settings
from yilian.fhir.store.tables import metadata
from yilian.kit.db import make_engine
from yilian.kit.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "YILIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# Each server process's audit recorder is a process of its own (fhir/audit_recorder.py),
# ~0.4 s to start: the apps the tests make by the thousand append with a thread instead; the
# audit trail's tests run both (api/test_audit_http.py, fhir/test_audit_recorder.py).
os.environ.setdefault("YILIAN_AUDIT_RECORDER", "thread")
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            pass
    except OSError:
        return False
    try:
        engine = make_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


POSTGRES_AVAILABLE = _postgres_answers()
NO_POSTGRES = (
    "PostgreSQL is not answering at 127.0.0.1:5432 (user postgres, database test): "
    "the PostgreSQL half of this test did not run. Start it with "
    "`pg_ctlcluster --skip-systemctl-redirect 15 main start`."
)


@pytest.fixture(scope="session")
def worker_name(worker_id: str) -> str:
    return worker_id if worker_id != "master" else "main"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_schema_url(worker_name: str) -> Iterator[str]:
    if not POSTGRES_AVAILABLE:
        pytest.skip(NO_POSTGRES)
    schema = f"yilian_test_{worker_name}"
    admin = make_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """A migrated, empty database: a fresh SQLite file, or the worker's truncated schema."""
    if request.param == "sqlite":
        path = tmp_path / "yilian.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_schema_url")
    engine = make_engine(url)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, base_url="http://testserver/fhir")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield authorized(test_client)
    app.state.engine.dispose()


@pytest.fixture
def engine(client: TestClient) -> Engine:
    engine: Engine = client.app.state.engine  # type: ignore[attr-defined]
    return engine


# The admin token of each live server, by its FHIR base (see `live_headers`).
live_tokens: dict[str, str] = {}


@pytest.fixture
def live_headers(live_server: str) -> dict[str, str]:
    """The Authorization header for requests to `live_server`."""
    return {"Authorization": f"Bearer {live_tokens[live_server]}"}


@pytest.fixture
def live_server(database_url: str) -> Iterator[str]:
    """A real uvicorn server on a free loopback port, for clients that need a socket."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(Settings(database_url=database_url, base_url=f"{base}/fhir"))
    with serving(app, port):
        live_tokens[f"{base}/fhir"] = admin_token(app.state.keys)
        yield f"{base}/fhir"


