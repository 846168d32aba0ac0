"""Rebuild the search index of stored resources: after an upgrade adds or changes search
parameters, or to repair an index. Each batch is one transaction, so a stopped reindex
leaves every resource indexed either the old way or the new one, never half."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from yilian.fhir.search.extract import extract_index_rows
from yilian.fhir.store import sql as store
from yilian.kit import jsonfmt

BATCH = 500


def count(engine: Engine, types: Sequence[str] | None) -> int:
    with engine.connect() as conn:
        return store.count_live(conn, types)


def reindex(engine: Engine, types: Sequence[str] | None, *, local_base: str | None,
            progress: Callable[[int], None] = lambda _: None, batch: int = BATCH) -> int:
    """Re-extract the index rows of every live resource (of `types`, or all), with the
    server's FHIR base `local_base` (extract_index_rows); `progress` is told how many each
    batch did. Returns how many resources were reindexed."""
    done = 0
    after = 0
    while True:
        with engine.begin() as conn:
            found = store.live_after(conn, types, after, batch)
            if not found:
                return done
            store.replace_index_rows(conn, [
                (pk, res_type, extract_index_rows(jsonfmt.loads(content), local_base=local_base))
                for pk, res_type, content in found
            ])
        after = found[-1][0]
        done += len(found)
        progress(len(found))
