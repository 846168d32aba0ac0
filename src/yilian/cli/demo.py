"""`yilian demo`: seed the demo network once, then print the demo accounts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine, select

from yilian.auth.roles import Role
from yilian.config import Settings

console = Console(stderr=True)

# Where the demo accounts work: the group of 10 campuses, its first patient with a stay.
DEMO_HOSPITAL = "h1"
_STAGES = {"network": "医联网络 network", "patients": "居民 patients",
           "stays": "住院 stays", "beds": "床位 beds", "census": "日报 census"}


def demo(
    db: Annotated[str | None, typer.Option("--db", help="Database URL (YILIAN_DATABASE_URL)")
                  ] = None,
    patients: Annotated[int, typer.Option(help="Residents to register")] = 20_000,
    days: Annotated[int, typer.Option(help="Days of inpatient stays up to now")] = 365,
    scale: Annotated[float, typer.Option(
        help="Multiplies every campus's beds (0.1 for a quick look, 2 for a benchmark)")] = 1.0,
) -> None:
    """Seed the demo network (once): a medical centre, 17 hospitals (one group of 10 campuses
    and 6,000+ beds), community centres and family-doctor teams, residents and a year of
    inpatient stays; then create one demo account per role and print them."""
    from yilian.demo.seed import SeedState, seed, seed_state
    from yilian.kit.db import make_engine

    engine = make_engine(db or Settings().database_url)
    try:
        state = seed_state(engine)
        if state is SeedState.SEEDED:
            console.print("[green]The demo network is there already[/] (yilian demo seeds once)")
        elif state is SeedState.UNFINISHED:
            where = (f"delete {engine.url.database} (and its -wal and -shm files)"
                     if engine.dialect.name == "sqlite" else "use an empty database")
            console.print("[red]An earlier seeding of the demo network (演示数据) was stopped "
                          f"before it finished.[/] Its data is incomplete: {where} and run "
                          "`yilian demo` (or `make run`) again.")
            raise typer.Exit(1)
        else:
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            with Progress(*columns, console=console) as progress:
                tasks: dict[str, TaskID] = {}

                def report(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = progress.add_task(_STAGES.get(stage, stage), total=total)
                    progress.update(tasks[stage], completed=done, total=total)

                seeded = seed(engine, patients=patients, days=days, scale=scale,
                              progress=report)
            console.print(f"[green]Seeded[/] {seeded.resources:,} resources: "
                          f"{seeded.patients:,} patients, {seeded.beds:,} beds, "
                          f"{seeded.stays:,} stays ({seeded.open_stays:,} in hospital now)")
        _accounts(engine)
    finally:
        engine.dispose()


def _accounts(engine: Engine) -> None:
    from yilian.auth.service import create_user, find_user
    from yilian.domains.inpatient.tables import inpatient_bed_stay
    from yilian.kit.db import write_transaction

    with write_transaction(engine) as conn:  # the writer lock, as a server's writes take it
        patient = conn.execute(
            select(inpatient_bed_stay.c.patient_id)
            .where(inpatient_bed_stay.c.hospital_id == DEMO_HOSPITAL)
            .order_by(inpatient_bed_stay.c.pk).limit(1)).scalar()
        table = Table(title=f"Demo accounts (演示账户) at Organization/{DEMO_HOSPITAL}")
        for column in ("username", "password", "role", "FHIR record"):
            table.add_column(column)
        for role in Role:
            username, password = f"demo.{role.value}", f"demo-{role.value}-2026"
            record = f"Patient/{patient}" if role is Role.PATIENT and patient else None
            if find_user(conn, username) is None:
                create_user(conn, username, password, [(role, f"Organization/{DEMO_HOSPITAL}")],
                            fhir_user=record)
            table.add_row(username, password, role.value, record or "")
    console.print(table)
