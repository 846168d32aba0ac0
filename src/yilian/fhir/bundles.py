"""Bundles the server answers with: history and searchset pages, batch/transaction responses.

Stored resources are embedded as orjson Fragments: the JSON kept in the database goes out
byte for byte, never parsed and re-serialised.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from yilian.errors import BadRequest
from yilian.fhir.store.sql import HistoryCursor, StoredVersion
from yilian.kit.clock import to_instant, utcnow
from yilian.kit.ids import new_id

JsonObject = dict[str, Any]


def embedded(stored: StoredVersion) -> orjson.Fragment:
    assert stored.content is not None
    return orjson.Fragment(stored.content)


def link(relation: str, url: str) -> JsonObject:
    return {"relation": relation, "url": url}


def page_url(base_url: str, path: str, params: Sequence[tuple[str, str]]) -> str:
    url = f"{base_url}/{path}" if path else base_url
    return f"{url}?{urlencode(list(params))}" if params else url


def history_entry(base_url: str, stored: StoredVersion, *, recreated: bool = False
                  ) -> JsonObject:
    """`recreated`: the version came after a deletion (a PUT that created the resource
    again, 201 as its answer was)."""
    full_url = f"{base_url}/{stored.res_type}/{stored.res_id}"
    entry: JsonObject = {"fullUrl": full_url}
    if not stored.deleted:
        entry["resource"] = embedded(stored)
    if stored.method == "POST":
        request = {"method": "POST", "url": stored.res_type}
        status = "201 Created"
    elif stored.method == "DELETE":
        request = {"method": "DELETE", "url": f"{stored.res_type}/{stored.res_id}"}
        status = "204 No Content"
    else:
        request = {"method": stored.method, "url": f"{stored.res_type}/{stored.res_id}"}
        status = "201 Created" if stored.version == 1 or recreated else "200 OK"
    entry["request"] = request
    entry["response"] = {
        "status": status,
        "etag": stored.etag,
        "lastModified": to_instant(stored.last_updated),
    }
    return entry


def history_bundle(
    base_url: str,
    versions: Sequence[StoredVersion],
    *,
    self_url: str,
    next_url: str | None,
    recreated: frozenset[tuple[str, str, int]] = frozenset(),
) -> JsonObject:
    """`recreated`: the (type, id, version)s that came after a deletion (`history_entry`)."""
    links = [link("self", self_url)]
    if next_url:
        links.append(link("next", next_url))
    bundle: JsonObject = {
        "resourceType": "Bundle",
        "id": new_id(),
        "meta": {"lastUpdated": to_instant(utcnow())},
        "type": "history",
        "link": links,
    }
    if versions:
        bundle["entry"] = [history_entry(base_url, v, recreated=(
            (v.res_type, v.res_id, v.version) in recreated)) for v in versions]
    return bundle


def encode_history_cursor(cursor: HistoryCursor) -> str:
    raw = f"{cursor.last_updated.isoformat()}|{cursor.resource_pk}|{cursor.version}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_history_cursor(token: str) -> HistoryCursor:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, pk, version = raw.split("|")
        cursor = HistoryCursor(datetime.fromisoformat(moment), int(pk), int(version))
        if cursor.last_updated.tzinfo is None or not (
            0 < cursor.resource_pk < 2**62 and 0 < cursor.version < 2**31
        ):
            raise ValueError("out of range")
        return cursor
    except (ValueError, UnicodeDecodeError) as error:
        raise BadRequest(
            "YL-1062", "The _cursor parameter is not one this server issued",
            expression=("_cursor",),
        ) from error
