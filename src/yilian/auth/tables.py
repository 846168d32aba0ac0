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
