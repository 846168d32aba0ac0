"""The sign-in tables, in the store's metadata (one schema, one set of migrations)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from yilian.fhir.store.tables import BigId, Stamp, metadata

auth_user = Table(
    "auth_user",
    metadata,
    Column("pk", BigId, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("password_hash", String(200), nullable=False),
    # The FHIR record of the person: Practitioner/1, Patient/2, RelatedPerson/3.
    Column("fhir_user", String(200), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    # Consecutive failed sign-ins, and until when the account is locked after too many.
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", Stamp, nullable=True),
    Column("created", Stamp, nullable=False),
    Index("uq_auth_user_username", "username", unique=True),
)

auth_role = Table(
    "auth_role",
    metadata,
    Column("user_pk", BigId, ForeignKey("auth_user.pk", ondelete="CASCADE"),
           primary_key=True),
    Column("role", String(20), primary_key=True),
    # Where the role is held: Organization/ID (a hospital, campus or community centre).
    Column("organization", String(200), primary_key=True),
)

# HMAC keys that sign access tokens, shared by every server process through the database;
# the newest signs, all verify.
auth_key = Table(
    "auth_key",
    metadata,
    Column("kid", String(40), primary_key=True),
    Column("secret", LargeBinary, nullable=False),
    Column("created", Stamp, nullable=False),
)

# OAuth clients: SMART apps (public, PKCE) and backend services (private_key_jwt with their
# public keys as a JWKS).
auth_client = Table(
    "auth_client",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("redirect_uris", Text, nullable=False),  # one per line
    Column("scope", Text, nullable=False),  # the most its tokens may carry
    Column("auth_method", String(40), nullable=False),  # none | private_key_jwt
    Column("jwks", Text, nullable=True),  # JSON, for private_key_jwt
    Column("created", Stamp, nullable=False),
)

# Authorization codes: single use, minutes long; stored as a SHA-256 of the code.
auth_code = Table(
    "auth_code",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("user_pk", BigId, ForeignKey("auth_user.pk", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(10), nullable=False),
    Column("expires", Stamp, nullable=False),
)

# Refresh tokens (SHA-256 of the token): rotated on every use, revocable.
auth_refresh = Table(
    "auth_refresh",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("client_id", String(100), nullable=False),
    Column("user_pk", BigId, ForeignKey("auth_user.pk", ondelete="CASCADE"), nullable=False),
    Column("scope", Text, nullable=False),
    Column("expires", Stamp, nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

# Client assertions already seen (RFC 7523: a `jti` is used once), until they expire.
auth_assertion = Table(
    "auth_assertion",
    metadata,
    Column("key", String(300), primary_key=True),  # client_id + " " + jti
    Column("expires", Stamp, nullable=False),
)

# "Break the glass": a patient's records opened to one staff member for an emergency, with
# the reason they gave, until `expires` (auth.emergency).
auth_emergency = Table(
    "auth_emergency",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("patient", String(64), primary_key=True),  # Patient id
    Column("opened", Stamp, primary_key=True),
    Column("expires", Stamp, nullable=False),
    Column("reason", Text, nullable=False),
)

# Page sessions signed out before their token expired (auth.tokens.Verifier refuses them):
# kept until the token would have expired anyway.
auth_ended_session = Table(
    "auth_ended_session",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires", Stamp, nullable=False),
)
