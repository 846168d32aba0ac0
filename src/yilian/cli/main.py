"""The `yilian` command: serve, migrate, load, reindex, users and tokens."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from yilian.cli.access import audit_app, clients_app, token_app, users_app
from yilian.cli.demo import demo
from yilian.config import Settings

app = typer.Typer(help="Yilian (医联): one FHIR R4 record for a hospital network.",
                  no_args_is_help=True)
db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")
search_app = typer.Typer(help="The search index.", no_args_is_help=True)
app.add_typer(search_app, name="search")
app.add_typer(users_app, name="users")
app.add_typer(token_app, name="token")
app.add_typer(clients_app, name="clients")
app.add_typer(audit_app, name="audit")
app.command("demo")(demo)
console = Console(stderr=True)

DbOption = Annotated[str | None, typer.Option("--db", help="Database URL (YILIAN_DATABASE_URL)")]


def _settings(db: str | None = None, **overrides: object) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    if db:
        values["database_url"] = db
    return Settings(**values)  # type: ignore[arg-type]


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema to the newest revision, and store the server's own
    OperationDefinitions."""
    from yilian.domains.inpatient import setup as inpatient
    from yilian.fhir.operations import publish
    from yilian.fhir.router import FhirRouter, RouterOptions, default_operations
    from yilian.fhir.search.extract import extract_index_rows
    from yilian.fhir.store.sql import WriteHook
    from yilian.kit.db import make_engine
    from yilian.kit.migrate import current_revision, upgrade

    settings = _settings(db)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    operations, hooks = default_operations(), dict[str, list[WriteHook]]()
    inpatient.install(operations, hooks)
    router = FhirRouter(engine, indexer=extract_index_rows, audit=None,
                        options=RouterOptions(operations=operations, write_hooks=hooks))
    published = publish(operations, lambda request: router.handle(request, "urn:yilian:cli"))
    console.print(f"[green]Database at revision {current_revision(engine)}[/] "
                  f"({engine.url.render_as_string(hide_password=True)}); "
                  f"{published} OperationDefinitions stored", soft_wrap=True)
    engine.dispose()


@app.command()
def serve(
    db: DbOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes")] = None,
) -> None:
    """Serve the FHIR API (and, as they arrive, the domain APIs and pages)."""
    from sqlalchemy import make_url

    from yilian.kit.http_server import run

    settings = _settings(db, host=host, port=port, workers=workers)
    os.environ["YILIAN_DATABASE_URL"] = settings.database_url  # for worker processes
    console.print(
        f"[bold green]Yilian[/] serving FHIR R4 at http://{settings.host}:{settings.port}/fhir "
        f"(database {make_url(settings.database_url).render_as_string(hide_password=True)})",
        soft_wrap=True,
    )
    run("yilian.api.asgi:app", host=settings.host, port=settings.port,
        workers=settings.workers)


@app.command()
def load(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: JSON, Bundles, NDJSON")],
    db: DbOption = None,
    no_validate: Annotated[bool, typer.Option("--no-validate",
                                              help="Skip R4 validation (trusted data)")] = False,
) -> None:
    """Load FHIR resources with a progress bar and a summary."""
    from yilian.cli.loader import LoadSummary, expand_paths, iter_documents, load_document
    from yilian.domains.inpatient.setup import write_hooks as inpatient_write_hooks
    from yilian.fhir.audit import Auditor
    from yilian.fhir.router import FhirRouter, RouterOptions
    from yilian.fhir.search.extract import extract_index_rows, warm_up
    from yilian.kit import heap
    from yilian.kit.db import make_engine

    settings = _settings(db)
    files = expand_paths(paths)
    missing = [p for p in files if not p.exists()]
    if missing:
        console.print(f"[red]No such file: {missing[0]}[/]")
        raise typer.Exit(2)
    engine = make_engine(settings.database_url)
    auditor = Auditor(engine)  # loads are writes like any other: each leaves its entry
    router = FhirRouter(engine, indexer=extract_index_rows, audit=auditor,
                        options=RouterOptions(validate=not no_validate,
                                              write_hooks=inpatient_write_hooks()))
    warm_up()
    heap.settle()
    summary = LoadSummary()
    base_url = _fhir_base(settings)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("Loading", total=len(files))
        for path in files:
            progress.update(task, description=f"Loading {path.name[:40]}")
            for label, document in iter_documents(path):
                try:
                    load_document(router, label, document, summary, base_url)
                except Exception as error:  # a bug must not stop a long load half-way
                    summary.counts["failed"] += 1
                    summary.failures.append((label, f"internal error ({type(error).__name__})"))
            progress.advance(task)
    auditor.close()
    engine.dispose()
    more = "".join(f", {kind} {summary.counts[kind]}" for kind in ("deleted", "read")
                   if summary.counts[kind])
    console.print(
        f"created {summary.counts['created']}, updated {summary.counts['updated']}, "
        f"failed {summary.counts['failed']}{more}"
    )
    for where, why in summary.failures[:50]:
        console.print(f"  [red]failed[/] {where}: {why}")
    if len(summary.failures) > 50:
        console.print(f"  ... and {len(summary.failures) - 50} more")
    if summary.counts["failed"]:
        raise typer.Exit(1)


@search_app.command("reindex")
def search_reindex(
    db: DbOption = None,
    types: Annotated[list[str] | None, typer.Option(
        "--type", help="Only resources of this type (repeatable); all when omitted")] = None,
) -> None:
    """Rebuild the search index rows of stored resources, batch by batch."""
    from yilian.fhir.definitions import resource_types
    from yilian.fhir.search import reindex
    from yilian.fhir.search.extract import warm_up
    from yilian.kit.db import make_engine

    unknown = [t for t in types or [] if t not in resource_types()]
    if unknown:
        console.print(f"[red]Unknown resource type: {', '.join(unknown)}[/]")
        raise typer.Exit(2)
    settings = _settings(db)
    engine = make_engine(settings.database_url)
    warm_up()
    total = reindex.count(engine, types)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("Reindexing", total=total)
        done = reindex.reindex(engine, types, local_base=_fhir_base(settings),
                               progress=lambda n: progress.advance(task, n))
    engine.dispose()
    console.print(f"reindexed {done} resources" + (f" of {', '.join(types)}" if types else ""))


def _fhir_base(settings: Settings) -> str:
    """The server's FHIR base, as `yilian serve` with these settings answers at it."""
    return settings.base_url or f"http://{settings.host}:{settings.port}/fhir"


def main() -> None:  # pragma: no cover
    sys.exit(app())
