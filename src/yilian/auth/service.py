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
from yilian.fhir.access import parse_scopes
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
            fhir_user or "").startswith("Patient/"):
        raise BadRequest("YL-4005", "A patient user is linked to their Patient record "
                         "(--fhir-user Patient/ID)")
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


def token_for(keys: Keys, user: User, scope: str, *, minutes: int = 60) -> Issued:
    """An access token with the requested scopes narrowed to what the user's roles allow;
    Forbidden if nothing is left. A patient's token reaches their own compartment."""
    requested = parse_scopes(scope)
    granted = within(requested, {role for role, _ in user.roles})
    if not granted:
        raise Forbidden("YL-4033", f"None of the scopes '{scope}' is allowed to "
                        f"{user.username}'s roles")
    if not 1 <= minutes <= 24 * 60:
        raise BadRequest("YL-4007", "A token lives 1 to 1,440 minutes")
    return issue(keys, subject=user.username, scope=" ".join(g.text() for g in granted),
                 fhir_user=user.fhir_user, organizations=organizations_of(user.roles),
                 masked=masks_identifiers(user.roles),
                 patient=user.patient_id, minutes=minutes)
