"""What a caller may do, from its SMART on FHIR scopes.

SMART App Launch 2.0 scopes name a context, a resource type and interactions:

    patient/Observation.rs    read and search the Observations of the patient in context
    user/*.cruds              everything the signed-in user may do, on every type
    system/Patient.r          a backend service reading Patients

`c` create, `r` read (read, vread, an instance's history), `u` update (update, patch),
`d` delete, `s` search (type and system search, a type's history). Version 1 spellings are
accepted as their v2 equivalents: `.read` = `.rs`, `.write` = `.cud`, `.*` = `.cruds`.
Scopes that are not about resources (`openid`, `fhirUser`, `launch/patient`,
`offline_access`) grant nothing here.

The router asks `Access.require(interaction, type)` before each interaction (every entry
of a batch or transaction too); searches leave out types the caller may not search and
resources it may not read (`_include`), so that nothing it may not see is counted or leaked.
Which records a grant reaches (a patient's compartment; staff's organizations' patients) is
fhir.guard's: `Access` carries what it needs (`patient`, `organizations`, `emergency`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from yilian.errors import Forbidden


class Interaction(StrEnum):
    CREATE = "c"
    READ = "r"
    UPDATE = "u"
    DELETE = "d"
    SEARCH = "s"


_NAMES = {Interaction.CREATE: "create", Interaction.READ: "read", Interaction.UPDATE: "update",
          Interaction.DELETE: "delete", Interaction.SEARCH: "search"}
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"(?P<context>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)"
                    r"\.(?P<rights>\*|read|write|c?r?u?d?s?)(?:\?.*)?")
# Types no `*` scope reaches: the audit trail is for those granted it by name (a privacy
# officer), not for everyone who may read everything else.
NAMED_ONLY = frozenset({"AuditEvent"})


@dataclass(frozen=True, slots=True)
class Grant:
    """One resource scope: `context`/`res_type`.`interactions` (res_type "*": any type)."""

    context: str
    res_type: str
    interactions: frozenset[Interaction]

    def covers(self, interaction: Interaction, res_type: str) -> bool:
        if interaction not in self.interactions:
            return False
        if self.res_type == "*":
            return res_type not in NAMED_ONLY
        return self.res_type == res_type

    def text(self) -> str:
        """As a v2 scope: `user/Observation.rs`."""
        letters = "".join(i.value for i in Interaction if i in self.interactions)
        return f"{self.context}/{self.res_type}.{letters}"


def type_within(wanted: str, ceiling: str) -> bool:
    """Whether a scope on type `wanted` (or `*`) asks no more than one on `ceiling`."""
    if ceiling == "*":
        return wanted not in NAMED_ONLY
    return wanted == ceiling


def parse_scopes(text: str) -> tuple[Grant, ...]:
    """The resource grants of a space-separated scope string; other scopes are skipped.
    Finer-grained v2 query suffixes (`?category=...`) are not supported: such a scope grants
    nothing rather than more than it says."""
    grants = []
    for scope in text.split():
        found = _SCOPE.fullmatch(scope)
        if found is None or "?" in scope:
            continue
        rights = _V1.get(found["rights"], found["rights"])
        if not rights:
            continue
        grants.append(Grant(found["context"], found["type"],
                            frozenset(Interaction(letter) for letter in rights)))
    return tuple(grants)


@dataclass(frozen=True, slots=True)
class Access:
    """The grants of one request's caller. `patient`: the id of the patient in context, to
    which `patient/` grants are confined."""

    grants: tuple[Grant, ...]
    patient: str | None = None
    subject: str = ""  # who, for messages and the audit: "user alice", "client lab-system"
    # Staff: the organizations (ids) whose patients `user/` grants reach (empty: no such
    # bound, as for an administrator), and the patients opened to them for an emergency.
    organizations: tuple[str, ...] = ()
    emergency: tuple[str, ...] = ()
    emergency_reason: str = ""
    masked: bool = False  # resident ID and phone numbers masked in what it reads

    def allows(self, interaction: Interaction, res_type: str) -> bool:
        return any(grant.covers(interaction, res_type) and self._usable(grant)
                   for grant in self.grants)

    def require(self, interaction: Interaction, res_type: str) -> None:
        if not self.allows(interaction, res_type):
            what = "any resource type" if res_type == "*" else res_type
            raise Forbidden("YL-4030", f"The access token does not allow {_NAMES[interaction]} "
                            f"on {what}", expression=(res_type,))

    def confined(self, interaction: Interaction, res_type: str) -> bool:
        """Whether the caller reaches `res_type` only through `patient/` grants: then only
        the resources in its patient's compartment."""
        return not any(grant.covers(interaction, res_type) and grant.context != "patient"
                       for grant in self.grants)

    @property
    def staff_bound_anywhere(self) -> bool:
        """Whether some grant may reach records only as staff of the organizations (then the
        patients opened to the caller for an emergency matter); False for a caller whose
        grants are all `system/` ones, whatever its organizations."""
        return bool(self.organizations) and any(grant.context != "system"
                                                for grant in self.grants)

    def staff_bound(self, interaction: Interaction, res_type: str) -> bool:
        """Whether the caller reaches `res_type` only as staff of its organizations: then
        only the records of those organizations' patients (fhir.guard)."""
        return bool(self.organizations) and not any(
            grant.covers(interaction, res_type) and grant.context == "system"
            for grant in self.grants)

    def _usable(self, grant: Grant) -> bool:
        # A patient/ grant without a patient in context reaches nothing.
        return grant.context != "patient" or self.patient is not None


# The caller of a server run with access control off, and of the server's own work.
UNRESTRICTED = Access((Grant("system", "*", frozenset(Interaction)),), subject="system")
