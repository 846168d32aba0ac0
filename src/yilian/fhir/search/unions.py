"""Parameters whose values are other parameters' values together, stored once.

Observation `combo-code` is `code | component.code`: every value it has is a value of `code`
or of `component-code`, which are indexed anyway. Writing it again would repeat a quarter of
an Observation's token rows, so it writes none and is searched on the rows of the parameters
it unites (`param IN ('code', 'component-code')`, the token hashes of both). The same for
`combo-value-quantity`, `combo-value-concept` and any parameter that reads exactly what
others of its type read together; one that reads exactly what another reads is stored under
the code that sorts first.

Only the path walker's parameters qualify (their paths can be compared), and not references,
whose target-type filters (`resolve() is Patient`) a path comparison does not see.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from yilian.fhir.search.paths import Compiled, Unsupported, compile_expression
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.search.rows import BUILDERS

Paths = frozenset[tuple[object, str]]  # (walker steps, FHIR type) of values a type indexes


def stored_codes(param: SearchParam) -> tuple[str, ...]:
    """The parameter codes whose index rows hold this parameter's values: its own, or
    those of the parameters it unites."""
    return _unions(param.resource_type).get(param.code, (param.code,))


def is_stored(param: SearchParam) -> bool:
    """Whether the parameter writes index rows of its own."""
    return stored_codes(param) == (param.code,)


@cache
def _unions(res_type: str) -> Mapping[str, tuple[str, ...]]:
    params = get_registry().params_for(res_type)
    paths = {code: found for code, param in params.items() if (found := param_paths(param))}
    resolved: dict[str, tuple[str, ...]] = {}

    def resolve(code: str) -> tuple[str, ...]:
        """Stored codes, following twins and covers down to parameters that write rows
        (each step goes to a smaller set of paths, or to a twin that sorts first)."""
        if code in resolved:
            return resolved[code]
        mine = paths[code]
        same_type = {other: theirs for other, theirs in paths.items()
                     if other != code and params[other].type is params[code].type}
        twin = min((other for other, theirs in same_type.items() if theirs == mine),
                   default=None)
        if twin is not None and twin < code:
            found = resolve(twin)
        else:
            parts = _cover(mine, {other: theirs for other, theirs in same_type.items()
                                  if theirs < mine})
            found = (tuple(sorted({stored for part in parts for stored in resolve(part)}))
                     if parts else (code,))
        resolved[code] = found
        return found

    return {code: stored for code in paths if (stored := resolve(code)) != (code,)}


def _cover(mine: Paths, subsets: Mapping[str, Paths]) -> tuple[str, ...]:
    """Codes whose paths together are exactly `mine`: the largest subsets first, each kept
    only if it adds paths; () if they do not cover it."""
    covered: set[tuple[object, str]] = set()
    chosen: list[str] = []
    for code in sorted(subsets, key=lambda c: (-len(subsets[c]), c)):
        if not subsets[code] <= covered:
            chosen.append(code)
            covered |= subsets[code]
    return tuple(chosen) if covered == mine else ()


def param_paths(param: SearchParam) -> Paths | None:
    """The walker paths to the values a parameter indexes; None if it has no comparable
    paths (a composite, a reference, a FHIRPath-only or presence expression)."""
    if (param.type in (ParamType.COMPOSITE, ParamType.SPECIAL, ParamType.REFERENCE)
            or param.expression is None):
        return None
    try:
        return indexed_paths(compile_expression(param.expression, param.resource_type),
                             param.type)
    except Unsupported:
        return None


def indexed_paths(compiled: Compiled, param_type: ParamType) -> Paths | None:
    """The paths of an expression that yield values of types a parameter type indexes."""
    indexed = BUILDERS.get(param_type.value)
    if indexed is None or compiled.exists_not_false:
        return None
    return frozenset((leaf.steps, leaf.type) for leaf in compiled.leaves
                     if leaf.type in indexed) or None
