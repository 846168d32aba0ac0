"""Users: creating them, signing them in (with lockout), and the tokens they may get."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Connection, insert, select, update

from yilian.auth.passwords import hash_password, needs_rehash, verify_password, weakness
from yilian.auth.roles import Role, masks_identifiers, organizations_of, within
from yilian.auth.tables import auth_role, auth_user
from yilian.auth.tokens import Issued, Keys, issue
from yilian.errors import BadRequest, Conflict, Forbidden, Unauthorized
from yilian.fhir.access import Grant, Interaction, parse_scopes
from yilian.kit.clock import utcnow

MAX_FAILURES = 5  # consecutive failed sign-ins before the account is locked
LOCKOUT = timedelta(minutes=15)
_USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-@")


@dataclass(frozen=True, slots=True)
class User:
    pk: int
    username: str
    fhir_user: str | None
    roles: tuple[tuple[Role, str], ...]  # (role, Organization/ID)

    @property
    def patient_id(self) -> str | None:
        """The Patient record of a patient user: the compartment their tokens reach."""
        if self.fhir_user and self.fhir_user.startswith("Patient/"):
            return self.fhir_user.removeprefix("Patient/")
        return None


def create_user(conn: Connection, username: str, password: str,
                roles: Sequence[tuple[Role, str]], *, fhir_user: str | None = None) -> User:
    """A new user with roles at organizations; the password is checked and hashed."""
    username = username.strip().lower()
    if not username or not set(username) <= _USERNAME_CHARS or len(username) > 100:
        raise BadRequest("YL-4001", "A username is 1 to 100 of a-z, 0-9 and . _ - @")
    if problem := weakness(password):
        raise BadRequest("YL-4002", problem)
    if not roles:
        raise BadRequest("YL-4003", "A user needs at least one role at an organization")
    for role, organization in roles:
        if not organization.startswith("Organization/") or len(organization) <= 13:
            raise BadRequest("YL-4004", f"The {role} role is held at an Organization/ID, not "
                             f"'{organization}'")
    if Role.PATIENT in {role for role, _ in roles} and not (
            fhir_user or "").startswith(("Patient/", "RelatedPerson/")):
        raise BadRequest("YL-4005", "A patient user is linked to their Patient record "
                         "(--fhir-user Patient/ID), or a relative to theirs "
                         "(--fhir-user RelatedPerson/ID)")
    if conn.execute(select(auth_user.c.pk).where(auth_user.c.username == username)).first():
        raise Conflict("YL-4006", f"The username '{username}' is taken")
    pk = conn.execute(insert(auth_user).values(
        username=username, password_hash=hash_password(password), fhir_user=fhir_user,
        active=True, failed_logins=0, created=utcnow()).returning(auth_user.c.pk)).scalar_one()
    conn.execute(insert(auth_role), [{"user_pk": pk, "role": role.value,
                                      "organization": organization}
                                     for role, organization in dict.fromkeys(roles)])
    return User(pk, username, fhir_user, tuple(dict.fromkeys(roles)))


def find_user(conn: Connection, username: str) -> User | None:
    return _user(conn, auth_user.c.username == username.strip().lower())


def find_user_by_pk(conn: Connection, pk: int) -> User | None:
    return _user(conn, auth_user.c.pk == pk)


def _user(conn: Connection, which: ColumnElement[bool]) -> User | None:
    row = conn.execute(select(auth_user.c.pk, auth_user.c.username, auth_user.c.fhir_user)
                       .where(which, auth_user.c.active)).first()
    if row is None:
        return None
    roles = conn.execute(select(auth_role.c.role, auth_role.c.organization)
                         .where(auth_role.c.user_pk == row.pk)
                         .order_by(auth_role.c.role, auth_role.c.organization)).all()
    return User(row.pk, row.username, row.fhir_user,
                tuple((Role(role), organization) for role, organization in roles))


def authenticate(conn: Connection, username: str, password: str,
                 now: datetime | None = None) -> User:
    """The user, if the password is right and the account not locked. Every refusal says the
    same, so that a guesser learns nothing of which usernames exist; `MAX_FAILURES` wrong
    passwords in a row lock the account for `LOCKOUT`."""
    now = now or utcnow()
    refused = Unauthorized("YL-4012", "Wrong username or password, or the account is locked")
    row = conn.execute(select(auth_user).where(auth_user.c.username == username.strip().lower(),
                                               auth_user.c.active).with_for_update()).first()
    if row is None:
        hash_password(password)  # the same time as a real check: no timing tells
        raise refused
    if row.locked_until is not None and row.locked_until > now:
        verify_password(row.password_hash, password)  # as long as any other refusal
        raise refused
    if not verify_password(row.password_hash, password):
        failures = row.failed_logins + 1
        locked = now + LOCKOUT if failures >= MAX_FAILURES else None
        conn.execute(update(auth_user).where(auth_user.c.pk == row.pk).values(
            failed_logins=0 if locked else failures, locked_until=locked))
        raise refused
    changes: dict[str, object] = {"failed_logins": 0, "locked_until": None}
    if needs_rehash(row.password_hash):
        changes["password_hash"] = hash_password(password)
    conn.execute(update(auth_user).where(auth_user.c.pk == row.pk).values(**changes))
    user = find_user(conn, row.username)
    assert user is not None
    return user


def patient_context(conn: Connection, user: User) -> str | None:
    """The patient whose compartment the user's `patient/` grants reach: their own record,
    or for a relative (a RelatedPerson) the patient they are related to, if that patient
    allows it: an active Consent permitting this RelatedPerson (provision.actor)."""
    if user.patient_id or not (user.fhir_user or "").startswith("RelatedPerson/"):
        return user.patient_id
    from yilian.fhir.search.expressions import All, Match
    from yilian.fhir.search.query import search_ids
    from yilian.fhir.search.registry import get_registry
    from yilian.fhir.store.sql import read_current
    from yilian.kit import jsonfmt

    assert user.fhir_user is not None
    stored = read_current(conn, "RelatedPerson", user.fhir_user.removeprefix("RelatedPerson/"))
    if stored is None or stored.deleted or stored.content is None:
        return None
    reference = str((jsonfmt.loads(stored.content).get("patient") or {}).get("reference", ""))
    if not reference.startswith("Patient/"):
        return None
    registry = get_registry()

    def match(code: str, value: str) -> Match:
        param = registry.get("Consent", code)
        assert param is not None
        return Match(param, None, (value,))

    allowed = All((match("patient", reference), match("status", "active"),
                   match("provision-type", "permit"), match("actor", user.fhir_user)))
    return reference.removeprefix("Patient/") if search_ids(conn, "Consent", allowed,
                                                            limit=1) else None


def token_for(keys: Keys, user: User, scope: str, *, minutes: int = 60,
              patient: str | None = None, session: bool = False) -> Issued:
    """An access token with the requested scopes narrowed to what the user's roles allow;
    Forbidden if nothing is left. A patient's token reaches their own compartment (or, for a
    relative, `patient`: `patient_context`), a relative's for reading only."""
    requested = parse_scopes(scope)
    granted = within(requested, {role for role, _ in user.roles})
    if (user.fhir_user or "").startswith("RelatedPerson/"):
        granted = reading_only(granted)
    if not granted:
        raise Forbidden("YL-4033", f"None of the scopes '{scope}' is allowed to "
                        f"{user.username}'s roles")
    if not 1 <= minutes <= 24 * 60:
        raise BadRequest("YL-4007", "A token lives 1 to 1,440 minutes")
    return issue(keys, subject=user.username, scope=" ".join(g.text() for g in granted),
                 fhir_user=user.fhir_user, organizations=organizations_of(user.roles),
                 masked=masks_identifiers(user.roles),
                 patient=patient or user.patient_id, minutes=minutes, session=session)


def reading_only(grants: tuple[Grant, ...]) -> tuple[Grant, ...]:
    reads = frozenset({Interaction.READ, Interaction.SEARCH})
    return tuple(Grant(g.context, g.res_type, g.interactions & reads) for g in grants
                 if g.interactions & reads)
