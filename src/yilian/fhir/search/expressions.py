"""A search as an expression tree (Microsoft's FHIR server's shape): parsing builds it,
small rewriters may change it, and `predicates` turns each node into SQL.

Each node is about one resource (the subject): its criteria are ANDed (`All`), and inside a
`Match` the comma-separated values are ORed. `Chain` follows a reference to resources that
match an inner expression; `Has` looks back from resources that point at the subject.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from yilian.fhir.search.registry import SearchParam
from yilian.fhir.search.values import DateValue


@dataclass(frozen=True, slots=True)
class Match:
    """One parameter occurrence: any of its values matches."""

    param: SearchParam
    modifier: str | None
    # Parsed for the parameter's type (search.values), or text: unescaped, but for a token's
    # (`x\|y`), which search.predicates cuts into system and code before unescaping.
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Missing:
    """`:missing=true`: the resource has no value for the parameter; false: it has one."""

    param: SearchParam
    missing: bool


@dataclass(frozen=True, slots=True)
class Ids:
    values: tuple[str, ...]
    # Instead of the values: the name of an expanding bind parameter that carries them when
    # the statement runs, so that one statement serves many sets of ids (the access checks).
    parameter: str | None = None


@dataclass(frozen=True, slots=True)
class LastUpdated:
    values: tuple[DateValue, ...]


@dataclass(frozen=True, slots=True)
class Chain:
    """`subject:Patient.name=x`: the reference points at a target matching `inner`, for any of
    the target types the parameter allows (and the chained parameter exists on)."""

    param: SearchParam
    targets: tuple[tuple[str, Expression], ...]  # (target type, inner expression on it)


@dataclass(frozen=True, slots=True)
class Has:
    """`_has:Observation:patient:code=x`: some Observation matching `inner` points at the
    subject through its `patient` parameter."""

    source_type: str
    param: SearchParam  # the reference parameter of the source type
    inner: Expression


@dataclass(frozen=True, slots=True)
class Together:
    """A composite's components, all met by one element of the resource (the same
    Observation.component): each Match is on one component's rows (search/composite.py)."""

    matches: tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The resource does not match `inner` (access rules: a consent withholding it)."""

    inner: Expression


@dataclass(frozen=True, slots=True)
class All:
    children: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """One of the children matches (a compartment: any of its parameters points at it)."""

    children: tuple[Expression, ...]


Expression = (Match | Missing | Ids | LastUpdated | Chain | Has | Together | Not | All
              | AnyOf)
