"""Composite parameters: components that must match in the same element.

`component-code-value-quantity=http://loinc.org|8480-6$gt120` asks for an Observation with a
component whose code is 8480-6 *and* whose value is above 120: the systolic pressure, not a
diastolic one of 125 beside a systolic of 110. Each component is searched as a parameter of
its own type, so prefixes, units, systems and precision mean what they mean everywhere:

- where the composite's element is the resource itself and each component reads exactly the
  values of one of the resource's own parameters (Observation `code-value-quantity` is `code`
  and `value-quantity`), the composite is the conjunction of those parameters and writes no
  rows of its own;
- otherwise (`Observation.component`, `useContext`, `Group.characteristic`...) each element's
  components are written as rows of their types' tables under the parameter `{code}${n}`
  (n: the component's position), all with the element's ordinal in `grp`; a search joins
  the components' rows on (resource_pk, grp). An element lacking a component has none.

Written once per parameter (`layout`), used by the extractor and the query parser alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from yilian.fhir.search.paths import Compiled, Unsupported, compile_expression
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.search.rows import BUILDERS

# Component types the index can hold (a composite of others is not searchable).
_COMPONENT_TYPES = frozenset(BUILDERS)


@dataclass(frozen=True, slots=True)
class Layout:
    """How a composite is indexed and searched."""

    # What each component is searched as: the resource's own parameter (not grouped), or a
    # parameter `{code}${n}` of the component's type whose rows carry `grp` (grouped).
    parts: tuple[SearchParam, ...]
    grouped: bool


def layout(param: SearchParam) -> Layout | None:
    """The layout of a composite parameter; None when it cannot be indexed (a component of
    an unknown parameter or type, or an expression outside the walker's grammar)."""
    return _layout(param.resource_type, param.code)


@cache
def _layout(res_type: str, code: str) -> Layout | None:
    registry = get_registry()
    param = registry.get(res_type, code)
    if param is None or param.type is not ParamType.COMPOSITE or param.expression is None:
        return None
    owns: list[SearchParam] = []
    for own_code, _ in param.components:
        own = registry.get(res_type, own_code)
        if own is None or own.type.value not in _COMPONENT_TYPES:
            return None
        owns.append(own)
    try:
        elements = compile_expression(param.expression, res_type)
        if _is_the_resource(elements) and all(
            _same_values(expression, elements, own)
            for (_, expression), own in zip(param.components, owns, strict=True)
        ):
            return Layout(tuple(owns), grouped=False)
    except Unsupported:
        return None
    return Layout(tuple(
        SearchParam(code=f"{param.code}${n}", type=own.type, resource_type=res_type,
                    expression=expression, targets=own.targets, components=(),
                    url=f"{param.url}#{n}")
        for n, ((_, expression), own) in enumerate(zip(param.components, owns, strict=True))
    ), grouped=True)


def _is_the_resource(elements: Compiled) -> bool:
    return len(elements.leaves) == 1 and not elements.leaves[0].steps


def _same_values(expression: str, elements: Compiled, own: SearchParam) -> bool:
    """Whether a component, read from the resource, yields the rows of its own parameter:
    the same paths to values the parameter's type indexes (Observation's `value-quantity`
    also names valueSampledData, which no quantity row comes from)."""
    if own.expression is None:
        return False
    indexed = BUILDERS[own.type.value]
    relative = compile_expression(expression, own.resource_type, start=elements.leaves[0].node)
    absolute = compile_expression(own.expression, own.resource_type)
    if relative.exists_not_false or absolute.exists_not_false:
        return False
    return ({(leaf.steps, leaf.type) for leaf in relative.leaves if leaf.type in indexed}
            == {(leaf.steps, leaf.type) for leaf in absolute.leaves if leaf.type in indexed})
