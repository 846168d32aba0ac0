"""/api/inpatient: the bed board and the census as JSON (what the pages show, for any app)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import Engine

from yilian.domains.inpatient.board import BoardQuery, board, check_board_access
from yilian.domains.inpatient.census import MAX_DAYS, CensusQuery, GroupBy, census
from yilian.domains.inpatient.census_days import bring_up_to_date
from yilian.domains.inpatient.codes import BedStatus
from yilian.errors import BadRequest, Forbidden
from yilian.fhir.access import Access, Interaction
from yilian.kit.clock import DISPLAY_ZONE, utcnow
from yilian.kit.db import read_transaction

Authenticate = Callable[[Request], Access]
# Leaves the audit entry of a request that showed these records (Type/id).
Audit = Callable[[Request, Access, tuple[str, ...]], None]


def router(engine: Engine, authenticate: Authenticate, audit: Audit) -> APIRouter:
    """The routes, given the database, how a request's caller is known and how its reads
    are audited (the api layer's)."""
    # Routes close over the api layer's functions, so the caller comes from `dependencies`
    # (annotations here are strings, resolved in this module's globals, not in this scope).
    api = APIRouter(prefix="/inpatient", tags=["inpatient"])
    caller_of = Depends(authenticate)

    @api.get("/board")
    def get_board(
        request: Request,
        campus: Annotated[str, Query(description="The campus Organization id")],
        ward: Annotated[str | None, Query(description="One ward (Location id)")] = None,
        status: Annotated[BedStatus | None, Query(description="Only beds in this state")] = None,
        caller: Access = caller_of,
    ) -> dict[str, Any]:
        with read_transaction(engine) as conn:
            shown = board(conn, caller, BoardQuery(campus, ward, status), utcnow())
        # Who saw which patients on the board: each one an entity of the audit entry.
        audit(request, caller, tuple(f"Patient/{b['stay']['patient']}" for w in shown["wards"]
                                     for b in w["beds"] if "stay" in b))
        return shown

    @api.get("/census")
    def get_census(
        request: Request,
        start: Annotated[date | None, Query(alias="from", description="First day (default: "
                                            "29 days before the last)")] = None,
        end: Annotated[date | None, Query(alias="to", description="Last day (default: today)")
                       ] = None,
        by: Annotated[GroupBy, Query(description="hospital | campus | department | ward")
                      ] = GroupBy.CAMPUS,
        hospital: str | None = None,
        campus: str | None = None,
        department: str | None = None,
        ward: str | None = None,
        caller: Access = caller_of,
    ) -> dict[str, Any]:
        now = utcnow()
        for day, name in ((start, "from"), (end, "to")):
            if day is not None:
                check_census_day(day, name)
        last = end or now.astimezone(DISPLAY_ZONE).date()
        first = start or last - timedelta(days=29)
        if first > last:
            raise BadRequest("YL-6180", "'from' must not be after 'to'", expression=("from",))
        if (last - first).days >= MAX_DAYS:
            raise BadRequest("YL-6181", f"A census covers at most {MAX_DAYS} days",
                             expression=("from",))
        query = CensusQuery(first, last, by, hospital, campus, department, ward)
        with read_transaction(engine) as conn:
            check_census_access(conn, caller, query)
        bring_up_to_date(engine, now)  # for a caller who may see the census only
        with read_transaction(engine) as conn:
            counted = census(conn, query, now)
        audit(request, caller, ())
        return counted

    return api


def check_census_day(day: date, name: str) -> None:
    if not 1900 <= day.year <= 2100:
        raise BadRequest("YL-6184", f"'{name}' must fall between 1900 and 2100",
                         expression=(name,))


def check_census_access(conn: Any, caller: Access, query: CensusQuery) -> None:
    """Counts, not records: staff and managers of the hospitals counted."""
    if caller.patient is not None:
        raise Forbidden("YL-6182", "The census is for staff and managers")
    caller.require(Interaction.SEARCH, "Encounter")
    if not caller.organizations:
        return
    if query.campus:
        check_board_access(conn, caller, query.campus)
    elif not query.hospital or query.hospital not in caller.organizations:
        raise Forbidden("YL-6183", "Name a hospital (or campus) of yours: your roles reach "
                        f"{', '.join(caller.organizations)}", expression=("hospital",))
