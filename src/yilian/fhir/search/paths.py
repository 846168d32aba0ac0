"""Compile the simple FHIRPath of search parameters into steps a small walker runs.

Almost every official expression is a dotted path, maybe with a type cast or a filter:

    Patient.name.family
    (Observation.value as Quantity)          Condition.onset.as(Age)
    Account.subject.where(resolve() is Patient)
    PlanDefinition.relatedArtifact.where(type='composed-of').resource
    Bundle.entry[0].resource                 %resource.referenceSeq.chromosome

Walking dicts for those costs a fraction of a FHIRPath engine's interpretation, and it runs
on every write. The compiler resolves each step against the StructureDefinitions, so choice
elements become their JSON keys (value as Quantity → valueQuantity) and every compiled path
ends on a known FHIR type. Anything outside this grammar raises `Unsupported`; the caller then
evaluates it with fhirpathpy instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from yilian.fhir.search import fhirmodel
from yilian.fhir.search.fhirmodel import Node


class Unsupported(ValueError):
    """The expression is not in the walker's grammar."""


# ---------------------------------------------------------------------------------------------
# Steps the walker runs (plain tuples: cheap to dispatch on, hashable for de-duplication).

KEY = 0  # (KEY, "name"): descend into a property, flattening arrays
REF_IS = 1  # (REF_IS, "Patient"): keep References whose target type is Patient
EQUALS = 2  # (EQUALS, "system", "phone"): keep elements whose property equals a literal
INDEX = 3  # (INDEX, 0): keep the n-th item of the collection so far
ROOT = 4  # (ROOT,): restart from the resource (%resource)

Step = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Leaf:
    """One concrete path and the FHIR type of the values it yields."""

    steps: tuple[Step, ...]
    type: str
    node: Node  # where the path ends, for compiling composite components relative to it
    # For references: the types they can point at (None: any), narrowed by `resolve() is X`.
    targets: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Compiled:
    leaves: tuple[Leaf, ...]
    # `X.exists() and X != false` (Patient.deceased): one boolean from the leaves' values.
    exists_not_false: bool = False


# ---------------------------------------------------------------------------------------------
# Parsing

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<int>\d+)|(?P<name>%?[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>!=|[.()\[\]|=]))"
)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise Unsupported(f"cannot tokenise {text[pos:]!r}")
        out.append(match.group().strip())
        pos = match.end()
    return out


@dataclass(frozen=True, slots=True)
class _Name:  # an identifier at the start of a path: the root type, or a member
    name: str


@dataclass(frozen=True, slots=True)
class _Var:  # %resource
    name: str


@dataclass(frozen=True, slots=True)
class _Member:
    base: _Ast
    name: str


@dataclass(frozen=True, slots=True)
class _Index:
    base: _Ast
    index: int


@dataclass(frozen=True, slots=True)
class _Cast:
    base: _Ast
    type: str


@dataclass(frozen=True, slots=True)
class _WhereRef:
    base: _Ast
    type: str


@dataclass(frozen=True, slots=True)
class _WhereEq:
    base: _Ast
    name: str
    literal: str


@dataclass(frozen=True, slots=True)
class _Union:
    items: tuple[_Ast, ...]


_Ast = _Name | _Var | _Member | _Index | _Cast | _WhereRef | _WhereEq | _Union


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.pos = 0

    def peek(self) -> str | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise Unsupported(f"expected {expected!r}, found {tok!r}")
        self.pos += 1
        return tok

    def parse(self) -> _Ast:
        ast = self.union()
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()!r}")
        return ast

    def union(self) -> _Ast:
        items = [self.cast()]
        while self.peek() == "|":
            self.take()
            items.append(self.cast())
        return items[0] if len(items) == 1 else _Union(tuple(items))

    def cast(self) -> _Ast:
        ast = self.postfix()
        if self.peek() == "as":
            self.take()
            ast = _Cast(ast, self._type_name())
        return ast

    def _type_name(self) -> str:
        name = self.take()
        if not name[0].isalpha():
            raise Unsupported(f"bad type name {name!r}")
        return name

    def primary(self) -> _Ast:
        tok = self.take()
        if tok == "(":
            inner = self.union()
            self.take(")")
            return inner
        if tok == "%resource":
            return _Var("resource")
        if tok[0].isalpha() or tok[0] == "_":
            if self.peek() == "(":
                raise Unsupported(f"function {tok}() at the start of a path")
            return _Name(tok)
        raise Unsupported(f"unexpected {tok!r}")

    def postfix(self) -> _Ast:
        ast = self.primary()
        while True:
            tok = self.peek()
            if tok == ".":
                self.take()
                name = self.take()
                if not (name[0].isalpha() or name[0] == "_"):
                    raise Unsupported(f"bad member {name!r}")
                ast = self._call(ast, name) if self.peek() == "(" else _Member(ast, name)
            elif tok == "[":
                self.take()
                index = self.take()
                if not index.isdigit():
                    raise Unsupported("non-literal indexer")
                self.take("]")
                ast = _Index(ast, int(index))
            else:
                return ast

    def _call(self, base: _Ast, function: str) -> _Ast:
        self.take("(")
        if function in ("as", "ofType"):
            ast: _Ast = _Cast(base, self._type_name())
        elif function == "where":
            ast = self._where(base)
        else:
            raise Unsupported(f"function {function}()")
        self.take(")")
        return ast

    def _where(self, base: _Ast) -> _Ast:
        first = self.take()
        if first == "resolve":
            self.take("(")
            self.take(")")
            self.take("is")
            return _WhereRef(base, self._type_name())
        if not first[0].isalpha():
            raise Unsupported("unsupported where()")
        self.take("=")
        literal = self.take()
        if not literal.startswith("'"):
            raise Unsupported("where() compares with a non-string")
        return _WhereEq(base, first, literal[1:-1].replace("\\'", "'"))


