"""Sign-in: users, their roles at organizations, and the keys that sign access tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yilian.kit.dbtypes

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'auth_user',
        sa.Column('pk', _ID, autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=100), nullable=False),
        sa.Column('password_hash', sa.String(length=200), nullable=False),
        sa.Column('fhir_user', sa.String(length=200), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('failed_logins', sa.Integer(), nullable=False),
        sa.Column('locked_until', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=True),
        sa.Column('created', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_auth_user')),
    )
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.create_index('uq_auth_user_username', ['username'], unique=True)
    op.create_table(
        'auth_role',
        sa.Column('user_pk', _ID, nullable=False),
        sa.Column('role', sa.String(length=20), nullable=False),
        sa.Column('organization', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['user_pk'], ['auth_user.pk'],
                                name=op.f('fk_auth_role_user_pk_auth_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_pk', 'role', 'organization', name=op.f('pk_auth_role')),
    )
    op.create_table(
        'auth_key',
        sa.Column('kid', sa.String(length=40), nullable=False),
        sa.Column('secret', sa.LargeBinary(), nullable=False),
        sa.Column('created', yilian.kit.dbtypes.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('kid', name=op.f('pk_auth_key')),
    )


def downgrade() -> None:
    op.drop_table('auth_key')
    op.drop_table('auth_role')
    with op.batch_alter_table('auth_user', schema=None) as batch_op:
        batch_op.drop_index('uq_auth_user_username')
    op.drop_table('auth_user')
