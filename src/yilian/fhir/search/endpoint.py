"""The search interaction: criteria → a searchset Bundle page, its includes and its links."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson

from yilian.errors import BadRequest, OutcomeIssue
from yilian.fhir.access import UNRESTRICTED, Access, Interaction
from yilian.fhir.bundles import embedded, link, page_url
from yilian.fhir.guard import confine, visible
from yilian.fhir.interactions import Context
from yilian.fhir.messages import FhirRequest, FhirResponse, JsonObject
from yilian.fhir.search.ambiguity import refuse_ambiguous_ids
from yilian.fhir.search.expressions import All, Expression
from yilian.fhir.search.include import Include, included, parse_include
from yilian.fhir.search.query import (
    compartment_expression,
    count_matches,
    parse_for_types,
    parse_query,
    search_page,
)
from yilian.fhir.search.sorting import decode_cursor, parse_sort
from yilian.fhir.search.summary import parse_elements, parse_summary, summarised, with_elements
from yilian.fhir.store.sql import StoredVersion
from yilian.kit import jsonfmt
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.ids import new_id

if TYPE_CHECKING:
    from yilian.fhir.router import RouterOptions

_TOTAL_MODES = frozenset({"none", "estimate", "accurate"})


def is_strict(request: FhirRequest) -> bool:
    prefer = (request.header("prefer") or "").replace(" ", "").lower()
    return "handling=strict" in prefer


def _all(pairs: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in pairs if key == name]


def search(
    ctx: Context,
    res_type: str | None,
    pairs: Sequence[tuple[str, str]],
    request: FhirRequest,
    options: RouterOptions,
    *,
    compartment: tuple[str, str] | None = None,
) -> FhirResponse:
    """A search at type level (`res_type`), within a compartment (`Patient/123/Observation`)
    or across types (`res_type` None: the types of `_type`, or all)."""
    from yilian.fhir.history import page_size

    strict = is_strict(request)
    count = page_size(pairs, options)
    access = ctx.access
    if res_type is None:
        types = _types(pairs, access)
        criteria = [(k, v) for k, v in pairs if k != "_type"]
        per_type, ignored_criteria = parse_for_types(types, criteria, strict=strict)
        parsed = next(iter(per_type.values()))
        scope: list[tuple[str, Expression]] = [(t, confine(access, t, q.expression()))
                                               for t, q in per_type.items()]
        path = ""
        sort = parse_sort(None, _all(pairs, "_sort"))
    else:
        access.require(Interaction.SEARCH, res_type)
        parsed = parse_query(res_type, pairs, strict=strict)
        ignored_criteria = parsed.ignored
        expression = parsed.expression()
        path = res_type
        if compartment is not None:
            expression = All((expression, compartment_expression(*compartment, res_type)))
            path = f"{compartment[0]}/{compartment[1]}/{res_type}"
        scope = [(res_type, confine(access, res_type, expression))]
        sort = parse_sort(res_type, _all(pairs, "_sort"))
    cursors = _all(pairs, "_cursor")
    cursor = decode_cursor(cursors[-1], len(sort)) if cursors else None
    total_mode = _total_mode(pairs)
    summary = parse_summary(_all(pairs, "_summary"))
    elements = parse_elements(_all(pairs, "_elements"))
    includes, skipped = _includes(pairs, strict=strict)
    if ctx.uow is not None:
        ctx.uow.flush()
    if res_type is not None:
        refuse_ambiguous_ids(ctx.conn, res_type, parsed, scope[0][1], ctx.base_url)

    total: int | None = None
    if summary == "count" or total_mode in ("estimate", "accurate"):
        total = count_matches(ctx.conn, scope, base_url=ctx.base_url)
    versions: list[StoredVersion] = []
    pks: list[int] = []
    next_cursor = None
    if summary != "count":
        versions, pks, next_cursor = search_page(ctx.conn, scope, count=count, sort=sort,
                                                 cursor=cursor, base_url=ctx.base_url)
    extra = included(ctx.conn, versions, pks, includes,
                     readable=None if access is UNRESTRICTED else partial(visible, ctx))

    applied = [*parsed.applied()]
    if res_type is None and _all(pairs, "_type"):
        applied.insert(0, ("_type", ",".join(types)))
    applied += [("_sort", ",".join(key.written() for key in sort))] if sort else []
    applied += [(i.name, i.value) for i in includes]
    applied += [(name, ",".join(_all(pairs, name)))
                for name in ("_summary", "_elements", "_total") if _all(pairs, name)]
    applied.append(("_count", str(count)))
    links = [link("self", page_url(ctx.base_url, path, applied + (
        [("_cursor", cursors[-1])] if cursors else [])))]
    if next_cursor is not None:
        links.append(link("next", page_url(ctx.base_url, path,
                                           [*applied, ("_cursor", next_cursor.encode())])))

    def shown(version: StoredVersion) -> Any:
        if summary in (None, "false") and elements is None:
            return embedded(version)
        assert version.content is not None
        resource: JsonObject = jsonfmt.loads(version.content)
        if summary not in (None, "false"):
            resource = summarised(resource, summary)
        if elements is not None:
            resource = with_elements(resource, elements)
        return orjson.Fragment(jsonfmt.dumps(resource))

    entries: list[JsonObject] = [
        {"fullUrl": f"{ctx.base_url}/{v.res_type}/{v.res_id}", "resource": shown(v),
         "search": {"mode": mode}}
        for mode, group in (("match", versions), ("include", extra))
        for v in group
    ]
    ignored = [*ignored_criteria, *skipped]
    if ignored:
        entries.append({
            "resource": {"resourceType": "OperationOutcome",
                         "issue": [issue.to_json() for issue in ignored]},
            "search": {"mode": "outcome"},
        })
    bundle: JsonObject = {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": to_instant(utcnow())},
        "type": "searchset",
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return FhirResponse(200, resource=bundle)


def _types(pairs: Sequence[tuple[str, str]], access: Access) -> list[str]:
    """The types of a search across types: those of `_type`, each of which the caller must
    be allowed to search, or else every type it may search."""
    from yilian.fhir.definitions import resource_types

    known = resource_types()
    types = [t.strip() for v in _all(pairs, "_type") for t in v.split(",") if t.strip()]
    unknown = [t for t in types if t not in known]
    if unknown:
        raise BadRequest("YL-2062", f"_type names unknown resource types: {', '.join(unknown)}",
                         expression=("_type",))
    for res_type in types:
        access.require(Interaction.SEARCH, res_type)
    allowed = [t for t in sorted(known) if access.allows(Interaction.SEARCH, t)]
    if not types and not allowed:
        access.require(Interaction.SEARCH, "*")
    return list(dict.fromkeys(types)) or allowed


def _total_mode(pairs: Sequence[tuple[str, str]]) -> str:
    values = _all(pairs, "_total")
    if not values:
        return "none"
    if len(values) > 1 or values[0] not in _TOTAL_MODES:
        raise BadRequest("YL-2052", "_total takes none, estimate or accurate",
                         expression=("_total",))
    return values[0]


def _includes(pairs: Sequence[tuple[str, str]], *, strict: bool
              ) -> tuple[list[Include], list[OutcomeIssue]]:
    includes: list[Include] = []
    skipped: list[OutcomeIssue] = []
    for name, value in pairs:
        if name.partition(":")[0] not in ("_include", "_revinclude"):
            continue
        try:
            includes.append(parse_include(name, value))
        except BadRequest as error:
            if strict:
                raise
            skipped.append(OutcomeIssue("warning", "not-supported",
                                        f"Ignored: {error.message}", (name,)))
    return includes, skipped

