"""The syntax of ``Reference.reference`` (references.html#literal)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from yilian.fhir.validate.primitives import PATTERNS

_ID = r"[A-Za-z0-9\-\.]{1,64}"
_RELATIVE = re.compile(rf"([A-Z][A-Za-z]+)/({_ID})(/_history/{_ID})?", re.ASCII).fullmatch
_CONDITIONAL = re.compile(r"([A-Z][A-Za-z]+)\?\S+", re.ASCII).fullmatch
_ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:\S+", re.ASCII).fullmatch
_RESTFUL = re.compile(
    rf"https?://\S+/([A-Z][A-Za-z]+)/({_ID})(/_history/{_ID})?", re.ASCII
).fullmatch
_LOCAL = re.compile(rf"#({_ID})?", re.ASCII).fullmatch
_UUID = re.compile(PATTERNS["uuid"], re.ASCII | re.IGNORECASE).fullmatch  # RFC 4122: any case
_OID = re.compile(PATTERNS["oid"], re.ASCII).fullmatch

Form = Literal["relative", "conditional", "absolute", "local", "urn"]


@dataclass(frozen=True, slots=True)
class ParsedReference:
    form: Form
    type_name: str | None  # the resource type named by the reference, when it names one
    local_id: str | None = None  # "#id" references: the id of the contained resource


def parse_reference(text: str, resource_names: frozenset[str]) -> ParsedReference | str:
    """The parsed reference, or an English reason why it is not a valid literal reference."""
    if text.startswith("#"):
        if _LOCAL(text) is None:
            return f'"{text}" is not a valid local reference ("#" followed by a contained id)'
        return ParsedReference("local", None, text[1:] or None)
    if text.startswith("urn:uuid:"):
        if _UUID(text) is None:
            return f'"{text}" is not a valid urn:uuid: (an RFC 4122 UUID expected)'
        return ParsedReference("urn", None)
    if text.startswith("urn:oid:"):
        if _OID(text) is None:
            return f'"{text}" is not a valid urn:oid:'
        return ParsedReference("urn", None)
    relative = _RELATIVE(text)
    if relative is not None:
        type_name = relative.group(1)
        if type_name not in resource_names:
            return f'"{type_name}" in reference "{text}" is not an R4 resource type'
        return ParsedReference("relative", type_name)
    conditional = _CONDITIONAL(text)
    if conditional is not None and conditional.group(1) in resource_names:
        return ParsedReference("conditional", conditional.group(1))
    if _ABSOLUTE(text) is not None:
        restful = _RESTFUL(text)
        if restful is not None and restful.group(1) in resource_names:
            return ParsedReference("absolute", restful.group(1))
        return ParsedReference("absolute", None)
    return (
        f'"{text}" is not a valid reference: expected "Type/id", an absolute URL, '
        '"#contained-id", urn:uuid: or urn:oid:'
    )
