"""Break the glass: a staff member opens one patient's records, outside their organizations,
for an emergency: with a stated reason, for a limited time, flagged in the audit trail (the
opening itself, and every interaction while it lasts)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select

from yilian.auth.tables import auth_emergency, auth_ended_session
from yilian.auth.tokens import Verifier
from yilian.errors import BadRequest, Forbidden, Unauthorized
from yilian.fhir.access import Access
from yilian.fhir.audit import Entry, append
from yilian.kit.clock import utcnow
from yilian.kit.db import run_read, write_transaction
from yilian.kit.ids import is_valid_id

MAX_MINUTES = 240
MIN_REASON = 10  # characters: a reason, not "x"


def open_emergency(conn: Connection, access: Access, patient: str, reason: str,
                   minutes: int) -> datetime:
    """Open Patient/`patient` to the caller until the returned instant."""
    if not access.organizations:
        raise Forbidden("YL-4060", "Breaking the glass is for staff whose access is bound to "
                        "their organizations' patients")
    if not is_valid_id(patient):
        raise BadRequest("YL-4061", f"'{patient}' is not a Patient id", expression=("patient",))
    if len(reason.strip()) < MIN_REASON:
        raise BadRequest("YL-4062", f"State the emergency: a reason of at least {MIN_REASON} "
                         "characters", expression=("reason",))
    if not 1 <= minutes <= MAX_MINUTES:
        raise BadRequest("YL-4063", f"An emergency access lasts 1 to {MAX_MINUTES} minutes",
                         expression=("minutes",))
    now = utcnow()
    expires = now + timedelta(minutes=minutes)
    conn.execute(insert(auth_emergency).values(username=_username(access), patient=patient,
                                               opened=now, expires=expires,
                                               reason=reason.strip()[:1000]))
    return expires


def _username(access: Access) -> str:
    return access.subject.removeprefix("user ")


class Authenticator:
    """A request's Access: its token's, and for staff, the patients opened to them now; and
    the end of a page session."""

    def __init__(self, engine: Engine, verifier: Verifier, *, reads: Engine | None = None
                 ) -> None:
        self.engine = engine
        self.verifier = verifier
        # Every staff request reads its emergencies: on an autocommit engine (kit.db) that is
        # one round trip to PostgreSQL, not BEGIN, SELECT and ROLLBACK.
        self.reads = reads

    def verify(self, authorization: str | None) -> Access:
        return self.verifier(authorization)

    def sign_out(self, authorization: str, source: str) -> bool:
        """End a page session: its token is refused from now on (by the other server
        processes within `Verifier.SESSION_RECHECK` seconds), on the audit trail. False when
        the token is no live session's."""
        try:
            claims = self.verifier.claims(authorization)
        except Unauthorized:
            return False
        if claims.get("ses") is not True or not claims.get("jti"):
            return False
        expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
        with write_transaction(self.engine) as conn:
            conn.execute(delete(auth_ended_session).where(
                auth_ended_session.c.expires < utcnow()))  # past their token's life
            found = conn.execute(select(auth_ended_session.c.jti).where(
                auth_ended_session.c.jti == str(claims["jti"]))).first()
            if found is None:
                conn.execute(insert(auth_ended_session).values(jti=str(claims["jti"]),
                                                               expires=expires))
                append(conn, [Entry("logout", f"user {claims['sub']}", 0, source=source,
                                    path="sign-out of the pages")])
        self.verifier.forget(authorization)
        return found is None

    def verify_with_emergencies(self, authorization: str | None) -> Access:
        """`verify`, then `with_emergencies` (a database read: not on the event loop)."""
        return self.with_emergencies(self.verify(authorization))

    def with_emergencies(self, access: Access) -> Access:
        """The patients opened to this staff member now, read from the database."""
        if not access.staff_bound_anywhere:
            return access
        query = (select(auth_emergency.c.patient, auth_emergency.c.reason)
                 .where(auth_emergency.c.username == _username(access),
                        auth_emergency.c.expires > utcnow()))
        rows = run_read(self.engine, lambda conn: conn.execute(query).all(),
                        autocommit=self.reads)
        if not rows:
            return access
        return replace(access, emergency=tuple(dict.fromkeys(row.patient for row in rows)),
                       emergency_reason="; ".join(dict.fromkeys(row.reason for row in rows)))
