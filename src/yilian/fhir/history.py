"""The history interaction at instance, type and system level, paged by cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from yilian.errors import BadRequest, NotFound
from yilian.fhir.access import NAMED_ONLY, Interaction
from yilian.fhir.bundles import (
    decode_history_cursor,
    encode_history_cursor,
    history_bundle,
    page_url,
)
from yilian.fhir.interactions import Context, parse_instant_param
from yilian.fhir.messages import FhirRequest, FhirResponse
from yilian.fhir.store import sql as store
from yilian.kit.ids import small_number

if TYPE_CHECKING:
    from yilian.fhir.router import RouterOptions


def page_size(query: Sequence[tuple[str, str]], options: RouterOptions) -> int:
    raw = next((v for k, v in query if k == "_count"), None)
    if raw is None:
        return options.default_page_size
    number = small_number(raw)
    if number is None:
        raise BadRequest("YL-1063", f"_count must be a whole number, got '{raw}'",
                         expression=("_count",))
    return min(number, options.max_page_size)


def history(
    ctx: Context,
    res_type: str | None,
    res_id: str | None,
    request: FhirRequest,
    options: RouterOptions,
) -> FhirResponse:
    count = page_size(request.query, options)
    since = cursor = None
    kept: list[tuple[str, str]] = []
    for name, value in request.query:
        if name == "_since":
            since = parse_instant_param("_since", value)
        elif name == "_cursor":
            cursor = decode_history_cursor(value)
            continue
        elif name not in ("_count", "_format", "_pretty"):
            raise BadRequest("YL-1064", f"History does not take the parameter '{name}'",
                             expression=(name,))
        kept.append((name, value))
    if (
        res_id is not None
        and res_type is not None
        and store.read_current(ctx.conn, res_type, res_id) is None
    ):
        raise NotFound("YL-1010", f"{res_type}/{res_id} is not known")
    # Across types: not those the caller's `*` grants do not reach (the audit events).
    hidden = [] if res_type is not None else [
        t for t in sorted(NAMED_ONLY) if not ctx.access.allows(Interaction.SEARCH, t)]
    versions, next_cursor, recreated = store.read_history(
        ctx.conn, res_type=res_type, res_id=res_id, since=since, after=cursor, count=count,
        without_types=hidden,
    )
    if res_id is not None and res_type is not None:
        from yilian.fhir.guard import seen_versions

        versions = seen_versions(ctx, res_type, versions)
    path = "/".join(p for p in (res_type, res_id, "_history") if p)
    if not any(k == "_count" for k, _ in kept):
        kept.append(("_count", str(count)))
    self_params = kept + ([("_cursor", encode_history_cursor(cursor))] if cursor else [])
    next_url = (
        page_url(ctx.base_url, path, [*kept, ("_cursor", encode_history_cursor(next_cursor))])
        if next_cursor
        else None
    )
    bundle = history_bundle(
        ctx.base_url, versions, self_url=page_url(ctx.base_url, path, self_params),
        next_url=next_url, recreated=recreated,
    )
    return FhirResponse(200, resource=bundle)
