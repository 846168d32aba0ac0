"""Requests and responses of FHIR interactions, without HTTP (the router's currency)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from yilian.fhir.access import UNRESTRICTED, Access
from yilian.kit import jsonfmt

if TYPE_CHECKING:
    from yilian.fhir.store.sql import StoredVersion

JsonObject = dict[str, Any]


@dataclass(slots=True)
class FhirRequest:
    """One interaction's request. Not changed once made (`dataclasses.replace` makes changed
    copies); not frozen, as a frozen dataclass's __init__ cost every request a microsecond."""

    method: str  # GET, HEAD, POST, PUT, PATCH, DELETE
    path: str  # relative to the FHIR base, without leading slash: "Patient/1/_history/2"
    query: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None
    resource: JsonObject | None = None  # a body already parsed (Bundle entries)
    content_type: str | None = None
    # The index rows of `resource`, validated and indexed before the write transaction.
    prepared: Mapping[str, Sequence[tuple[Any, ...]]] | None = None
    access: Access = UNRESTRICTED  # what the caller may do: from its token (fhir.access)
    source: str = ""  # the caller's network address, for the audit trail

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


@dataclass(slots=True)
class FhirResponse:
    status: int
    resource: JsonObject | None = None
    content: bytes | None = None  # the resource already serialised (stored bytes)
    headers: dict[str, str] = field(default_factory=dict)
    stored: StoredVersion | None = None  # the version a write made or a read found
    audited: bool = False  # its audit entry was written in the write's own transaction
    # What the interaction touched, for its audit entry, when more than `stored` says (an
    # operation's patient, bed and encounter).
    entities: tuple[str, ...] = ()

    def body_bytes(self) -> bytes | None:
        if self.content is not None:
            return self.content
        if self.resource is not None:
            self.content = jsonfmt.dumps(self.resource)
            return self.content
        return None

    def body_json(self) -> JsonObject | None:
        if self.resource is not None:
            return self.resource
        if self.content is not None:
            parsed: JsonObject = jsonfmt.loads(self.content)
            self.resource = parsed
            return parsed
        return None
