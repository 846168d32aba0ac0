"""The search interaction: criteria → a searchset Bundle page with a stable cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from yilian.errors import BadRequest
from yilian.fhir.bundles import embedded, link, page_url
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirRequest, FhirResponse, JsonObject
from yilian.fhir.search.query import parse_query, search_page
from yilian.fhir.store import sql as store
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.ids import new_id

if TYPE_CHECKING:
    from yilian.fhir.router import RouterOptions


def _cursor(value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise BadRequest("YL-2010", "The _cursor parameter is not one this server issued",
                         expression=("_cursor",))
    return int(value)


def is_strict(request: FhirRequest) -> bool:
    prefer = (request.header("prefer") or "").replace(" ", "").lower()
    return "handling=strict" in prefer


def search(
    ctx: Context,
    res_type: str,
    pairs: Sequence[tuple[str, str]],
    request: FhirRequest,
    options: RouterOptions,
) -> FhirResponse:
    from yilian.fhir.history import page_size

    count = page_size(pairs, options)
    after_pk: int | None = None
    for name, value in pairs:
        if name == "_cursor":
            after_pk = _cursor(value)
    parsed = parse_query(res_type, pairs, strict=is_strict(request))
    if ctx.uow is not None:
        ctx.uow.flush()
    pks, next_pk = search_page(
        ctx.conn, res_type, parsed, count=count, after_pk=after_pk, base_url=ctx.base_url
    )
    versions = store.read_current_many(ctx.conn, pks)
    applied = [*parsed.applied(), ("_count", str(count))]
    links = [link("self", page_url(ctx.base_url, res_type, applied
                                   + ([("_cursor", str(after_pk))] if after_pk else [])))]
    if next_pk is not None:
        links.append(link("next", page_url(ctx.base_url, res_type,
                                           [*applied, ("_cursor", str(next_pk))])))
    entries: list[JsonObject] = [
        {
            "fullUrl": f"{ctx.base_url}/{v.res_type}/{v.res_id}",
            "resource": embedded(v),
            "search": {"mode": "match"},
        }
        for v in versions
    ]
    if parsed.ignored:
        entries.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [issue.to_json() for issue in parsed.ignored],
                },
                "search": {"mode": "outcome"},
            }
        )
    bundle: JsonObject = {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": to_instant(utcnow())},
        "type": "searchset",
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, resource=bundle)
