"""Access tokens: JWTs (joserfc, HS256) signed with the server's own keys.

Only this server reads its tokens, so a shared secret serves: every process finds the keys
in the database (`auth_key`, made on first use), and a request's token is checked in
memory, without a database round trip (~15 µs). Claims: `sub` (the username), `scope`,
`fhirUser` and `patient` (SMART's launch context), `iat`, `exp`, `jti`, `iss`; `orgs` and
`masked` (staff); `ses` (a page session's, which signing out ends).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import Engine, insert, select

from yilian.auth.tables import auth_ended_session, auth_key
from yilian.errors import Unauthorized
from yilian.fhir.access import Access, parse_scopes
from yilian.kit.clock import utcnow
from yilian.kit.db import read_transaction, write_transaction

ISSUER = "yilian"
ALGORITHM = "HS256"
_RELOAD_SECONDS = 5.0
_CLAIMS = JWTClaimsRegistry(iss={"essential": True, "value": ISSUER},
                            exp={"essential": True}, sub={"essential": True})


class Keys:
    """The signing keys, loaded from the database once and again on an unknown `kid`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._keys: dict[str, OctKey] = {}
        self._newest: str | None = None
        self._loaded = -_RELOAD_SECONDS
        self._lock = threading.Lock()

    def signing(self) -> tuple[str, OctKey]:
        with self._lock:
            if self._newest is None:
                self._load(create=True)
            assert self._newest is not None
            return self._newest, self._keys[self._newest]

    def verifying(self, kid: str) -> OctKey | None:
        with self._lock:
            # An unknown kid: a key another process made since, or a forgery; look again
            # at most every few seconds, so that forged tokens cannot load the database.
            if kid not in self._keys and time.monotonic() - self._loaded > _RELOAD_SECONDS:
                self._load(create=False)
            return self._keys.get(kid)

    def _load(self, *, create: bool) -> None:
        # Looking (a token's unknown kid) must never wait on the writer lock: it may run
        # inside a write transaction of this very thread (introspection).
        with (write_transaction if create else read_transaction)(self.engine) as conn:
            rows: list[tuple[str, bytes]] = [
                (row.kid, row.secret) for row in conn.execute(
                    select(auth_key.c.kid, auth_key.c.secret)
                    .order_by(auth_key.c.created, auth_key.c.kid))]
            if not rows and create:
                kid, secret = secrets.token_hex(8), secrets.token_bytes(32)
                conn.execute(insert(auth_key).values(kid=kid, secret=secret, created=utcnow()))
                rows = [(kid, secret)]
        self._keys = {kid: OctKey.import_key(bytes(secret)) for kid, secret in rows}
        self._newest = rows[-1][0] if rows else None
        self._loaded = time.monotonic()


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    expires: datetime


def issue(keys: Keys, *, subject: str, scope: str, fhir_user: str | None = None,
          patient: str | None = None, organizations: Sequence[str] = (), masked: bool = False,
          minutes: int = 60, now: datetime | None = None, session: bool = False) -> Issued:
    now = now or utcnow()
    expires = now + timedelta(minutes=minutes)
    claims: dict[str, object] = {"iss": ISSUER, "sub": subject, "scope": scope,
                                 "iat": int(now.timestamp()), "exp": int(expires.timestamp()),
                                 "jti": secrets.token_urlsafe(12)}
    if fhir_user:
        claims["fhirUser"] = fhir_user
    if patient:
        claims["patient"] = patient
    if organizations:
        claims["orgs"] = list(organizations)  # staff: whose patients `user/` grants reach
    if masked:
        claims["masked"] = True  # ID and phone numbers masked in what it reads
    if session:
        claims["ses"] = True  # a page session's: refused once signed out (Verifier)
    kid, key = keys.signing()
    return Issued(jwt.encode({"alg": ALGORITHM, "kid": kid}, claims, key), expires)


class Verifier:
    """The Access of a request's `Authorization: Bearer` token; Unauthorized without one or
    with one that is malformed, forged, expired or not this server's.

    A token is the same string on every request of a session, and checking its signature and
    claims costs ~40 µs (more than a read by id): what it grants is kept, by the exact
    string, until it expires (at most `CACHED` tokens). A page session's token (claim `ses`)
    is also looked up among the ended sessions, again every `SESSION_RECHECK` seconds: signed
    out, it is refused at once by the process that signed it out, within that time by the
    others."""

    CACHED = 10_000
    SESSION_RECHECK = 30.0

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._checked: OrderedDict[str, tuple[Access, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, authorization: str | None) -> Access:
        authorization = authorization or ""
        found = self._checked.get(authorization)
        if found is not None and found[1] > time.time():
            return found[0]
        claims = self.claims(authorization)
        trusted_until = float(claims["exp"])
        if claims.get("ses") is True:
            if self._ended(str(claims.get("jti", ""))):
                raise Unauthorized("YL-4013", "This session has been signed out: sign in again")
            trusted_until = min(trusted_until, time.time() + self.SESSION_RECHECK)
        subject = str(claims["sub"])
        orgs = claims.get("orgs")
        access = Access(parse_scopes(str(claims.get("scope", ""))),
                        patient=_patient_id(claims.get("patient")),
                        subject=subject if subject.startswith("client:") else f"user {subject}",
                        organizations=tuple(str(o) for o in orgs)
                        if isinstance(orgs, list) else (),
                        masked=claims.get("masked") is True)
        with self._lock:
            self._checked[authorization] = (access, trusted_until)
            while len(self._checked) > self.CACHED:
                self._checked.popitem(last=False)
        return access

    def forget(self, authorization: str) -> None:
        with self._lock:
            self._checked.pop(authorization, None)

    def _ended(self, jti: str) -> bool:
        with read_transaction(self.keys.engine) as conn:
            return conn.execute(select(auth_ended_session.c.jti)
                                .where(auth_ended_session.c.jti == jti)).first() is not None

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The checked claims of the bearer token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("YL-4010", "This request needs an access token: "
                               "Authorization: Bearer <token>")
        try:
            kid = jws.extract_compact(token.strip().encode()).protected.get("kid")
            key = self.keys.verifying(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unauthorized("YL-4011", "The access token was not issued by this server")
            claims: dict[str, Any] = jwt.decode(token.strip(), key,
                                                algorithms=[ALGORITHM]).claims
            _CLAIMS.validate(claims)
        except (JoseError, ValueError) as error:
            raise Unauthorized("YL-4011", f"The access token is not valid: {error}") from error
        return claims


def _patient_id(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
