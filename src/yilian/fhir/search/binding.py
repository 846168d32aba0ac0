"""A search's values apart from its SQL, so that its statement is built once per *shape*.

Building a search's SQL with SQLAlchemy, and computing the statement's cache key, took
several times what SQLite then spent running it. Two searches that differ only in their
values (another patient, another code, another day) have the same shape: the same
parameters, modifiers and prefixes, the same kinds of values (a `system|code` or a bare code,
a prefix range or an exact string). A Binding walks a search's expression once: each
criterion's values become bound values named after the criterion's place in the walk
(`b3_0`, `b3_1`...), and the shape records everything else. The statement built for the
first search of a shape (search.statements) serves every later one with their own values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, bindparam
from sqlalchemy.types import NullType

from yilian.fhir.search.expressions import (
    All,
    AnyOf,
    Chain,
    Expression,
    Has,
    Ids,
    LastUpdated,
    Match,
    Missing,
    Not,
    Together,
)
from yilian.fhir.search.predicates import date_bounds, prepare

# Ids few enough to start a search from, and a source small enough not to look past
# (search.plan); the ids' side of it is part of their shape.
FEW_ENOUGH = 50

Leaf = Match | Ids | LastUpdated


@dataclass(slots=True)
class Bound:
    """A criterion's form and the bind parameters of its values, in `prepare`'s order."""

    form: tuple[Any, ...]
    names: tuple[str, ...]
    values: tuple[Any, ...]
    _params: list[BindParameter[Any]] | None = field(default=None)

    @property
    def params(self) -> list[BindParameter[Any]]:
        if self._params is None:
            # Untyped: a comparison gives each the type of its column (UtcDateTime...).
            self._params = [bindparam(name, value, type_=NullType(),
                                      expanding=isinstance(value, list))
                            for name, value in zip(self.names, self.values, strict=True)]
        return self._params


class Binding:
    """The bound values of one search (`values`, by name) and the shape of its expression."""

    def __init__(self, base_url: str | None, prefix: str = "b") -> None:
        self.base_url = base_url
        self.values: dict[str, Any] = {}
        self._prefix = prefix
        self._leaves: dict[int, tuple[int, Bound]] = {}  # id(leaf) → (number, bound)
        self._kept: list[Leaf] = []  # the leaves bound: alive, their id()s stay theirs

    def shape(self, expr: Expression, res_type: str) -> tuple[Any, ...]:
        """Walk `expr`, a search on `res_type`: bind its values, return its shape."""
        match expr:
            case Match() | Ids() | LastUpdated():
                seen = self._leaves.get(id(expr))
                if seen is not None:  # the same criterion twice: bound once
                    return ("again", seen[0])
                return ("leaf", self._add(expr, res_type).form)
            case Missing(param, missing):
                return ("missing", param, missing)
            case Chain(param, targets):
                return ("chain", param, tuple((target_type, self.shape(inner, target_type))
                                              for target_type, inner in targets))
            case Has(source_type, param, inner):
                return ("has", source_type, param, self.shape(inner, source_type))
            case Together(matches):
                return ("together", tuple(self.shape(m, res_type) for m in matches))
            case Not(inner):
                return ("not", self.shape(inner, res_type))
            case All(children):
                return ("all", tuple(self.shape(c, res_type) for c in children))
            case AnyOf(children):
                return ("any", tuple(self.shape(c, res_type) for c in children))
        raise AssertionError(f"no shape for {expr!r}")

    def bound(self, leaf: Leaf, res_type: str) -> Bound:
        """The criterion's form and bind parameters (bound now if the walk did not)."""
        seen = self._leaves.get(id(leaf))
        return seen[1] if seen is not None else self._add(leaf, res_type)

    def bind(self, name: str, value: Any) -> None:
        """A value of the statement besides the criteria's (a limit, a cursor's keys)."""
        self.values[name] = value

    def _add(self, leaf: Leaf, res_type: str) -> Bound:
        number = len(self._leaves)
        form, values = _prepare(leaf, res_type, self.base_url)
        names = tuple(f"{self._prefix}{number}_{i}" for i in range(len(values)))
        found = Bound(form, names, tuple(values))
        self._leaves[id(leaf)] = (number, found)
        self.values.update(zip(names, values, strict=True))
        self._kept.append(leaf)
        return found


def _prepare(leaf: Leaf, res_type: str, base_url: str | None) -> tuple[tuple[Any, ...], list[Any]]:
    match leaf:
        case Match():
            return prepare(leaf, res_type, base_url)
        case Ids(values, parameter):
            if parameter is not None:  # bound by the caller, under its own name
                return ("ids", parameter), []
            return ("ids", None, len(values) <= FEW_ENOUGH), [list(values)]
        case LastUpdated(values):
            bounds = [bound for value in values for bound in date_bounds(value)]
            return ("lastUpdated", *(value.prefix for value in values)), bounds
    raise AssertionError(f"{leaf!r} binds no values")
