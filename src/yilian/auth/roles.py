"""The roles staff and patients hold, each at an organization, and the SMART scopes each
may be given (a token never carries more than its user's roles allow).

Which patients' records a role reaches at its organization (encounters, care teams,
referrals) is decided by the access rules; a role here bounds the kinds of interaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from yilian.fhir.access import Grant, parse_scopes, type_within


class Role(StrEnum):
    ADMIN = "admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    LAB = "lab"
    BIOBANK = "biobank"
    RESEARCHER = "researcher"
    TRAINEE = "trainee"
    MANAGER = "manager"
    PATIENT = "patient"
    PRIVACY = "privacy"  # the privacy officer: reads the audit trail


# The most each role's tokens may carry: staff act as users (`user/`), a patient on their
# own compartment (`patient/`). Researchers and managers read; clinical roles also write.
CEILINGS: dict[Role, str] = {
    Role.ADMIN: "user/*.cruds system/*.cruds",
    Role.DOCTOR: "user/*.cruds",
    Role.NURSE: "user/*.cruds",
    Role.PHARMACIST: "user/*.cruds",
    Role.LAB: "user/*.cruds",
    Role.BIOBANK: "user/*.cruds",
    Role.TRAINEE: "user/*.cruds",
    Role.RESEARCHER: "user/*.rs",
    Role.MANAGER: "user/*.rs",
    Role.PATIENT: "patient/*.rs patient/*.cu",
    Role.PRIVACY: "user/AuditEvent.rs",
}


# Roles whose `user/` grants reach only the patients of the organizations they are held at
# (fhir.guard); an administrator's reach everyone.
BOUND_TO_ORGANIZATION = frozenset(Role) - {Role.ADMIN, Role.PRIVACY, Role.PATIENT}


# Roles whose work needs people's resident ID and phone numbers (identifying a patient,
# calling them); a user with none of them gets them masked (fhir.masking).
SEES_IDENTIFIERS = frozenset({Role.ADMIN, Role.DOCTOR, Role.NURSE, Role.PHARMACIST,
                              Role.PATIENT})


def masks_identifiers(roles: Sequence[tuple[Role, str]]) -> bool:
    return not any(role in SEES_IDENTIFIERS for role, _ in roles)


def organizations_of(roles: Sequence[tuple[Role, str]]) -> tuple[str, ...]:
    """The organization ids a user's staff grants are bound to; () for an administrator."""
    if any(role is Role.ADMIN for role, _ in roles):
        return ()
    return tuple(dict.fromkeys(org.removeprefix("Organization/") for role, org in roles
                               if role in BOUND_TO_ORGANIZATION))


def within(requested: tuple[Grant, ...], roles: set[Role]) -> tuple[Grant, ...]:
    """The requested grants narrowed to what the roles allow: each keeps only the
    interactions some ceiling grant of the same context and a covering type allows."""
    ceilings = [grant for role in roles for grant in parse_scopes(CEILINGS[role])]
    narrowed = []
    for grant in requested:
        allowed = frozenset().union(*(
            ceiling.interactions for ceiling in ceilings
            if ceiling.context == grant.context and type_within(grant.res_type,
                                                                ceiling.res_type)))
        if interactions := grant.interactions & allowed:
            narrowed.append(Grant(grant.context, grant.res_type, frozenset(interactions)))
    return tuple(narrowed)
