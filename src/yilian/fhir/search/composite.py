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

from yilian.fhir.search.paths import Leaf, Step, Unsupported, compile_expression
from yilian.fhir.search.registry import ParamType, SearchParam, get_registry
from yilian.fhir.search.rows import BUILDERS
from yilian.fhir.search.unions import indexed_paths, param_paths

# Component types the index can hold (a composite of others is not searchable).
_COMPONENT_TYPES = frozenset(BUILDERS)


@dataclass(frozen=True, slots=True)
class Branch:
    """One way a composite's value can be found: each component searched as `parts[n]`,
    within one element (`grouped`: the parts' rows carry the element's ordinal in `grp`)
    or on the resource as a whole (the parts are the resource's own parameters)."""

    parts: tuple[SearchParam, ...]
    grouped: bool


@dataclass(frozen=True, slots=True)
class Layout:
    """How a composite is indexed and searched: a match in any branch is a match."""

    branches: tuple[Branch, ...]
    # The steps to the elements whose components it writes under `{code}${n}` itself (the
    # last branch's parts), in the order `grp` numbers them.
    own_elements: tuple[tuple[Step, ...], ...]


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
        elements = compile_expression(param.expression, res_type).leaves
        branches: list[Branch] = []
        own_elements: list[tuple[Step, ...]] = []
        for element in elements:
            found = (_on_the_resource(param, owns, element) if not element.steps else
                     _of_another_composite(param, element) if len(elements) > 1 else None)
            if found is not None:
                branches.append(found)
            else:
                own_elements.append(element.steps)
    except Unsupported:
        return None
    if own_elements:
        branches.append(Branch(tuple(
            SearchParam(code=f"{param.code}${n}", type=own.type, resource_type=res_type,
                        expression=expression, targets=own.targets, components=(),
                        url=f"{param.url}#{n}")
            for n, ((_, expression), own) in enumerate(zip(param.components, owns, strict=True))
        ), grouped=True))
    return Layout(tuple(branches), tuple(own_elements))


def _on_the_resource(param: SearchParam, owns: list[SearchParam], element: Leaf
                     ) -> Branch | None:
    """The element is the resource: a branch of the resource's own parameters, if each
    component reads exactly what one of them indexes (Observation `code-value-quantity`:
    `code` and `value-quantity`, whose valueSampledData makes no quantity row)."""
    parts = []
    for (_, expression), own in zip(param.components, owns, strict=True):
        relative = compile_expression(expression, param.resource_type, start=element.node)
        wanted = indexed_paths(relative, own.type)
        reading = [other for other in get_registry().params_for(param.resource_type).values()
                   if other.type is own.type and param_paths(other) == wanted]
        if not wanted or not reading:
            return None
        parts.append(own if own in reading else min(reading, key=lambda p: p.code))
    return Branch(tuple(parts), grouped=False)


def _of_another_composite(param: SearchParam, element: Leaf) -> Branch | None:
    """A branch of a composite over one kind of element only, with the same components:
    `combo-code-value-quantity` over Observation.component is `component-code-value-quantity`,
    whose rows are written anyway."""
    for other in get_registry().params_for(param.resource_type).values():
        if (other.code == param.code or other.type is not ParamType.COMPOSITE
                or other.expression is None or len(other.components) != len(param.components)):
            continue
        theirs = compile_expression(other.expression, other.resource_type).leaves
        if len(theirs) != 1 or theirs[0].steps != element.steps:
            continue
        if all(_component_paths(param, expression, element)
               == _component_paths(param, their, theirs[0])
               for (_, expression), (_, their) in zip(param.components, other.components,
                                                      strict=True)):
            found = _layout(other.resource_type, other.code)
            if found is not None and len(found.branches) == 1 and found.branches[0].grouped:
                return found.branches[0]
    return None


def _component_paths(param: SearchParam, expression: str, element: Leaf
                     ) -> frozenset[tuple[object, str]]:
    relative = compile_expression(expression, param.resource_type, start=element.node)
    return frozenset((leaf.steps, leaf.type) for leaf in relative.leaves)
