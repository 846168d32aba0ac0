"""A bare id that names resources of several types: `Observation?subject=23`.

A reference parameter that may point at several types (Observation.subject: Patient, Group,
Device, Location) leaves the type of a bare id open, and Patient/23 and Group/23 are two
different resources. R4 asks a server to reject such a search rather than mix them (a
SHOULD); the IBM server does so too. Refused here when the answer would actually mix them:
the resources the search finds, as the caller may see them, point at more than one type
with that id. A Group/23 that none of them points at refuses nothing, and a caller bound to
some patients learns nothing about resources it may not see. A bare id inside a chain or a
`_has` is not looked at.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from yilian.errors import BadRequest
from yilian.fhir.search.expressions import Expression, Match
from yilian.fhir.search.predicates import of_param, reference_targets
from yilian.fhir.search.query import ParsedQuery, search_plan
from yilian.fhir.search.registry import ParamType
from yilian.fhir.store.tables import idx_reference


def refuse_ambiguous_ids(conn: Connection, res_type: str, parsed: ParsedQuery,
                         expression: Expression, base_url: str | None) -> None:
    """Raise 400 if a criterion's bare id points, in the resources the search finds
    (`expression`: the criteria with the caller's bounds), at resources of several types."""
    for criterion in parsed.criteria:
        match = criterion.expression
        if (not isinstance(match, Match) or match.modifier is not None
                or match.param.type is not ParamType.REFERENCE
                or len(match.param.targets) == 1):  # one target: the id is typed already
            continue
        ids = sorted({value for value in match.values if _is_bare(value)})
        if not ids:
            continue
        # The types as the leading column of the reference index's key: a seek per type.
        targets = reference_targets(match.param)
        found = search_plan(conn, res_type, expression, base_url).select().subquery()
        rows = idx_reference
        pointed = (
            select(rows.c.target_id, rows.c.target_type).distinct()
            .where(rows.c.target_type.in_(targets), rows.c.target_id.in_(ids),
                   of_param(rows, res_type, match.param),
                   rows.c.resource_pk.in_(select(found.c.pk)))
        )
        types: dict[str, list[str]] = {}
        for target_id, target_type in conn.execute(pointed):
            types.setdefault(target_id, []).append(target_type)
        for target_id, named in sorted(types.items()):
            if len(named) > 1:
                first, name = sorted(named)[0], criterion.name
                raise BadRequest(
                    "YL-2063",
                    f"'{target_id}' in {name} names resources of several types "
                    f"({', '.join(sorted(named))}): say which, as {name}={first}/{target_id} "
                    f"or {name}:{first}={target_id}",
                    expression=(name,),
                )


def _is_bare(value: object) -> bool:
    """An id alone: not Type/id, not an absolute URL or URN."""
    return isinstance(value, str) and bool(value) and "/" not in value and ":" not in value