# ---------------------------------------------------------------------------------------------
# Compiling: AST → concrete leaves, each step checked against the StructureDefinitions.


@dataclass(frozen=True, slots=True)
class _State:
    steps: tuple[Step, ...]
    node: Node
    targets: tuple[str, ...] | None = None


def _member(states: list[_State], name: str) -> list[_State]:
    out: list[_State] = []
    for state in states:
        info = fhirmodel.child(state.node, name)
        if info is None:
            raise Unsupported(f"{state.node.children_of} has no element {name!r}")
        if info.choice:
            for type_name in info.types:
                key = fhirmodel.choice_key(name, type_name)
                node = fhirmodel.node_for(info, type_name)
                out.append(_State((*state.steps, (KEY, key)), node, info.targets))
        else:
            type_name = info.types[0] if info.types else "BackboneElement"
            node = fhirmodel.node_for(info, type_name)
            out.append(_State((*state.steps, (KEY, name)), node, info.targets))
    return out


def _compile(ast: _Ast, start: list[_State], resource: Node) -> list[_State]:
    match ast:
        case _Name(name):
            # A leading type name selects the context (FHIRPath's type filter); anything else
            # is a member of it.
            if all(name in (s.node.type, "Resource", "DomainResource") for s in start):
                return start
            return _member(start, name)
        case _Var():
            return [_State(((ROOT,),), resource)]
        case _Member(base, name):
            return _member(_compile(base, start, resource), name)
        case _Index(base, index):
            return [
                _State((*s.steps, (INDEX, index)), s.node, s.targets)
                for s in _compile(base, start, resource)
            ]
        case _Cast(base, type_name):
            return [
                s
                for s in _compile(base, start, resource)
                if fhirmodel.is_type(s.node.type, type_name)
            ]
        case _WhereRef(base, type_name):
            return [
                _State((*s.steps, (REF_IS, type_name)), s.node, (type_name,))
                for s in _compile(base, start, resource)
            ]
        case _WhereEq(base, name, literal):
            return [
                _State((*s.steps, (EQUALS, name, literal)), s.node, s.targets)
                for s in _compile(base, start, resource)
            ]
        case _Union(items):
            return [state for item in items for state in _compile(item, start, resource)]
    raise Unsupported(f"cannot compile {ast!r}")  # pragma: no cover


_EXISTS_NOT_FALSE = re.compile(r"^\s*(?P<x>[\w.]+)\.exists\(\) and (?P=x) != false\s*$")


def compile_expression(expression: str, resource_type: str, start: Node | None = None) -> Compiled:
    """Compile an expression for a resource type; relative ones (composite components) start
    at `start`, the element the composite expression selected."""
    resource = fhirmodel.root(resource_type)
    states = [_State((), start or resource)]
    presence = _EXISTS_NOT_FALSE.match(expression)
    if presence:
        expression = presence.group("x")
    ast = _Parser(expression).parse()
    leaves: dict[tuple[tuple[Step, ...], str], Leaf] = {}
    for state in _compile(ast, states, resource):
        leaf = Leaf(state.steps, state.node.type, state.node, state.targets)
        leaves.setdefault((state.steps, state.node.type), leaf)
    return Compiled(tuple(leaves.values()), exists_not_false=presence is not None)


# ---------------------------------------------------------------------------------------------
# Walking

_ABSOLUTE_REF = re.compile(r"/([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[^/]+)?$")


def reference_type(value: Any) -> str | None:
    """The type a Reference points at, as `resolve() is X` would see it (without resolving)."""
    if type(value) is not dict:
        return None
    ref = value.get("reference")
    if isinstance(ref, str) and ref and ref[0] != "#":
        if "://" in ref or ref.startswith("urn:"):
            match = _ABSOLUTE_REF.search(ref)
            if match:
                return match.group(1)
        else:
            head, sep, _ = ref.partition("/")
            if sep:
                return head
    declared = value.get("type")
    return declared if isinstance(declared, str) else None


def walk(start: Any, resource: dict[str, Any], steps: Sequence[Step]) -> list[Any]:
    """Values at the end of `steps` from one starting element."""
    return walk_from([start], resource, steps)


def walk_from(current: list[Any], resource: dict[str, Any], steps: Sequence[Step]) -> list[Any]:
    """Values at the end of `steps` from a collection, arrays flattened and JSON nulls
    (extension-only primitives) dropped."""
    for step in steps:
        kind = step[0]
        if kind == KEY:
            key = step[1]
            found: list[Any] = []
            for item in current:
                if type(item) is dict:
                    value = item.get(key)
                    if value is None:
                        continue
                    if type(value) is list:
                        found.extend(v for v in value if v is not None)
                    else:
                        found.append(value)
            current = found
        elif kind == REF_IS:
            wanted = step[1]
            current = [item for item in current if reference_type(item) == wanted]
        elif kind == EQUALS:
            key, literal = step[1], step[2]
            current = [item for item in current if type(item) is dict and item.get(key) == literal]
        elif kind == INDEX:
            current = current[step[1] : step[1] + 1]
        else:  # ROOT
            current = [resource]
        if not current:
            break
    return current
